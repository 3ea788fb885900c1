"""Tools on /v1/chat/completions: the real chat templates (tests/chat_templates) render them, a forced tool_choice
decodes a valid call even from a random tiny model, tool calls come back in OpenAI's shape (the ``openai`` and
``langchain-openai`` clients on loopback), and a template without tool support is a 400."""

from __future__ import annotations

import json

import jsonschema
import pytest

from chathuman_hf.chat import ChatEngine
from chathuman_hf.chat.tool_calls import parse_tool_calls, tool_style
from chathuman_hf.serving import create_app
from chathuman_hf.serving.openai_api import to_messages
from chathuman_hf.serving.runner import serve_in_thread
from chathuman_hf.serving.schemas import ChatCompletionRequest
from chathuman_hf.serving.structured import Structured, ToolStream
from tests.helpers.families import TINY_FAMILY_CONFIGS
from tests.helpers.real_templates import real_template_tokenizer

openai = pytest.importorskip("openai")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 5}, "days": {"type": "integer", "minimum": 1,
                                                                        "maximum": 3}},
    "required": ["city", "days"],
    "additionalProperties": False,
}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "날씨 조회",
                                            "parameters": PARAMETERS}}
TIME = {"type": "function", "function": {"name": "get_time", "description": "현재 시각",
                                         "parameters": {"type": "object", "properties": {}}}}
STYLES = {"qwen2_5": "qwen_3", "qwen3": "qwen_3", "llama3_1": "llama", "llama3_2": "llama", "exaone4": "exaone"}
# the tool-less templates the server must refuse tools for, and one that renders tools but not a parseable call
REFUSED = ["gemma3", "exaone3_5", "smollm2", "granite3_3", "phi4_mini", "mistral_small3_2"]


