"""``response_format``, ``tools``, ``tool_choice`` and tool messages of an OpenAI chat request.

``response_format`` ``json_object`` / ``json_schema`` and a forced ``tool_choice`` (``required`` or a named function)
decode under a grammar (``chat/constrained.py``); ``tools`` go to the model's chat template, and the reply's
tool-call text comes back as ``tool_calls`` (``chat/tool_calls.py``). A template that cannot render tools is a 400.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chathuman_hf.chat import ChatEngine, GenerationPreset
from chathuman_hf.chat.constrained import grammars_for
from chathuman_hf.chat.tool_calls import TRIGGERS, parse_tool_calls, tool_style
from chathuman_hf.serving.errors import ApiError


def _field(request: Any, name: str) -> Any:
    value = getattr(request, name, None)
    return value.model_dump(exclude_none=True) if hasattr(value, "model_dump") else value


@dataclass
class Structured:
    """What a request's structured-output fields ask of generation and of the reply."""

    tools: list[dict] | None = None  # given to the chat template
    style: str | None = None  # the template's tool-call syntax: replies are parsed for calls
    names: set[str] = field(default_factory=set)
    constraint: Callable[[], list] | None = None  # this reply's grammar mask

    def preset(self, preset: GenerationPreset) -> GenerationPreset:
        """Under a grammar, one beam and no banned words or n-gram ban: they could forbid every token it allows."""
        if self.constraint is None:
            return preset
        return preset.replace(num_beams=1, no_repeat_ngram_size=0, banned_words=())

    def reply(self, text: str, finish: str) -> tuple[dict, str]:
        """The assistant message (content or ``tool_calls``) and finish reason for the generated ``text``."""
        if self.style is not None and finish == "stop":
            content, calls = parse_tool_calls(text, self.style, self.names)
            if calls:
                return {"role": "assistant", "content": content, "tool_calls": calls}, "tool_calls"
        return {"role": "assistant", "content": text}, finish


def history_fields(message: Any, index: int) -> dict:
    """The template fields of an assistant ``tool_calls`` message (arguments as objects) or a ``tool`` message."""
    where = f"messages[{index}]"
    if message.role == "tool":  # its tool_call_id is checked once the template is known to support tools
        return {"tool_call_id": getattr(message, "tool_call_id", None)}
    calls = getattr(message, "tool_calls", None)
    if message.role != "assistant" or not calls:
        return {}
    out = []
    for j, call in enumerate(calls if isinstance(calls, list) else [None]):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ApiError(400, f"{where}.tool_calls[{j}]: expected {{id, type: function, function: {{name, "
                           f"arguments}}}}.", param=f"{where}.tool_calls[{j}]")
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except (TypeError, json.JSONDecodeError):
            arguments = None
        if not isinstance(arguments, dict):
            raise ApiError(400, f"{where}.tool_calls[{j}].function.arguments is not a JSON object string.",
                           param=f"{where}.tool_calls[{j}].function.arguments")
        out.append({"id": call.get("id"), "type": "function",
                    "function": {"name": function["name"], "arguments": arguments}})
    return {"tool_calls": out}


def _tools(tools: Any) -> list[dict]:
    if not isinstance(tools, list) or not tools:
        raise ApiError(400, "tools: expected a non-empty list of {type: function, function: {name, parameters}}.",
                       param="tools")
    names = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name or not isinstance(function.get("parameters", {}), dict):
            raise ApiError(400, f"tools[{i}]: expected {{type: function, function: {{name, parameters}}}}.",
                           param=f"tools[{i}]")
        names.append(name)
    if len(set(names)) < len(names):
        raise ApiError(400, "tools: two tools have the same name.", param="tools")
    return tools


def _schema(response_format: Any) -> tuple[bool, dict | None]:
    """(constrained, schema) of ``response_format``; ``None`` schema: any JSON object."""
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if response_format is None or kind == "text":
        return False, None
    if kind == "json_object":
        return True, None
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema", {}) if isinstance(spec, dict) else None
        if not isinstance(schema, dict) or not isinstance(spec.get("name"), str):
            raise ApiError(400, "response_format.json_schema: expected {name, schema (an object), strict}.",
                           param="response_format.json_schema")
        return True, schema
    raise ApiError(400, "response_format.type: expected text, json_object or json_schema.",
                   param="response_format.type")


