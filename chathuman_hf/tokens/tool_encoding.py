"""Dialogues with tool calling (``data/tool_turns.py``) → token records, through the model's own chat template.

A tool call's text depends on the call, not only on the role sequence, so these dialogues skip the sentinel layouts of
``rendering``: each message's place is read off the template's renders of the dialogue's prefixes. An assistant turn
(a reply or a call) trains on exactly what the model generates after ``apply_chat_template(messages[:k],
add_generation_prompt=True)``, up to and including the turn's end-of-turn text; it is ``ASSISTANT`` where the full
render holds it in that form, else ``HISTORY`` there and trained in a row of its own (Qwen3 drops the empty think block
of a call that is not the newest message). A ``tool`` message and its template text are ``TOOL``: read, never trained.
"""

from __future__ import annotations

import bisect
from typing import Any

from transformers import PreTrainedTokenizerBase

from chathuman_hf.core.window import split_exchanges
from chathuman_hf.data.tool_turns import TOOL_ROLE, has_tool_data, unpack
from chathuman_hf.tokens.labels import ASSISTANT, FRAME, HISTORY, ROLE_CODES, TOOL, LabelMode
from chathuman_hf.tokens.rendering import TemplateError, template_name
from chathuman_hf.tokens.template_inputs import pinned_template, render_text
from chathuman_hf.tokens.turn_end import closing_text

NEWEST_ONLY = "newest"  # a row's history flag: everything before its last message is context (reply_rows)
_PROBE_NAME, _PROBE_KEY, _PROBE_VALUE, _PROBE_RESULT = "probe_fn_q7", "probe_key_x3", "probe_val_k9", "probe_out_m2"
_SUPPORT: dict[str, bool] = {}


def renders_tools(tokenizer: PreTrainedTokenizerBase) -> bool:
    """True when the template renders tool definitions, a call's name and arguments, and a tool result (TRL's
    ``supports_tool_calling`` test, plus the definitions)."""
    template = pinned_template(tokenizer)
    if not isinstance(template, str):
        return False
    if template not in _SUPPORT:
        tools = [{"type": "function", "function": {"name": "probe_def_z5", "description": "",
                                                   "parameters": {"type": "object", "properties": {}}}}]
        messages = [{"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
                        "name": _PROBE_NAME, "arguments": {_PROBE_KEY: _PROBE_VALUE}}}]},
                    {"role": "tool", "name": _PROBE_NAME, "content": _PROBE_RESULT}]
        try:
            text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, chat_template=template)
            _SUPPORT[template] = all(s in text for s in ("probe_def_z5", _PROBE_NAME, _PROBE_KEY, _PROBE_VALUE,
                                                         _PROBE_RESULT))
        except Exception:  # noqa: BLE001 - a template that raises on tools has no tool support
            _SUPPORT[template] = False
    return _SUPPORT[template]


def check_tool_template(tokenizer: PreTrainedTokenizerBase, where: str = "the data") -> None:
    """``TemplateError`` (one line, naming ``where`` and the fix) when the template cannot render tool calling."""
    if not renders_tools(tokenizer):
        raise TemplateError(f"{where} has tool calling, and {template_name(tokenizer)} does not render tools, tool "
                            f"calls and tool results; train a base whose template does (Qwen2.5/Qwen3, Llama 3.1+, "
                            f"EXAONE 4.0) with --chat_template auto, or leave the tool records out of --data.")


def _only_tools(message: dict) -> bool:
    """A system message that only carries the record's tools (it renders no turn of its own)."""
    text, data = unpack(message["content"])
    return message["role"] == "system" and not text and "tools" in data


def _reply(tokenizer: PreTrainedTokenizerBase, messages: list[dict], k: int, closing: str) -> tuple[str, str]:
    """(generation prompt before assistant turn ``k``, what the model generates for it up to its closing text)."""
    gen = render_text(tokenizer, messages[:k], gen=True) if any(not _only_tools(m) for m in messages[:k]) else ""
    one = render_text(tokenizer, messages[: k + 1])
    at = one.rfind(closing)
    if not one.startswith(gen) or at < len(gen):
        raise TemplateError(f"{template_name(tokenizer)}: assistant turn {k + 1} does not follow its generation "
                            f"prompt or lacks the end-of-turn text {closing!r}, so it cannot train as generated; use "
                            f"a template that renders tool calls as the model generates them.")
    return gen, one[len(gen):at + len(closing)]


