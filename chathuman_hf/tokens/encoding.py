"""Conversations → token ids with per-token role, last-turn flag and owning message (any chat template).

Ids are exactly ``tokenizer.apply_chat_template(messages)``: the template is rendered to text (``rendering``) and
tokenized with offsets, and each token gets the role of the character span it starts in (the exact path,
``exact_encoding``). A verified segment-wise fast path (here) gives the same records without rendering or re-encoding
repeated text.
"""

from __future__ import annotations

import weakref
from typing import Any

from transformers import PreTrainedTokenizerBase

from chathuman_hf.tokens.exact_encoding import _codes, _encode_exact
from chathuman_hf.tokens.labels import ASSISTANT, FRAME, ROLE_CODES
from chathuman_hf.tokens.rendering import Layout, TemplateError, inserted, layout_for
from chathuman_hf.tokens.template_inputs import reads_reasoning, shape
from chathuman_hf.tokens.tool_encoding import check_tool_template, encode_tool_dialogue, split_tool_dialogues

# ---------------------------------------------------------------- the verified fast path
# The template's frames (text around the contents) depend only on the role sequence (``rendering.Layout``), so they
# are encoded once per role sequence; each distinct content is encoded once per batch and the segments are
# concatenated. This is used only for a tokenizer whose segment-wise records equal the exact path's on probe
# conversations (with/without system, 1-4 exchanges, contents with edge whitespace, newlines and marker text) and,
# for every new role sequence, on a probe with that sequence; otherwise everything goes through ``_encode_exact``.

_PROBE_TEXTS = (
    "안녕하세요 반가워요", " 앞에 공백", "뒤에 공백 ", "줄\n바꿈  두 칸", "ok? 123 abc ㅋㅋ", "<usr> 안 </s> 마커",
    "a", "끝.", "  양쪽  ", "Hello, World!",
)
_FAST_PLANS: dict[int, tuple[Any, tuple, Any]] = {}
CONTENT_MEMO_SIZE = 200_000  # encoded message contents remembered per tokenizer and process


