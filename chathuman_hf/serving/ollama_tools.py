"""Ollama's structured fields in OpenAI's form: ``format`` as ``response_format``, and tools on ``/api/chat`` in
Ollama's shapes: a call's ``arguments`` is an object (OpenAI's is a JSON string) and a ``tool`` message names its
function (``tool_name``) instead of a call id. Messages are turned into the OpenAI form the structured-output path
reads (``serving/structured.py``), and calls back into Ollama's."""

from __future__ import annotations

import json
from typing import Any

from chathuman_hf.serving.errors import ApiError


def openai_messages(messages: list[dict]) -> list[dict]:
    """Ollama chat messages as OpenAI's: calls get ids (``call_<message>_<call>``) and each ``tool`` message the id
    of the earliest unanswered call of its ``tool_name`` (else of the earliest unanswered call)."""
    out, open_calls = [], []
    for i, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        converted: dict[str, Any] = {"role": role, "content": content}
        if role == "assistant" and message.get("tool_calls"):
            calls = []
            for j, call in enumerate(message["tool_calls"]):
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                    raise ApiError(400, f"messages[{i}].tool_calls[{j}] needs a function with a name.",
                                   param=f"messages[{i}].tool_calls")
                arguments = function.get("arguments") or {}
                text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
                calls.append({"id": f"call_{i}_{j}", "type": "function",
                              "function": {"name": function["name"], "arguments": text}})
            converted["tool_calls"] = calls
            open_calls = [(c["id"], c["function"]["name"]) for c in calls]
        elif role == "tool":
            name = message.get("tool_name") or message.get("name")
            match = next((k for k, (_, n) in enumerate(open_calls) if n == name), 0 if open_calls else None)
            if match is None:
                raise ApiError(400, f"messages[{i}] is a tool result with no tool call before it.",
                               param=f"messages[{i}]")
            converted["tool_call_id"] = open_calls.pop(match)[0]
        out.append(converted)
    return out


def ollama_calls(calls: list[dict]) -> list[dict]:
    """OpenAI tool calls as Ollama writes them (``arguments`` an object)."""
    return [{"function": {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}}
            for c in calls]


def response_format(value: Any) -> dict:
    """Ollama's ``format`` as OpenAI's ``response_format``: ``"json"`` any JSON object, an object a JSON schema the
    reply must validate against (both decoded under a grammar, ``serving/structured.py``)."""
    if value in (None, ""):
        return {}
    if value == "json":
        return {"response_format": {"type": "json_object"}}
    if isinstance(value, dict):
        return {"response_format": {"type": "json_schema", "json_schema": {"name": "format", "schema": value,
                                                                           "strict": True}}}
    raise ApiError(400, 'format must be "json" or a JSON schema object.', param="format")