def tool_model_dir(path, name: str):
    """A tiny random llama with ``name``'s real template and tokenizer; 2,048 positions: a byte-level vocabulary of
    600 makes the tool instructions of the real templates ~900 tokens long."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    tok = real_template_tokenizer(name)
    tok.save_pretrained(path)
    config = AutoConfig.for_model("llama", vocab_size=len(tok), bos_token_id=tok.bos_token_id,
                                  eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                  **{**TINY_FAMILY_CONFIGS["llama"], "max_position_embeddings": 2048})
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    return path


@pytest.mark.parametrize("name", [*STYLES, *REFUSED])
def test_tool_style_is_read_from_what_the_template_renders(name):
    assert tool_style(real_template_tokenizer(name)) == STYLES.get(name)


@pytest.mark.parametrize("style, text", [
    ("qwen_3", '잠깐만요.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "서울", "days": 2}}\n'
               '</tool_call>'),
    ("exaone", '<tool_call>{"name": "get_weather", "arguments": {"city": "서울", "days": 2}}</tool_call>'),
    ("llama", '{"name": "get_weather", "parameters": {"city": "서울", "days": 2}}'),
])
def test_tool_call_text_is_parsed_into_openai_calls(style, text):
    content, calls = parse_tool_calls(text, style, {"get_weather"})
    assert content == ("잠깐만요." if style == "qwen_3" else None)
    assert [(c["type"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        ("function", "get_weather", {"city": "서울", "days": 2})]
    assert calls[0]["id"].startswith("call_")
    assert parse_tool_calls(text, style, {"other"}) == (text, [])  # an unknown tool stays text
    assert parse_tool_calls("그냥 대답이에요", style, {"get_weather"}) == ("그냥 대답이에요", [])


@pytest.fixture(scope="module", params=["qwen2_5", "llama3_1", "exaone4"])
def server(request, tmp_path_factory):
    path = tool_model_dir(tmp_path_factory.mktemp(request.param), request.param)
    engine = ChatEngine.from_pretrained(path, max_batch_size=4)
    app = create_app(engine=engine, preset="fast", use_skills=False)
    with serve_in_thread(app) as url:
        yield request.param, engine, openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0), url


def ask(client, **kwargs):
    return client.chat.completions.create(model="", messages=[{"role": "user", "content": "서울 날씨 어때?"}],
                                          max_tokens=240, tools=[WEATHER, TIME], **kwargs)


def test_forced_tool_choice_gives_a_valid_call_streamed_or_not(server):
    _, _, client, _ = server
    for choice in ({"type": "function", "function": {"name": "get_weather"}}, "required"):
        reply = ask(client, tool_choice=choice)
        assert reply.choices[0].finish_reason == "tool_calls"
        call = reply.choices[0].message.tool_calls[0]
        assert call.type == "function" and call.id.startswith("call_")
        if choice != "required":
            assert call.function.name == "get_weather"
            jsonschema.validate(json.loads(call.function.arguments), PARAMETERS)
    chunks = list(ask(client, tool_choice={"type": "function", "function": {"name": "get_weather"}}, stream=True))
    deltas = [d for c in chunks if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert deltas[0].function.name == "get_weather" and deltas[0].index == 0
    jsonschema.validate(json.loads(deltas[0].function.arguments), PARAMETERS)


def test_tool_results_in_the_history_reach_the_template(server):
    name, engine, client, _ = server
    history = [{"role": "user", "content": "서울 날씨 어때?"},
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "서울", "days": 1}'}}]},
               {"role": "tool", "tool_call_id": "call_1", "content": "맑음 영하 3도"}]
    messages = to_messages(ChatCompletionRequest(messages=history), 1000)
    prompt = engine.tokenizer.decode(engine.prompt_ids(messages, max_new_tokens=20, tools=[WEATHER]))
    assert "맑음 영하 3도" in prompt and '"city": "서울"' in prompt and "get_weather" in prompt
    reply = client.chat.completions.create(model="", messages=history, tools=[WEATHER], max_tokens=5,
                                           tool_choice="none")
    assert reply.choices[0].finish_reason in ("stop", "length") and reply.usage.prompt_tokens > 20


def test_langchain_bind_tools_forcing_a_call(server):
    langchain_openai = pytest.importorskip("langchain_openai")
    _, engine, _, url = server
    llm = langchain_openai.ChatOpenAI(base_url=f"{url}/v1", api_key="unused", model=engine.name, max_tokens=240,
                                      max_retries=0)
    message = llm.bind_tools([WEATHER], tool_choice="get_weather").invoke("부산 날씨 알려줘")
    assert [call["name"] for call in message.tool_calls] == ["get_weather"]
    jsonschema.validate(message.tool_calls[0]["args"], PARAMETERS)


@pytest.fixture(scope="module")
def plain_client(tiny_model_dir):
    app = create_app(tiny_model_dir, preset="greedy", use_skills=False)
    with serve_in_thread(app) as url:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


@pytest.mark.parametrize("kwargs, param", [
    ({"tools": [WEATHER]}, "tools"),  # our <usr>/<sys> template renders no tools
    ({"tool_choice": "required"}, "tool_choice"),  # tool_choice without tools
    ({"tools": [{"type": "function", "function": {"parameters": {}}}]}, "tools[0]"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
])
def test_tools_the_server_cannot_honour_are_400(plain_client, kwargs, param):
    with pytest.raises(openai.BadRequestError) as err:
        plain_client.chat.completions.create(model="", messages=[{"role": "user", "content": "안녕"}], **kwargs)
    assert err.value.body["param"] == param


def test_training_data_with_tool_calls_loads_and_sharegpt_tool_turns_are_a_counted_drop(tmp_path):
    """Chat JSON tool calls train (tests/test_tool_training.py); ShareGPT's function turns stay a counted drop."""
    from chathuman_hf.data import DataReport, load_dialogues

    good = {"messages": [{"role": "user", "content": "안녕"}, {"role": "assistant", "content": "반가워"}]}
    called = {"messages": [{"role": "user", "content": "서울 날씨?"},
                           {"role": "assistant", "content": None, "tool_calls": [
                               {"id": "call_1", "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"city": "서울"}'}}]},
                           {"role": "tool", "tool_call_id": "call_1", "content": "맑음"},
                           {"role": "assistant", "content": "맑아요."}]}
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in (good, called, good)) + "\n",
                    encoding="utf-8")
    report = DataReport()
    assert [[m["role"] for m in d] for d in load_dialogues(path, report=report)["messages"]] == [
        ["user", "assistant"], ["user", "assistant", "tool", "assistant"], ["user", "assistant"]]
    shared = tmp_path / "sharegpt.json"
    shared.write_text(json.dumps([{"conversations": [{"from": "human", "value": "서울 날씨?"},
                                                     {"from": "function_call", "value": "{}"}]}]), encoding="utf-8")
    report = DataReport()
    with pytest.raises(Exception, match="no dialogues loaded"):
        load_dialogues(shared, format="sharegpt", report=report)
    assert report.examples["tool_calls"] == [
        f"{shared}: record 0: conversations[1] is a tool call or tool result this form cannot carry; write the "
        'record as {"messages": [...], "tools": [...]} with tool_calls and role "tool"']


@pytest.mark.parametrize("style, pieces, shown, calls", [
    ("qwen_3", ["잠깐만요.", "\n<tool", '_call>\n{"name": "get_weather", "arguments": {"city": "서울", "days": 1}}',
                "\n</tool_call>"], "잠깐만요.\n", 1),
    ("exaone", ["맑아요", " <tool_", "콜이 아니에요"], "맑아요 <tool_콜이 아니에요", 0),
    ("llama", ['{"name": "get_weather", ', '"parameters": {"city": "서울", "days": 1}}'], "", 1),
    ("llama", ["서울은 ", "맑아요"], "서울은 맑아요", 0),
])
def test_streamed_content_is_held_back_where_a_call_may_begin(style, pieces, shown, calls):
    stream = ToolStream(Structured(style=style, names={"get_weather"}))
    out = "".join(stream.feed(p) for p in pieces)
    delta, finish = stream.finish("stop")
    assert out == shown
    assert len(delta.get("tool_calls", [])) == calls and finish == ("tool_calls" if calls else "stop")
    assert out + delta.get("content", "") == (shown if calls else "".join(pieces))  # all content, once
