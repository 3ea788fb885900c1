"""Gemma and tools (issue 31, item 4): Gemma 3's template renders none (the server's 400 stays; tests/test_tool_calls),
Gemma 4's real template (tests/chat_templates/gemma4.jinja) writes calls as ``<|tool_call>call:NAME{…}<tool_call|>``
with ``<|"|>``-delimited strings: the syntax is recognised from what the template renders, read back into OpenAI
calls, forced by xgrammar's ``gemma_4`` structural tag and held back while streaming. Training on the template is
refused in one line: its generation prompt opens an empty thought channel that its history never shows."""

from __future__ import annotations

import json

import pytest

from chathuman_hf.chat.gemma_calls import gemma_arguments
from chathuman_hf.chat.tool_calls import parse_tool_calls, tool_style
from chathuman_hf.serving.structured import Structured, ToolStream
from chathuman_hf.tokens.rendering import TemplateError, layout_for
from tests.helpers.real_templates import real_template_tokenizer

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "날씨", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"]}}}
ARGS = {"city": "Seoul, 서울 {x}", "days": 2, "ok": True, "tags": [1, "a", None], "more": {"k": "v", "z": -1.5}}


def _rendered_call(tok, arguments: dict) -> str:
    """What Gemma 4's template renders for an assistant turn holding one call, without the turn's end."""
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": arguments}}]}]
    text = tok.apply_chat_template(messages, tools=[WEATHER], tokenize=False)
    return text[text.index("<|turn>model\n") + len("<|turn>model\n"):].removesuffix("<turn|>\n")


def test_gemma4_template_renders_tools_in_its_own_syntax_and_gemma3_renders_none():
    tok = real_template_tokenizer("gemma4")
    assert tool_style(tok) == "gemma_4" and tool_style(real_template_tokenizer("gemma3")) is None
    offered = tok.apply_chat_template([{"role": "user", "content": "hi"}], tools=[WEATHER], tokenize=False,
                                      add_generation_prompt=True)
    assert offered == (
        '<bos><|turn>system\n<|tool>declaration:get_weather{description:<|"|>날씨<|"|>,parameters:{properties:{'
        'city:{type:<|"|>STRING<|"|>},days:{type:<|"|>INTEGER<|"|>}},required:[<|"|>city<|"|>,<|"|>days<|"|>],'
        'type:<|"|>OBJECT<|"|>}}<tool|><turn|>\n<|turn>user\nhi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>')
    assert _rendered_call(tok, {"city": "서울", "days": 2}) == (
        '<|tool_call>call:get_weather{city:<|"|>서울<|"|>,days:2}<tool_call|>')


def test_gemma4_calls_are_read_back_into_openai_calls():
    tok = real_template_tokenizer("gemma4")
    text = _rendered_call(tok, ARGS)
    content, calls = parse_tool_calls("잠깐만요. " + text, "gemma_4", {"get_weather"})
    assert content == "잠깐만요."
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [("get_weather", ARGS)]
    assert parse_tool_calls(text, "gemma_4", {"other"}) == (text, [])  # an unknown tool stays text
    broken = '<|tool_call>call:get_weather{city:<|"|>서울,days:2}<tool_call|>'  # an unterminated string
    assert parse_tool_calls(broken, "gemma_4", {"get_weather"}) == (broken, [])
    assert gemma_arguments('a:<|"|>x, y<|"|>,b:[true,false,null],c:{d:1e2}') == {
        "a": "x, y", "b": [True, False, None], "c": {"d": 100.0}}
    with pytest.raises(ValueError):
        gemma_arguments('a:<|"|>unterminated')


def test_xgrammar_gemma4_tag_forces_the_templates_call_syntax():
    xgr = pytest.importorskip("xgrammar")
    from chathuman_hf.chat.constrained import Grammars

    tok = real_template_tokenizer("gemma4")
    grammars = Grammars(tok, len(tok), [tok.convert_tokens_to_ids("<turn|>")])

    def accepts(text: str) -> bool:
        matcher = xgr.GrammarMatcher(grammars.tool_call("gemma_4", [WEATHER], "required"))
        return all(matcher.accept_token(t) for t in tok(text, add_special_tokens=False)["input_ids"])

    assert accepts(_rendered_call(tok, {"city": "서울", "days": 2}))
    assert not accepts('<|tool_call>call:get_weather{city:"서울",days:2}<tool_call|>')
    assert not accepts("그냥 대답이에요")


def test_a_streamed_gemma4_call_is_held_back_from_its_trigger():
    stream = ToolStream(Structured(style="gemma_4", names={"get_weather"}))
    shown = [stream.feed(p) for p in ["확인할게요 ", "<|tool", "_call>call:get_weather{city:", '<|"|>서울<|"|>}',
                                      "<tool_call|>"]]
    assert shown == ["확인할게요 ", "", "", "", ""]
    delta, finish = stream.finish("stop")
    assert finish == "tool_calls" and json.loads(delta["tool_calls"][0]["function"]["arguments"]) == {"city": "서울"}


def test_gemma4_is_refused_for_training_in_one_line():
    with pytest.raises(TemplateError, match=r"gemma4: the generation prompt after turn 1 is not how assistant turn 2 "
                                            r"starts \(it adds '<\|channel>thought\\n<channel\|>'\)") as err:
        layout_for(real_template_tokenizer("gemma4"), ("user", "assistant", "user"))
    assert "\n" not in str(err.value)
