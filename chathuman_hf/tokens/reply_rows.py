"""Which rows a dialogue becomes: one row, or (a template that rewrites earlier turns) one row per reply in its
inference context, everything before its newest exchange ``HISTORY``."""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedTokenizerBase

from chathuman_hf.core.window import split_exchanges
from chathuman_hf.data.tool_turns import has_tool_data
from chathuman_hf.tokens.labels import HISTORY, LabelMode
from chathuman_hf.tokens.rendering import TemplateError, layout_for
from chathuman_hf.tokens.template_inputs import reads_reasoning, shape
from chathuman_hf.tokens.tool_encoding import NEWEST_ONLY, tool_examples


def _rewrites(messages: list[dict], tokenizer: PreTrainedTokenizerBase, memo: dict | None = None) -> bool | None:
    """True when the template renders some reply of ``messages`` other than at inference (history rewritten), None
    when it cannot train on this role sequence;
    ``memo``: answers per role sequence, kept by the caller for one batch (layout_for's key costs ~10 µs)."""
    memo = {} if memo is None else memo
    think = memo.get("think")
    if think is None:
        think = memo["think"] = reads_reasoning(tokenizer)
    roles = shape(messages, tokenizer, think)
    if roles not in memo:
        try:
            memo[roles] = layout_for(tokenizer, roles).rewrites
        except (TemplateError, KeyError):
            memo[roles] = None  # encoding raises the template's real error
    return memo[roles]


def examples_for(
    messages: list[dict], *, max_turns: int | None, expand_turns: bool,
    tokenizer: PreTrainedTokenizerBase | None = None, label_mode: str | None = None, memo: dict | None = None,
) -> list[tuple[list[dict], bool, bool]]:
    """Rows of one dialogue: (messages, asked for (else added for a rewriting template), history before the newest
    exchange is HISTORY)."""
    if tokenizer is not None and has_tool_data(messages):
        return tool_examples(messages, tokenizer, max_turns=max_turns, expand_turns=expand_turns,
                             label_mode=label_mode)
    head, exchanges = split_exchanges(messages)
    asked = set(range(1, len(exchanges) + 1)) if expand_turns else {len(exchanges)}
    rewrites = _rewrites(messages, tokenizer, memo) if tokenizer is not None and len(exchanges) > 1 else False
    if rewrites is not False and any(sum(m["role"] == "assistant" for m in ex) > 1 for ex in exchanges):
        raise TemplateError("a dialogue has consecutive assistant messages, and this chat template renders all but "
                            "the last of them unlike at inference, so they could not train; merge them into one "
                            "message (the data loaders do).")
    rewrites = bool(rewrites)
    ends = sorted(asked) if not rewrites or label_mode == LabelMode.LAST_SYS.value else range(1, len(exchanges) + 1)
    examples = []
    for end in ends:
        chosen = exchanges[:end]
        if max_turns is not None and max_turns > 0:
            chosen = chosen[-max_turns:]
        examples.append((head + [m for ex in chosen for m in ex], end in asked, rewrites and end > 1))
    return examples


def as_context_row(record: dict[str, Any], messages: list[dict], asked: bool, history: bool) -> dict[str, Any]:
    """Mark what a rewriting template's row holds only as context: before its newest exchange (``NEWEST_ONLY``: its
    last message) ``HISTORY``; a row that was not asked for has no ``last_turn``."""
    if history:
        newest = 1 if history == NEWEST_ONLY else len(split_exchanges(messages)[1][-1])
        start = max(record["owner"]) + 1 - newest
        record["roles"] = [HISTORY if o < start else r for r, o in zip(record["roles"], record["owner"], strict=True)]
    if not asked:
        record["last_turn"] = [0] * len(record["last_turn"])
    return record
