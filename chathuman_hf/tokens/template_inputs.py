"""What a chat template is given when training renders it: one fixed date for ``strftime_now`` and messages whose
reasoning (``reasoning_content``, or ``<think>…</think>`` at the start of an assistant's content) is passed the way
templates such as Qwen3's and EXAONE 4.0's read it (a leaf module: rendering and encoding ask it)."""

from __future__ import annotations

import datetime as _dt
from functools import lru_cache
from typing import Any

from transformers import PreTrainedTokenizerBase

from ..data.reasoning import split_think
from ..data.tool_turns import has_tool_data, template_form

THINK_ROLE = "assistant:think"  # the role-sequence entry of an assistant message with reasoning


def reads_reasoning(tokenizer: PreTrainedTokenizerBase) -> bool:
    """True when the template reads ``reasoning_content`` (Qwen3, EXAONE 4.0); other templates get the content
    verbatim, think tags included."""
    return "reasoning_content" in (getattr(tokenizer, "chat_template", None) or "")


def reasoning_of(message: dict, think: bool) -> tuple[str, str] | None:
    """(reasoning, content), both stripped, of an assistant message with reasoning; None otherwise."""
    if message["role"] != "assistant" or not think:
        return None
    if message.get("reasoning_content"):
        return message["reasoning_content"].strip(), message["content"].strip()
    return split_think(message["content"])


def shape(messages: list[dict], tokenizer: PreTrainedTokenizerBase, think: bool | None = None) -> tuple[str, ...]:
    """The role sequence a layout is built for: ``THINK_ROLE`` for an assistant message with reasoning (``think``:
    ``reads_reasoning(tokenizer)`` when the caller knows it)."""
    if not (reads_reasoning(tokenizer) if think is None else think):
        return tuple(m["role"] for m in messages)
    return tuple(THINK_ROLE if reasoning_of(m, True) else m["role"] for m in messages)


def template_messages(messages: list[dict], tokenizer: PreTrainedTokenizerBase) -> list[dict]:
    """``messages`` as the template gets them: reasoning under ``reasoning_content``, content without it."""
    think = reads_reasoning(tokenizer)
    out = []
    for m in messages:
        split = reasoning_of(m, think)
        out.append({"role": m["role"], "content": m["content"]} if split is None else
                   {"role": "assistant", "content": split[1], "reasoning_content": split[0]})
    return out


# strftime codes a pinned template may ask for (rendered for the fixed date, time 00:00:00)
_STRFTIME_CODES = "aAbBdHIjmMpSyYeFDuwG"


def template_date(tokenizer: PreTrainedTokenizerBase) -> str:
    """The date (YYYY-MM-DD) templates calling ``strftime_now`` render with: set by ``apply_template_choice``
    (``--template_date``, default the day the run starts), else today."""
    return getattr(tokenizer, "chathuman_template_date", None) or _dt.date.today().isoformat()


def pinned_template(tokenizer: PreTrainedTokenizerBase) -> str | None:
    """The tokenizer's template with ``strftime_now`` answering one fixed date (``template_date``), so the same
    conversation renders the same way for a whole run; the template itself (saved with the model) is unchanged.

    transformers exposes ``strftime_now`` as a Jinja global and passes extra keyword arguments through its sandbox as
    plain data (a function would arrive as a string), so the fixed date is a macro of the same name put in front of
    the template; the newline after it is eaten by ``trim_blocks``, leaving the template's own whitespace as it was.
    """
    template = getattr(tokenizer, "chat_template", None)
    if not template or "strftime_now" not in template:
        return template
    return _pinned(template, template_date(tokenizer))


@lru_cache(maxsize=64)
def _pinned(template: str, date: str) -> str:
    day = _dt.datetime.combine(_dt.date.fromisoformat(date), _dt.time())
    expr = "format|replace('%%', '\ue002')"
    for code in _STRFTIME_CODES:
        expr += f"|replace('%{code}', '{day.strftime('%' + code)}')"
    expr += "|replace('\ue002', '%')"
    return "{%- macro strftime_now(format) -%}{{ " + expr + " }}{%- endmacro %}\n" + template


def render_text(tokenizer: PreTrainedTokenizerBase, messages: list, *, gen: bool = False) -> Any:
    """``apply_chat_template`` text (one conversation or a batch) as training renders it (fixed date, reasoning
    passed as ``reasoning_content``, tool data unpacked: ``data/tool_turns.py``)."""
    if messages and isinstance(messages[0], list) and any(has_tool_data(m) for m in messages):
        return [render_text(tokenizer, m, gen=gen) for m in messages]  # tools differ per conversation
    if messages and not isinstance(messages[0], list) and has_tool_data(messages):
        unpacked, tools = template_form(template_messages(messages, tokenizer))
        return tokenizer.apply_chat_template(unpacked, tools=tools, tokenize=False, add_generation_prompt=gen,
                                             chat_template=pinned_template(tokenizer))
    if messages and isinstance(messages[0], list):
        messages = [template_messages(m, tokenizer) for m in messages]
    else:
        messages = template_messages(messages, tokenizer)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen,
                                         chat_template=pinned_template(tokenizer))


def render_ids(tokenizer: PreTrainedTokenizerBase, messages: list[dict], *, gen: bool = False) -> list[int]:
    """Token ids of ``render_text`` (what ``apply_chat_template(tokenize=True)`` gives, with the fixed date)."""
    return list(tokenizer(render_text(tokenizer, messages, gen=gen), add_special_tokens=False)["input_ids"])
