"""The exact (reference) encoding: render with the chat template, encode the text with offsets, and give each token
the role of the character span it starts in."""

from __future__ import annotations

import bisect
from typing import Any

from transformers import PreTrainedTokenizerBase

from chathuman_hf.tokens.labels import ASSISTANT, FRAME, HISTORY, ROLE_CODES
from chathuman_hf.tokens.rendering import layout_for, render_batch
from chathuman_hf.tokens.template_inputs import shape


def _codes(messages: list[dict], rewritten: tuple[bool, ...]) -> list[int]:
    """Role code per message: a reply in its rewritten (history) form is ``HISTORY``."""
    return [HISTORY if rewritten and rewritten[i] else ROLE_CODES[m["role"]] for i, m in enumerate(messages)]


def _roles_for(
    messages: list[dict], spans: list[tuple[int, int, int, int]], offsets: list[tuple[int, int]],
    rewritten: tuple[bool, ...] = (),
) -> tuple[list[int], list[int], list[int]]:
    """Per-token role code, last-turn flag and owning message index (-1 = leading frame such as bos).

    A token takes the role of the character it starts at: a message's content, the text the model generates before an
    assistant reply or the closing text of an assistant turn (``ASSISTANT``); anything else is ``FRAME`` and belongs to
    the next message.
    """
    starts = [s for s, _, _, _ in spans]
    codes = _codes(messages, rewritten)
    last_asst = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    roles, last, owner = [], [], []
    for s, _e in offsets:
        k = bisect.bisect_right(starts, s) - 1
        if k >= 0 and s < spans[k][1]:  # inside message k's content
            code = codes[k]
            roles.append(code)
            last.append(int(k == last_asst and code == ASSISTANT))
            owner.append(k)
        elif k >= 0 and s < spans[k][2]:  # the text closing assistant turn k (e.g. </s>, <|im_end|>)
            roles.append(codes[k])
            last.append(int(k == last_asst and codes[k] == ASSISTANT))
            owner.append(k)
        elif k + 1 < len(spans) and s >= spans[k + 1][3]:  # generated before reply k + 1 (an empty think block)
            roles.append(ASSISTANT)
            last.append(int(k + 1 == last_asst))
            owner.append(k + 1)
        else:
            roles.append(FRAME)
            last.append(0)
            owner.append(min(k + 1, len(messages) - 1) if k >= 0 else -1)
    return roles, last, owner


def _encode_exact(batch_messages: list[list[dict]], tokenizer: PreTrainedTokenizerBase) -> list[dict[str, Any]]:
    """The reference path: the rendered text, one encode per text, roles from the offsets."""
    rendered = render_batch(batch_messages, tokenizer)
    texts = [t for t, _ in rendered]
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # same ids as tokenizer(text, add_special_tokens=False), without the per-row overhead
        encodings = backend.encode_batch(texts, add_special_tokens=False)
        all_ids = [e.ids for e in encodings]
        all_offsets = [e.offsets for e in encodings]
    else:
        enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
        all_ids, all_offsets = enc["input_ids"], enc["offset_mapping"]
    out = []
    for messages, (_, spans), ids, offsets in zip(batch_messages, rendered, all_ids, all_offsets, strict=True):
        layout = layout_for(tokenizer, shape(messages, tokenizer))
        roles, last, owner = _roles_for(messages, spans, offsets, layout.rewritten)
        out.append({"input_ids": list(ids), "roles": roles, "last_turn": last, "owner": owner})
    return out
