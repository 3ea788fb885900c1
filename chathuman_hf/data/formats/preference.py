"""Preference data parsers: one decoded record → one ``PrefRecord`` (a pair, a rating or a counted issue).

Formats (keys as the projects document them):

- ``trl_preference``: TRL's preference type, conversational (``prompt``/``chosen``/``rejected`` message lists, or the
  implicit-prompt form where ``chosen``/``rejected`` hold the whole conversation) or standard (strings).
- ``trl_unpaired``: TRL's unpaired preference type (``prompt``/``completion``/``label``).
- ``llamafactory``: LLaMA-Factory ``ranking: true`` data, ShareGPT style (``conversations`` + ``chosen``/``rejected``
  ``{from, value}``; ``messages`` with ``{role, content}``) or Alpaca style (``instruction``/``input``/``chosen``/
  ``rejected``, optional ``system`` and ``history``), and its KTO data (a ``kto_tag`` on ``output`` or on the last
  ``gpt`` message): ratings.
- ``ultrafeedback``: scored completions, the best against the worst (``ultrafeedback.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PrefRecord = dict[str, Any]
Messages = list[dict[str, str]]

ROLES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "chatgpt": "assistant",
}
TOOL_ROLES = ("observation", "function_call", "tool", "function")
PREFERENCE_FORMATS = ("trl_preference", "trl_unpaired", "llamafactory", "ultrafeedback", "feedback_log",
                      "openwebui_feedback")
WHOLE_FILE_FORMATS = ("feedback_log", "openwebui_feedback")  # rules span records: read by a file-level reader


class BadRecord(ValueError):
    """One record that cannot be read: ``reason`` is its drop reason, the message says what was expected."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def pair(prompt: Messages, chosen: str, rejected: str) -> PrefRecord:
    """A preference pair: the context messages and the two replies' texts."""
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def rating(prompt: Messages, completion: str, label: bool) -> PrefRecord:
    """An unpaired rating: the context messages, the reply's text and whether it is desirable."""
    return {"prompt": prompt, "completion": completion, "label": label}


def text_of(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in value):
        return "".join(str(p.get("text", "")) for p in value)  # OpenAI-style content parts, text only
    raise BadRecord("malformed_record", f"{what} is {type(value).__name__}, expected a string")


def message(value: Any, what: str) -> dict[str, str]:
    """``{role, content}`` from a ``{role, content}`` or ShareGPT ``{from, value}`` object."""
    if not isinstance(value, dict):
        raise BadRecord("malformed_record", f"{what} is {type(value).__name__}, expected a message object")
    keys = ("role", "content") if "role" in value else ("from", "value")
    role = value.get(keys[0])
    if isinstance(role, str) and role.lower() in TOOL_ROLES:
        raise BadRecord("tool_message", f"{what} is a {role} message; tool calls are not supported, remove them")
    if not isinstance(role, str) or role.lower() not in ROLES:
        raise BadRecord(
            "malformed_record", f"{what}.{keys[0]} is {role!r}, expected one of system, user, assistant (human, gpt)"
        )
    return {"role": ROLES[role.lower()], "content": text_of(value.get(keys[1]), f"{what}.{keys[1]}")}


def messages(value: Any, what: str) -> Messages:
    """A list of messages; a plain string is one user message (TRL's standard format)."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise BadRecord("malformed_record", f"{what} is {type(value).__name__}, expected a list of messages")
    return [message(item, f"{what}[{i}]") for i, item in enumerate(value)]


def reply(value: Any, what: str) -> str:
    """The text of one assistant reply: a string, a message or a list holding exactly one assistant message."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        value = [value]
    found = messages(value, what)
    if len(found) != 1 or found[0]["role"] != "assistant":
        roles = [m["role"] for m in found]
        raise BadRecord("not_one_reply", f"{what} holds roles {roles}, expected one assistant message")
    return found[0]["content"]


def _implicit(chosen: Any, rejected: Any) -> tuple[Messages, str, str]:
    """TRL's implicit prompt: the longest shared opening of the two conversations is the prompt."""
    if isinstance(chosen, str) or isinstance(rejected, str):
        raise BadRecord("missing_prompt", 'standard rows without "prompt" have no turn boundaries; add a "prompt"')
    whole_chosen, whole_rejected = messages(chosen, "chosen"), messages(rejected, "rejected")
    shared = 0
    while (shared < min(len(whole_chosen), len(whole_rejected)) - 1
           and whole_chosen[shared] == whole_rejected[shared]):  # fmt: skip
        shared += 1
    return (
        whole_chosen[:shared],
        reply(chosen[shared:], f"chosen[{shared}:]"),
        reply(rejected[shared:], f"rejected[{shared}:]"),
    )