class _FastPlan:
    """Per-tokenizer segment tables: frame ids/roles/last/owner per role sequence (verified), content encoder."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self._tokenizer = weakref.ref(tokenizer)  # the plan lives in a module cache: never keep a tokenizer alive
        self.backend = tokenizer.backend_tokenizer
        self.layouts: dict[tuple[str, ...], Any] = {}
        self.memo: dict[str, list[int]] = {}

    def encode_contents(self, contents: list[str]) -> list[list[int]]:
        encodings = self.backend.encode_batch_fast(contents, add_special_tokens=False)
        return [e.ids for e in encodings]

    def encode_cached(self, contents: list[str]) -> list[list[int]]:
        """``encode_contents`` through a bounded per-process memo (short turns repeat a lot in chat corpora)."""
        memo = self.memo
        missing = [c for c in contents if c not in memo]
        if missing:
            if len(memo) + len(missing) > CONTENT_MEMO_SIZE:
                memo.clear()
            memo.update(zip(missing, self.encode_contents(missing), strict=True))
        return [memo[c] for c in contents]

    def _build(self, roles: tuple[str, ...]) -> Any:
        """Frame tables for one role sequence, or None when this sequence must use the exact path."""
        if not roles or any(r not in ROLE_CODES for r in roles):
            return None
        try:
            layout: Layout = layout_for(self._tokenizer(), roles)
        except Exception:  # noqa: BLE001 - any template surprise: the exact path raises the real error
            return None
        encodings = self.backend.encode_batch(list(layout.frames), add_special_tokens=False)
        codes = _codes([{"role": r} for r in roles], layout.rewritten)
        last_asst = max((i for i, r in enumerate(roles) if r == "assistant"), default=-1)
        n = len(roles)
        tables = []
        for i, enc in enumerate(encodings):
            k = i - 1  # the message whose content precedes frame i
            opened = len(layout.frames[i]) - layout.opened[i] if i < n and layout.opened else None
            f_roles, f_last, f_owner = [], [], []
            for s, _e in enc.offsets:
                if k >= 0 and s < layout.closing[i]:  # the closing text of assistant turn k
                    f_roles.append(codes[k])
                    f_last.append(int(k == last_asst and codes[k] == ASSISTANT))
                    f_owner.append(k)
                elif opened is not None and layout.opened[i] and s >= opened:  # generated before reply i
                    f_roles.append(ASSISTANT)
                    f_last.append(int(i == last_asst))
                    f_owner.append(i)
                else:
                    f_roles.append(FRAME)
                    f_last.append(0)
                    f_owner.append(min(k + 1, n - 1) if k >= 0 else -1)
            tables.append((list(enc.ids), f_roles, f_last, f_owner))
        content = [(c, int(k == last_asst and c == ASSISTANT), k) for k, c in enumerate(codes)]
        return layout, tables, content

    def layout(self, roles: tuple[str, ...]) -> Any:
        if roles not in self.layouts:
            built = self._build(roles)
            if built is not None:  # verify this role sequence once against the exact path
                probe = [{"role": r, "content": _PROBE_TEXTS[i % len(_PROBE_TEXTS)]} for i, r in enumerate(roles)]
                try:
                    same = self.assemble([probe], {roles: built}) == _encode_exact([probe], self._tokenizer())
                except Exception:  # noqa: BLE001
                    same = False
                built = built if same else None
            self.layouts[roles] = built
        return self.layouts[roles]

    def assemble(self, batch_messages: list[list[dict]], layouts: dict[tuple[str, ...], Any]) -> list[dict[str, Any]]:
        unique: dict[str, int] = {}
        batch_contents = []
        for messages in batch_messages:
            layout = layouts[tuple(m["role"] for m in messages)][0]
            contents = inserted(layout, messages) if any(layout.strip) else [m["content"] for m in messages]
            batch_contents.append(contents)
            for c in contents:
                unique.setdefault(c, len(unique))
        encoded = self.encode_cached(list(unique))
        out = []
        for messages, contents in zip(batch_messages, batch_contents, strict=True):
            _, tables, content = layouts[tuple(m["role"] for m in messages)]
            ids, roles, last, owner = list(tables[0][0]), list(tables[0][1]), list(tables[0][2]), list(tables[0][3])
            for text, (code, flag, k), frame in zip(contents, content, tables[1:], strict=True):
                c_ids = encoded[unique[text]]
                n = len(c_ids)
                ids += c_ids
                roles += [code] * n
                last += [flag] * n
                owner += [k] * n
                ids += frame[0]
                roles += frame[1]
                last += frame[2]
                owner += frame[3]
            out.append({"input_ids": ids, "roles": roles, "last_turn": last, "owner": owner})
        return out


def _renders(tokenizer: PreTrainedTokenizerBase, roles: tuple[str, ...]) -> bool:
    try:
        layout_for(tokenizer, roles)
    except TemplateError:
        return False
    return True


def _fast_plan(tokenizer: PreTrainedTokenizerBase) -> _FastPlan | None:
    """The verified segment plan for this tokenizer (cached per object and template/specials/vocab size), or None."""
    if getattr(tokenizer, "backend_tokenizer", None) is None or not hasattr(
        tokenizer.backend_tokenizer, "encode_batch_fast"
    ):
        return None
    key = (tokenizer.chat_template, tuple(sorted(tokenizer.special_tokens_map.items(), key=str)), len(tokenizer))
    entry = _FAST_PLANS.get(id(tokenizer))
    if entry is not None and entry[0]() is tokenizer and entry[1] == key:
        return entry[2]
    plan: _FastPlan | None = _FastPlan(tokenizer)
    probes = [
        [*head, *[{"role": r, "content": ""} for _ in range(n) for r in ("user", "assistant")]]
        for head in ([], [{"role": "system", "content": ""}])
        for n in (1, 2, 3, 4)
    ]
    probes = [p for p in probes if _renders(tokenizer, tuple(m["role"] for m in p))]  # e.g. no system role
    shift = 0
    for probe in probes:
        for m in probe:
            m["content"] = _PROBE_TEXTS[shift % len(_PROBE_TEXTS)]
            shift += 3
    try:
        roles_seen = {tuple(m["role"] for m in p) for p in probes}
        layouts = {r: plan.layout(r) for r in roles_seen}
        if not probes or any(v is None for v in layouts.values()) or plan.assemble(probes, layouts) != _encode_exact(
            probes, tokenizer
        ):
            plan = None
    except Exception:  # noqa: BLE001 - no fast path; the exact path raises the real error
        plan = None
    ident = id(tokenizer)
    ref = weakref.ref(tokenizer, lambda _: _FAST_PLANS.pop(ident, None))  # the entry goes with the tokenizer
    _FAST_PLANS[ident] = (ref, key, plan)
    return plan


def encode_dialogues(batch_messages: list[list[dict]], tokenizer: PreTrainedTokenizerBase) -> list[dict[str, Any]]:
    """Encode message lists to ``{"input_ids", "roles", "last_turn", "owner"}`` records (ids = chat template)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("tokenize_dialogues needs a fast tokenizer (offset mapping); load it with use_fast=True.")
    with_tools = split_tool_dialogues(batch_messages)
    if with_tools:  # tool calling: read off the template's own renders (tool_encoding)
        check_tool_template(tokenizer)
        rest = [m for i, m in enumerate(batch_messages) if i not in set(with_tools)]
        others = iter(encode_dialogues(rest, tokenizer) if rest else [])
        return [encode_tool_dialogue(m, tokenizer) if i in set(with_tools) else next(others)
                for i, m in enumerate(batch_messages)]
    plan = _fast_plan(tokenizer) if batch_messages else None
    if plan is None:
        return _encode_exact(batch_messages, tokenizer)
    layouts = {}
    think = reads_reasoning(tokenizer)
    for messages in batch_messages:
        roles = shape(messages, tokenizer, think)  # a message with reasoning takes the exact path
        if roles not in layouts:
            layouts[roles] = plan.layout(roles)
            if layouts[roles] is None:
                return _encode_exact(batch_messages, tokenizer)
    return plan.assemble(batch_messages, layouts)