def _regions(messages: list[dict], tokenizer: PreTrainedTokenizerBase, full: str) -> list[tuple[int, int, int, int]]:
    """(start, role code, last-turn flag, owner) of each stretch of ``full``, in order."""
    closing = closing_text(tokenizer).strip()
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
    out: list[tuple[int, int, int, int]] = []
    start = 0
    for k, message in enumerate(messages):
        if _only_tools(message):
            continue
        part = full if k == len(messages) - 1 else render_text(tokenizer, messages[: k + 1])
        end = len(part) if full.startswith(part) else None
        if message["role"] == "assistant":
            gen, reply = _reply(tokenizer, messages, k, closing)
            if len(gen) >= start and full.startswith(gen) and full.startswith(reply, len(gen)):
                out += [(start, FRAME, 0, k), (len(gen), ASSISTANT, int(k > last_user), k)]
                start = len(gen) + len(reply)
                end = end if end is not None else start
                out.append((start, FRAME, 0, k))
            else:  # rewritten here (its own row trains it): context up to its end-of-turn text
                at = full.find(closing, start)
                end = end if end is not None else at + len(closing) if at >= 0 else None
                out.append((start, HISTORY, 0, k))
        elif message["role"] == TOOL_ROLE:
            out.append((start, TOOL, 0, k))
        else:
            text = unpack(message["content"])[0].strip()
            at = full.find(text, start, end) if text and end is not None else -1
            out.append((start, FRAME, 0, k))
            if at >= 0:
                out += [(at, ROLE_CODES[message["role"]], 0, k), (at + len(text), FRAME, 0, k)]
        if end is None or end < start:
            raise TemplateError(f"{template_name(tokenizer)} renders message {k + 1} ({message['role']}) differently "
                                f"once later messages follow, so its place cannot be read; use a template that keeps "
                                f"earlier turns as they were rendered.")
        start = end
    out.append((start, FRAME, 0, len(messages) - 1))
    return [r for i, r in enumerate(out) if i + 1 == len(out) or out[i + 1][0] > r[0]]  # empty stretches out


def encode_tool_dialogue(messages: list[dict], tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
    """``{"input_ids", "roles", "last_turn", "owner"}`` of a dialogue with tool data (ids = the chat template's)."""
    full = render_text(tokenizer, messages)
    regions = _regions(messages, tokenizer, full)
    starts = [r[0] for r in regions]
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    roles, last, owner = [], [], []
    for s, _e in enc["offset_mapping"]:
        _, code, flag, k = regions[max(bisect.bisect_right(starts, s) - 1, 0)]
        roles.append(code)
        last.append(flag)
        owner.append(k)
    return {"input_ids": list(enc["input_ids"]), "roles": roles, "last_turn": last, "owner": owner}


def rewritten_turns(messages: list[dict], tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Indices of the assistant turns the full render does not hold as generated (they need rows of their own)."""
    full = render_text(tokenizer, messages)
    closing = closing_text(tokenizer).strip()
    out = []
    for k, message in enumerate(messages):
        if message["role"] == "assistant":
            gen, reply = _reply(tokenizer, messages, k, closing)
            if not (full.startswith(gen) and full.startswith(reply, len(gen))):
                out.append(k)
    return out


def tool_examples(
    messages: list[dict], tokenizer: PreTrainedTokenizerBase, *, max_turns: int | None, expand_turns: bool,
    label_mode: str | None,
) -> list[tuple[list[dict], bool, Any]]:
    """Rows of a dialogue with tool data (``reply_rows.examples_for``'s shape): one per asked exchange end, plus one
    per turn the template rewrites in the whole dialogue's row, where only that turn trains (``NEWEST_ONLY``)."""
    head, exchanges = split_exchanges(messages)
    ends = range(1, len(exchanges) + 1) if expand_turns else [len(exchanges)]
    rows: list[tuple[list[dict], bool, Any]] = []
    for end in ends:
        chosen = exchanges[:end][-max_turns:] if max_turns else exchanges[:end]
        rows.append((head + [m for ex in chosen for m in ex], True, False))
    whole = rows[-1][0]
    last_user = max((i for i, m in enumerate(whole) if m["role"] == "user"), default=-1)
    for k in rewritten_turns(whole, tokenizer):
        final = k > last_user
        if final or label_mode != LabelMode.LAST_SYS.value:
            rows.append((whole[: k + 1], final, NEWEST_ONLY))
    return rows


def split_tool_dialogues(batch_messages: list[list[dict]]) -> list[int]:
    """Indices of the dialogues of a batch that hold tool data."""
    return [i for i, messages in enumerate(batch_messages) if has_tool_data(messages)]
