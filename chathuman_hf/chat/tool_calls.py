"""Tool calls in a model's own syntax: which syntax a chat template uses, and the calls parsed back from a reply.

The syntax is read from what the template itself renders for an assistant turn holding a call (not from its name):

* ``qwen_3`` (Qwen 2.5/3, Hermes): ``<tool_call>\\n{"name": …, "arguments": {…}}\\n</tool_call>``
* ``exaone`` (EXAONE 4.0): ``<tool_call>{"name": …, "arguments": {…}}</tool_call>``
* ``llama`` (Llama 3.1/3.2): the reply is the JSON ``{"name": …, "parameters": {…}}`` (several: ``;`` between)
* ``gemma_4`` (Gemma 4): ``<|tool_call>call:NAME{key:value,…}<tool_call|>``, keys bare and strings between ``<|"|>``
  tokens (``chat/gemma_calls.py`` reads the arguments)

The names are xgrammar's model structural tags, which ``chat/constrained.py`` uses to force a call.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from chathuman_hf.chat.gemma_calls import gemma_tool_calls

_PROBE = "chathuman_probe_tool"
_PROBE_TOOL = {"type": "function", "function": {"name": _PROBE, "description": "probe",
                                                "parameters": {"type": "object", "properties": {}}}}
_PROBE_CALL = [{"role": "user", "content": "?"},
               {"role": "assistant", "content": "", "tool_calls": [
                   {"id": "call_0", "type": "function", "function": {"name": _PROBE, "arguments": {}}}]}]
_SHAPES = {  # what a rendered call starts with → style
    f'<tool_call>\n{{"name": "{_PROBE}", "arguments": ': "qwen_3",
    f'<tool_call>{{"name": "{_PROBE}", "arguments": ': "exaone",
    f'{{"name": "{_PROBE}", "parameters": ': "llama",
    f"<|tool_call>call:{_PROBE}{{": "gemma_4",
}
# where a call begins in a streamed reply, per style (llama has no marker: a reply opening "{" is a call)
TRIGGERS = {"qwen_3": "<tool_call>", "exaone": "<tool_call>", "gemma_4": "<|tool_call>"}
_STYLE_CACHE: dict[str, str | None] = {}
_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


def tool_style(tokenizer: Any) -> str | None:
    """The tool-call syntax of ``tokenizer``'s chat template, or ``None`` when it does not render tool definitions
    or renders calls in a syntax this module cannot parse (then tools cannot be offered to the model)."""
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str):
        return None
    if template not in _STYLE_CACHE:
        style = None
        try:
            offered = tokenizer.apply_chat_template(_PROBE_CALL[:1], tools=[_PROBE_TOOL], tokenize=False,
                                                    add_generation_prompt=True)
            called = tokenizer.apply_chat_template(_PROBE_CALL, tools=[_PROBE_TOOL], tokenize=False)
            if _PROBE in offered:
                style = next((s for shape, s in _SHAPES.items() if shape in called), None)
        except Exception:  # a template that raises on tools or on a call message has no tool support here
            style = None
        _STYLE_CACHE[template] = style
    return _STYLE_CACHE[template]


def _call(name: str, arguments: Any) -> dict:
    """One call in OpenAI's shape (``arguments`` a JSON string)."""
    return {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)}}


def _as_call(obj: Any, names: set[str], key: str) -> dict | None:
    if not isinstance(obj, dict) or obj.get("name") not in names:
        return None
    arguments = obj.get(key, obj.get("arguments", obj.get("parameters", {})))
    return _call(obj["name"], arguments) if isinstance(arguments, dict) else None


def parse_tool_calls(text: str, style: str, names: set[str]) -> tuple[str | None, list[dict]]:
    """(content, calls) of a reply: the calls to tools in ``names`` written in ``style``; content is the text
    around them (``None`` when empty). A call that does not parse, or names another tool, stays content."""
    if style in ("qwen_3", "exaone"):
        calls, kept, last = [], [], 0
        for match in _TAGGED.finditer(text):
            try:
                call = _as_call(json.loads(match.group(1)), names, "arguments")
            except json.JSONDecodeError:
                call = None
            if call is None:
                continue
            calls.append(call)
            kept.append(text[last:match.start()])
            last = match.end()
        content = ("".join(kept) + text[last:]).strip() if calls else text
        return content or None, calls
    if style == "gemma_4":
        return gemma_tool_calls(text, names, _call)
    if style == "llama":
        decoder, calls, at, body = json.JSONDecoder(), [], 0, text.strip()
        while at < len(body):
            try:
                obj, at = decoder.raw_decode(body, at)
            except json.JSONDecodeError:
                return text, []
            call = _as_call(obj, names, "parameters")
            if call is None:
                return text, []
            calls.append(call)
            while at < len(body) and body[at] in " \n\t;":
                at += 1
        return (None, calls) if calls else (text, [])
    raise ValueError(f"unknown tool-call style {style!r}; expected one of {sorted(set(_SHAPES.values()))}")
