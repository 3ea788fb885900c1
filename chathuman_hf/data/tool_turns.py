"""Tool calling in training data: a record's ``tools`` list, an assistant message's ``tool_calls`` and ``tool``
messages (OpenAI's and TRL's message form), checked when a file is read and carried through the pipeline inside the
message texts.

The normalized dialogue keeps ``{"role", "content"}`` messages, so tool data rides in the content behind ``MARK``
(a private-use character no chat text holds) as JSON: an assistant message's calls, a ``tool`` message's ``name`` /
``tool_call_id``, and the record's ``tools`` on its leading system message (one with no text of its own when the
record has none; it renders no system turn). ``template_form`` (called by ``tokens/template_inputs.render_text``)
unpacks them into what a chat template reads. Such texts are kept verbatim by cleaning.
"""

from __future__ import annotations

import json
from typing import Any

MARK = "\ue010"  # content[:i] is the message's text, content[i + 1:] its tool data (JSON)
TOOL_ROLE = "tool"
TOOL_ROLE_NAMES = {"tool", "ipython"}  # OpenAI/TRL, Llama 3.x


def carries_tools(role: str, text: str) -> bool:
    """True for a message that is a tool result or holds tool data (kept verbatim, never merged)."""
    return role == TOOL_ROLE or MARK in text


def has_tool_data(messages: list[dict]) -> bool:
    """True when a dialogue holds tool definitions, calls or results."""
    return any(carries_tools(m["role"], m["content"]) for m in messages)


def _arguments(value: Any) -> tuple[dict | None, str]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as err:
            return None, f"is not JSON ({err.msg} at column {err.colno})"
    if not isinstance(value, dict):
        return None, f"is {type(value).__name__}, expected an object or a JSON string of one"
    return value, ""


def check_calls(calls: Any, where: str) -> tuple[list[dict] | None, str | None]:
    """``tool_calls`` in the form templates read (``arguments`` a dict), or the problem that makes it malformed."""
    if not isinstance(calls, list):
        return None, f"{where}.tool_calls is {type(calls).__name__}, expected a list"
    out = []
    for i, call in enumerate(calls):
        function = call.get("function", call) if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            return None, f'{where}.tool_calls[{i}] needs {{"type": "function", "function": {{"name": str, ...}}}}'
        arguments, problem = _arguments(function.get("arguments", {}))
        if arguments is None:
            return None, f"{where}.tool_calls[{i}].function.arguments {problem}"
        call_out = {"type": "function", "function": {"name": function["name"], "arguments": arguments}}
        if isinstance(call, dict) and isinstance(call.get("id"), str):
            call_out["id"] = call["id"]
        out.append(call_out)
    return out, None


def check_tools(tools: Any, where: str) -> tuple[list[dict] | None, str | None]:
    """A record's ``tools`` (a list of JSON schemas, or TRL's JSON string of one), or the problem."""
    if isinstance(tools, str):
        try:
            tools = json.loads(tools) if tools.strip() else []
        except json.JSONDecodeError as err:
            return None, f"{where}.tools is not JSON ({err.msg} at column {err.colno})"
    if tools is None:
        return [], None
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        return None, f"{where}.tools is {type(tools).__name__}, expected a list of function schemas"
    for i, tool in enumerate(tools):
        function = tool.get("function", tool)
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            return None, f'{where}.tools[{i}] needs {{"type": "function", "function": {{"name": str, ...}}}}'
    return tools, None


def pack(text: str, data: dict[str, Any]) -> str:
    """``text`` carrying ``data`` (nothing added when ``data`` is empty)."""
    return f"{text}{MARK}{json.dumps(data, ensure_ascii=False)}" if data else text


def unpack(text: str) -> tuple[str, dict[str, Any]]:
    """(text, tool data) of a packed content."""
    at = text.find(MARK)
    return (text, {}) if at < 0 else (text[:at], json.loads(text[at + 1:]))


def with_tools(roles: list[str], texts: list[str], tools: list[dict]) -> tuple[list[str], list[str]]:
    """The record's ``tools`` packed onto its leading system message (one is added when it has none)."""
    if not tools:
        return roles, texts
    if roles and roles[0] == "system":
        return roles, [pack(texts[0], {"tools": tools}), *texts[1:]]
    return ["system", *roles], [pack("", {"tools": tools}), *texts]


def template_form(messages: list[dict]) -> tuple[list[dict], list[dict] | None]:
    """Messages as a chat template reads them (``tool_calls``, ``name``, ``tool_call_id`` unpacked) and the tools
    (None when the dialogue offers none); a system message that only carried the tools is left out."""
    out, tools = [], None
    for m in messages:
        text, data = unpack(m["content"])
        if "tools" in data:
            tools = data.pop("tools")
            if m["role"] == "system" and not text:
                continue
        message = {**m, "content": text, **data}
        if m["role"] == TOOL_ROLE and "name" not in message:
            name = _called_name(out, data.get("tool_call_id"))
            if name:
                message["name"] = name
        out.append(message)
    return out, tools


def _called_name(history: list[dict], call_id: str | None) -> str:
    """The function a tool result answers (templates such as Llama 3.x's and EXAONE 4.0's may read ``name``)."""
    for message in reversed(history):
        calls = message.get("tool_calls") or []
        if call_id is None and len(calls) == 1:
            return calls[0]["function"]["name"]
        for call in calls:
            if call_id is not None and call.get("id") == call_id:
                return call["function"]["name"]
        if calls:
            return ""
    return ""