def plan_structured(request: Any, engine: ChatEngine, messages: list[dict]) -> Structured:
    """Check the request's structured-output fields against the model's template; 400 (``ApiError``) when wrong."""
    tools, choice = _field(request, "tools"), _field(request, "tool_choice")
    constrained, schema = _schema(_field(request, "response_format"))
    if choice is not None and not tools:
        raise ApiError(400, "tool_choice is set but tools is empty: send the tools it chooses from.",
                       param="tool_choice")
    plan = Structured()
    uses_tools = any(m["role"] == "tool" or m.get("tool_calls") for m in messages)
    if tools is not None:
        tools = _tools(tools)
        names = {t["function"]["name"] for t in tools}
        named = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
        if not (choice in (None, "auto", "none", "required") or (isinstance(choice, dict) and named in names)):
            raise ApiError(400, f"tool_choice: expected none, auto, required or {{type: function, function: {{name}}}}"
                           f" naming one of the tools ({', '.join(sorted(names))}).", param="tool_choice")
        if choice != "none":
            plan.tools, plan.names, uses_tools = tools, names, True
    if uses_tools:
        plan.style = tool_style(engine.tokenizer)
        if plan.style is None:
            raise ApiError(400, "Tools are not supported by this model's chat template (it does not render tools, "
                           "or writes calls in a syntax this server cannot parse; it parses Qwen/Hermes, Llama 3.x, "
                           "EXAONE 4.0): send no tools or tool messages.", param="tools" if plan.tools else "messages")
        for i, m in enumerate(messages):
            if m["role"] == "tool" and not (isinstance(m["tool_call_id"], str) and m["tool_call_id"]):
                raise ApiError(400, f"messages[{i}]: a tool message needs tool_call_id.",
                               param=f"messages[{i}].tool_call_id")
    forced = plan.tools is not None and choice not in (None, "auto")
    if forced and constrained:
        raise ApiError(400, "response_format cannot be combined with a forced tool_choice (the reply is a tool call).",
                       param="response_format")
    if not (forced or constrained):
        return plan
    eos = engine.base_config.eos_token_id
    grammars = grammars_for(engine.model, engine.tokenizer, eos if isinstance(eos, list) else [eos])
    try:
        compiled = (grammars.tool_call(plan.style, plan.tools, choice) if forced
                    else grammars.json_schema(schema))
    except Exception as exc:  # xgrammar: an invalid or unsupported schema
        param = "tools" if forced else "response_format.json_schema.schema"
        raise ApiError(400, f"{param}: the schema cannot be compiled to a grammar: {exc}", param=param) from None
    plan.constraint = lambda: [grammars.mask(compiled)]
    return plan


class ToolStream:
    """A streamed reply's content as it may be shown: text from where a tool call may begin (``<tool_call>``; for
    Llama, a reply that starts with ``{``) is held back; ``finish`` parses the whole reply and gives the last delta
    (the calls, or the held text as content) and the finish reason."""

    def __init__(self, plan: Structured) -> None:
        self.plan, self.text, self.sent, self.holding = plan, "", 0, False

    def feed(self, piece: str) -> str:
        self.text += piece
        style = self.plan.style
        if style is not None and not self.holding:
            if style == "llama":
                self.holding = self.text.lstrip().startswith("{")
                end = self.sent if self.holding else len(self.text)
            else:
                trigger = TRIGGERS[style]
                at = self.text.find(trigger, self.sent)
                self.holding = at >= 0
                end = at if self.holding else len(self.text) - max(
                    (k for k in range(1, len(trigger)) if self.text.endswith(trigger[:k])), default=0)
        else:
            end = self.sent if self.holding else len(self.text)
        shown, self.sent = self.text[self.sent:end], max(self.sent, end)
        return shown

    def finish(self, finish: str) -> tuple[dict, str]:
        message, finish = self.plan.reply(self.text, finish)
        if not message.get("tool_calls"):
            rest = self.text[self.sent:]
            return ({"content": rest} if rest else {}), finish
        delta: dict = {"tool_calls": [{"index": k, **call} for k, call in enumerate(message["tool_calls"])]}
        content, sent = message["content"] or "", self.text[:self.sent].strip()
        rest = content[len(sent):].strip() if content.startswith(sent) else ""
        if rest:
            delta["content"] = rest
        return delta, finish
