"""Chat JSON/JSONL: ``{"messages": [{role, content}]}`` and ShareGPT ``{"conversations": [{from, value}]}``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import DataFormatError, invalid_json
from ..reasoning import join_think, split_think
from ..tool_turns import TOOL_ROLE, TOOL_ROLE_NAMES, check_calls, check_tools, pack, with_tools
from . import RawRecord, issue, record

JSONL_SCAN_LINES = 50  # a JSONL file is recognised by an object on one of its opening lines
MESSAGE_ROLES = {"system": "system", "user": "user", "assistant": "assistant"}
TOOL_ROLES = {"tool", "function", "function_call", "ipython", "observation"}  # OpenAI, Llama 3.x, LLaMA-Factory
SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "model": "assistant",
    "bot": "assistant",
}


def iter_json(text: str, source: str) -> Iterator[tuple[str, Any] | RawRecord]:
    """Yield ``(where, object)`` for each record of a JSON array/object or JSONL text; bad lines yield issue rows.

    A JSON document (array, single object or ``{"data": [...]}``) is read whole; otherwise the text is read as JSONL.
    """
    stripped = text.strip()
    if not stripped:
        raise DataFormatError("empty file (expected JSON or JSONL records)", file=source, reason="empty_file")
    try:
        if source.lower().endswith(".jsonl"):
            raise json.JSONDecodeError("JSON Lines file", stripped, 0)
        document = json.loads(stripped)
    except (json.JSONDecodeError, RecursionError) as err:  # JSONL, or a document that cannot be read whole
        document = None
        if first_json_object(stripped) is None and not source.lower().endswith(".jsonl"):
            if isinstance(err, RecursionError):
                raise DataFormatError("nested too deeply to read (expected JSON records)", file=source,
                                      reason="malformed_json") from err  # fmt: skip
            raise invalid_json(err, source) from err
    if document is not None:
        if isinstance(document, dict) and isinstance(document.get("data"), list):
            document = document["data"]
        items = document if isinstance(document, list) else [document]
        for index, item in enumerate(items):
            yield f"record {index}", item
        return
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f"line {lineno}", json.loads(line)
        except json.JSONDecodeError as err:
            yield issue(
                source, "malformed_record", f"line {lineno}", f"invalid JSON ({err.msg} at column {err.colno})"
            )
        except RecursionError:
            yield issue(
                source, "malformed_record", f"line {lineno}", "nested too deeply to read (expected a dialogue)"
            )


def first_json_object(text: str, lines: int = JSONL_SCAN_LINES) -> dict[str, Any] | None:
    """The first of the opening ``lines`` lines that is a JSON object (JSONL whose first record is bad), else None."""
    start = 0
    for _ in range(lines):
        end = text.find("\n", start)
        line = text[start:] if end < 0 else text[start:end]
        try:
            value = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            value = None
        if isinstance(value, dict):
            return value
        if end < 0:
            return None
        start = end + 1
    return None


def _dialogue_id(obj: dict[str, Any], source: str, where: str) -> str:
    for key in ("dialogue_id", "id", "conversation_id"):
        if isinstance(obj.get(key), (str, int)):
            return str(obj[key])
    return f"{Path(source).stem}:{where.split()[-1]}"


def _reasoning(message: dict[str, Any], where: str, role: str, content: str) -> tuple[str, str | None]:
    """``content`` with the message's ``reasoning_content`` as its leading think block (``data/reasoning.py``), or
    the problem that makes the record malformed."""
    reasoning = message.get("reasoning_content")
    if reasoning is None or reasoning == "":
        return content, None
    if not isinstance(reasoning, str):
        return content, f"{where}.reasoning_content is {type(reasoning).__name__}, expected a string or null"
    if role != "assistant":
        return content, f"{where}.reasoning_content on a {role} message (only replies carry reasoning)"
    if split_think(content) is not None:
        return content, f"{where} has both reasoning_content and a <think> block in content; keep one"
    return join_think(reasoning.strip(), content), None


def _tool_message(message: dict[str, Any], where: str, role: str, content: Any) -> tuple[str, str, str | None]:
    """(role, content with its tool data packed, problem) of a message holding ``tool_calls`` or a tool result."""
    content = "" if content is None else content
    if not isinstance(content, str):
        return role, "", f"{where}.content is {type(content).__name__}, expected a string"
    if role in TOOL_ROLE_NAMES:
        data = {k: message[k] for k in ("name", "tool_call_id") if isinstance(message.get(k), str)}
        return TOOL_ROLE, pack(content, data), None
    if role != "assistant":
        return role, "", f"{where}.tool_calls on a {role} message (only assistant messages call tools)"
    calls, problem = check_calls(message["tool_calls"], where)
    if problem is None:  # reasoning before a call is kept as for any reply
        content, problem = _reasoning(message, where, role, content)
    return role, pack(content, {"tool_calls": calls}) if calls else content, problem


def _parse_turns(
    text: str, source: str, key: str, role_key: str, text_key: str, role_map: dict[str, str], reasoning: bool = False
) -> Iterator[RawRecord]:
    """Records of ``key`` turns; ``reasoning`` (the messages form) also reads reasoning and tool calling."""
    expected = f'an object with "{key}": a list of {{"{role_key}": one of {sorted(role_map)}, "{text_key}": str}}'
    for item in iter_json(text, source):
        if isinstance(item, dict):  # an issue row from iter_json
            yield item
            continue
        where, obj = item
        if not isinstance(obj, dict) or not isinstance(obj.get(key), list):
            if not isinstance(obj, dict):
                got = type(obj).__name__
            elif key in obj:
                got = f'"{key}" as {type(obj[key]).__name__}'
            else:
                got = f"keys {sorted(obj)[:6]}"
            yield issue(source, "malformed_record", where, f"expected {expected}; got {got}")
            continue
        if not obj[key]:
            yield issue(source, "empty_dialogue", where, f"no {key}")
            continue
        roles, texts, problem, reason = [], [], None, "malformed_record"
        tools, problem = check_tools(obj.get("tools"), where) if reasoning else ([], None)
        for position, message in enumerate(obj[key] if problem is None else []):
            if not isinstance(message, dict):
                problem = f"{key}[{position}] is {type(message).__name__}, expected an object"
                break
            role, content = message.get(role_key), message.get(text_key)
            if reasoning and (message.get("tool_calls") or str(role).lower() in TOOL_ROLE_NAMES):
                role, content, problem = _tool_message(message, f"{key}[{position}]", str(role).lower(), content)
                if problem:
                    break
                roles.append(role)
                texts.append(content)
                continue
            if message.get("tool_calls") or str(role).lower() in TOOL_ROLES:  # a counted drop of its own reason
                fix = ("write it as an assistant message's tool_calls or a role 'tool' message" if reasoning else
                       'write the record as {"messages": [...], "tools": [...]} with tool_calls and role "tool"')
                problem, reason = f"{key}[{position}] is a tool call or tool result this form cannot carry; {fix}", \
                    "tool_calls"
                break
            if not isinstance(role, str) or role.lower() not in role_map:
                problem = f"{key}[{position}].{role_key} is {role!r}, expected one of {sorted(role_map)}"
                break
            if not isinstance(content, str):
                problem = f"{key}[{position}].{text_key} is {type(content).__name__}, expected a string"
                break
            if reasoning:
                content, problem = _reasoning(message, f"{key}[{position}]", role_map[role.lower()], content)
                if problem:
                    break
            roles.append(role_map[role.lower()])
            texts.append(content)
        if problem:
            yield issue(source, reason, where, problem)
            continue
        roles, texts = with_tools(roles, texts, tools)
        yield record(source, _dialogue_id(obj, source, where), roles, texts, roles=roles)


def parse_messages(text: str, source: str, options: dict[str, Any]) -> Iterator[RawRecord]:
    """Records with ``messages: [{"role", "content"}]`` (JSON array or JSONL); an assistant message's
    ``reasoning_content`` becomes its leading think block; ``tool_calls``, ``tool`` messages and a record's ``tools``
    are kept (``data/tool_turns.py``)."""
    return _parse_turns(text, source, "messages", "role", "content", MESSAGE_ROLES, reasoning=True)


def parse_sharegpt(text: str, source: str, options: dict[str, Any]) -> Iterator[RawRecord]:
    """ShareGPT records with ``conversations: [{"from": human|gpt|system, "value"}]``."""
    return _parse_turns(text, source, "conversations", "from", "value", SHAREGPT_ROLES)