def _tied(obj: dict[str, Any]) -> None:
    scores = obj.get("score_chosen"), obj.get("score_rejected")
    if all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in scores) and scores[0] == scores[1]:
        raise BadRecord("tied_scores", f"score_chosen == score_rejected ({scores[0]}): no preference")


def parse_trl_preference(obj: dict[str, Any]) -> PrefRecord:
    """TRL preference: explicit ``prompt`` or implicit (ultrafeedback_binarized's string prompt is ignored)."""
    _tied(obj)
    chosen, rejected, prompt = obj.get("chosen"), obj.get("rejected"), obj.get("prompt")
    implicit = prompt is None or (isinstance(prompt, str) and isinstance(chosen, list) and len(chosen) > 1)
    if implicit:
        return pair(*_implicit(chosen, rejected))
    return pair(messages(prompt, "prompt"), reply(chosen, "chosen"), reply(rejected, "rejected"))


def _label(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise BadRecord("malformed_record", f"label is {value!r}, expected true or false")


def parse_trl_unpaired(obj: dict[str, Any]) -> PrefRecord:
    """TRL unpaired preference: one completion and a boolean label."""
    return rating(messages(obj.get("prompt"), "prompt"), reply(obj.get("completion"), "completion"),
                  _label(obj.get("label")))  # fmt: skip


def _system(obj: dict[str, Any]) -> Messages:
    system = obj.get("system")
    return [{"role": "system", "content": system}] if isinstance(system, str) and system.strip() else []


def _alpaca_prompt(obj: dict[str, Any]) -> Messages:
    instruction = text_of(obj.get("instruction", ""), "instruction")
    query = obj.get("input") or ""
    history = obj.get("history") or []
    if not isinstance(history, list) or not all(isinstance(h, list) and len(h) == 2 for h in history):
        raise BadRecord("malformed_record", "history is not a list of [question, answer] pairs")
    prompt = _system(obj)
    for question, answer in history:
        prompt += [{"role": "user", "content": text_of(question, "history question")},
                   {"role": "assistant", "content": text_of(answer, "history answer")}]  # fmt: skip
    content = "\n".join(part for part in (instruction, text_of(query, "input")) if part)  # as LLaMA-Factory joins
    return [*prompt, {"role": "user", "content": content}]


def parse_llamafactory(obj: dict[str, Any]) -> PrefRecord:
    """LLaMA-Factory ranking data (ShareGPT/OpenAI or Alpaca style) and KTO data (``kto_tag``)."""
    key = "conversations" if "conversations" in obj else "messages" if "messages" in obj else None
    prompt = _system(obj) + messages(obj[key], key) if key else _alpaca_prompt(obj)
    if "kto_tag" in obj:
        if key:  # the last message is the rated reply
            if not prompt or prompt[-1]["role"] != "assistant":
                raise BadRecord("not_one_reply", f"{key} does not end with the rated gpt reply")
            return rating(prompt[:-1], prompt[-1]["content"], _label(obj["kto_tag"]))
        return rating(prompt, reply(obj.get("output"), "output"), _label(obj["kto_tag"]))
    return pair(prompt, reply(obj.get("chosen"), "chosen"), reply(obj.get("rejected"), "rejected"))


def get_preference_parser(name: str) -> Callable[[dict[str, Any]], PrefRecord]:
    """The record parser of a preference format (see ``PREFERENCE_FORMATS``)."""
    from .ultrafeedback import parse_ultrafeedback

    parsers = {
        "trl_preference": parse_trl_preference,
        "trl_unpaired": parse_trl_unpaired,
        "llamafactory": parse_llamafactory,
        "ultrafeedback": parse_ultrafeedback,
    }
    return parsers[name]


def preference_kind(obj: Any) -> str | None:
    """Which preference format a record is in, from its keys (None: not preference data)."""
    from .feedback import is_feedback_line
    from .openwebui import is_openwebui_feedback

    if not isinstance(obj, dict):
        return None
    if is_feedback_line(obj):
        return "feedback_log"
    if is_openwebui_feedback(obj):
        return "openwebui_feedback"
    if "chosen" in obj and "rejected" in obj:
        if "conversations" in obj or "instruction" in obj or isinstance(obj.get("chosen"), dict):
            return "llamafactory"
        return "trl_preference"
    if "kto_tag" in obj:
        return "llamafactory"
    if "completion" in obj and "label" in obj:
        return "trl_unpaired"
    if ("instruction" in obj or "prompt" in obj) and (
        isinstance(obj.get("completions"), list) or ("generations" in obj and "ratings" in obj)
    ):
        return "ultrafeedback"
    return None
