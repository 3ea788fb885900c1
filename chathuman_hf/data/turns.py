"""Turn rules: raw utterances → alternating user/assistant messages (seed behaviour by default)."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.window import split_exchanges
from .tool_turns import TOOL_ROLE, carries_tools

Message = dict[str, str]


@dataclass
class TurnOptions:
    """Turn-rule switches; the defaults reproduce the seed."""

    first_speaker_role: str = "user"
    merge_separator: str = " "
    drop_trailing_user: bool = True
    role_swap: bool = False
    max_dialogue_turns: int | None = None


def assign_roles(speakers: list[str], roles: list[str], first_speaker_role: str = "user") -> list[str]:
    """Keep given roles; where a role is "" the first speaker gets ``first_speaker_role`` and roles alternate."""
    other = {"user": "assistant", "assistant": "user"}
    result: list[str] = []
    current, previous = first_speaker_role, None
    for speaker, role in zip(speakers, roles, strict=True):
        if role:
            result.append(role)
            continue
        if previous is not None and speaker != previous:
            current = other[current]
        previous = speaker
        result.append(current)
    return result


def merge_consecutive(roles: list[str], texts: list[str], separator: str = " ") -> list[Message]:
    """One message per run of equal roles, contents joined with ``separator``."""
    messages: list[Message] = []
    for role, text in zip(roles, texts, strict=True):
        if messages and messages[-1]["role"] == role and not carries_tools(role, text + messages[-1]["content"]):
            messages[-1]["content"] += separator + text
        else:
            messages.append({"role": role, "content": text})
    return messages


def normalize_turns(messages: list[Message], drop_trailing_user: bool = True) -> tuple[list[Message], list[str]]:
    """Leading system kept (merged), then user-first alternation; returns ``(messages, drop_reasons)``.

    Drops: system messages after the start (``misplaced_system_message``), leading assistant turns
    (``leading_assistant_turn``), a trailing user turn (``trailing_user_turn``), and the whole dialogue when no
    user→assistant pair remains (``no_user_assistant_pair``).
    """
    drops: list[str] = []
    messages = normalize_prompt(messages, drops)
    head = messages[:1] if messages and messages[0]["role"] == "system" else []
    body = messages[len(head):]
    if drop_trailing_user and body and body[-1]["role"] == "user":
        body.pop()
        drops.append("trailing_user_turn")
    if len(body) < 2:
        drops.append("no_user_assistant_pair")
        return [], drops
    return head + body, drops


def normalize_prompt(messages: list[Message], drops: list[str]) -> list[Message]:
    """Leading system messages merged into one, later ones and leading assistant turns dropped (their reasons added
    to ``drops``), consecutive turns of one role merged: the part of ``normalize_turns`` a preference prompt shares."""
    system = [m["content"] for m in messages[: _leading_system(messages)]]
    body = []
    for message in messages[len(system):]:
        if message["role"] == "system":
            drops.append("misplaced_system_message")
        else:
            body.append(message)
    body = merge_consecutive([m["role"] for m in body], [m["content"] for m in body])
    while body and body[0]["role"] == "assistant":
        body.pop(0)
        drops.append("leading_assistant_turn")
    return ([{"role": "system", "content": "\n".join(system)}] if system else []) + body


def _leading_system(messages: list[Message]) -> int:
    count = 0
    while count < len(messages) and messages[count]["role"] == "system":
        count += 1
    return count


def role_swapped(messages: list[Message]) -> list[Message]:
    """The same dialogue seen from the other side (user↔assistant), re-normalized; [] when no pair remains.

    A system message is left out: it described the original assistant, not the new one.
    """
    swap = {"user": "assistant", "assistant": "user"}
    swapped = [{"role": swap[m["role"]], "content": m["content"]} for m in messages if m["role"] != "system"]
    result, _ = normalize_turns(swapped)
    return result


def split_max_turns(messages: list[Message], max_turns: int | None) -> list[list[Message]]:
    """Split into consecutive dialogues of at most ``max_turns`` user/assistant messages (rounded down to pairs).

    A leading system message is repeated in every part. ``None``/0 keeps the dialogue whole.
    """
    if not max_turns:
        return [messages]
    size = max(2, max_turns - max_turns % 2)
    head = messages[: _leading_system(messages)]
    body = messages[len(head) :]
    if any(m["role"] == TOOL_ROLE for m in body):  # whole exchanges: a call stays with its results and answer
        parts: list[list[Message]] = []
        for exchange in split_exchanges(body)[1]:
            if not parts or sum(m["role"] != TOOL_ROLE for m in parts[-1] + exchange) > size:
                parts.append([])
            parts[-1].extend(exchange)
        return [head + part for part in parts]
    return [head + body[i : i + size] for i in range(0, len(body), size)]


def build_messages(
    speakers: list[str], roles: list[str], texts: list[str], options: TurnOptions
) -> tuple[list[Message], list[str]]:
    """Apply role assignment, merging and normalization to one raw dialogue."""
    assigned = assign_roles(speakers, roles, options.first_speaker_role)
    merged = merge_consecutive(assigned, texts, options.merge_separator)
    return normalize_turns(merged, options.drop_trailing_user)
