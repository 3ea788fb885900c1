"""Tools on Ollama's ``/api/chat`` with the real ``ollama`` client (issue 31): the tools reach the model's template
(Qwen 2.5's real one), a call the model writes comes back in Ollama's shape (``arguments`` an object), streamed or
not, and a history with Ollama's tool messages (``tool_name``, no call id) is accepted."""

from __future__ import annotations

import httpx
import ollama
import pytest

from chathuman_hf.chat import ChatEngine
from chathuman_hf.serving import create_app
from chathuman_hf.serving.ollama_tools import openai_messages
from chathuman_hf.serving.runner import serve_in_thread
from tests.helpers.scripted import scripted
from tests.test_tool_calls import WEATHER, tool_model_dir

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
ASK = [{"role": "user", "content": "서울 날씨 어때?"}]
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "서울", "days": 2}}\n</tool_call>'


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    engine = ChatEngine.from_pretrained(tool_model_dir(tmp_path_factory.mktemp("qwen2_5"), "qwen2_5"))
    app = create_app(engine=engine, preset="greedy", use_skills=False,
                     preset_overrides={"max_new_tokens": 200, "no_repeat_ngram_size": 0})
    end = engine.tokenizer.convert_tokens_to_ids("<|im_end|>")
    with scripted(engine.model) as script, serve_in_thread(app) as url:
        yield engine, ollama.Client(host=url, timeout=120), script, end


def test_a_call_comes_back_in_ollamas_shape_streamed_or_not(served):
    engine, client, script, end = served
    script[0] = [*engine.tokenizer.encode(CALL, add_special_tokens=False), end]
    reply = client.chat(model=engine.name, messages=ASK, tools=[WEATHER])
    assert reply.done and reply.message.content == ""
    assert [(c.function.name, dict(c.function.arguments)) for c in reply.message.tool_calls] == [
        ("get_weather", {"city": "서울", "days": 2})]
    parts = list(client.chat(model=engine.name, messages=ASK, tools=[WEATHER], stream=True))
    calls = [c for p in parts for c in (p.message.tool_calls or [])]
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "서울", "days": 2})]
    assert "".join(p.message.content for p in parts) == "" and parts[-1].done
    assert client.show(engine.name).capabilities == ["completion", "tools"]


def test_ollama_tool_history_is_accepted_and_reaches_the_template(served):
    engine, client, script, end = served
    history = [*ASK, {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "get_weather", "arguments": {"city": "서울", "days": 2}}}]},
        {"role": "tool", "tool_name": "get_weather", "content": "맑음 영하 3도"}]
    assert openai_messages(history)[1:] == [
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1_0", "type": "function", "function": {
            "name": "get_weather", "arguments": '{"city": "서울", "days": 2}'}}]},
        {"role": "tool", "content": "맑음 영하 3도", "tool_call_id": "call_1_0"}]
    script[0] = [*engine.tokenizer.encode("맑아요.", add_special_tokens=False), end]
    with_result = client.chat(model=engine.name, messages=history, tools=[WEATHER])
    without = client.chat(model=engine.name, messages=ASK, tools=[WEATHER])
    assert with_result.message.content == "맑아요." and not with_result.message.tool_calls
    assert with_result.prompt_eval_count > without.prompt_eval_count + 10
    response = httpx.post(str(client._client.base_url) + "/api/generate", timeout=60,
                          json={"model": engine.name, "prompt": "안녕", "tools": [WEATHER], "stream": False})
    assert response.status_code == 400 and response.json() == {"error": "tools are taken by /api/chat, not "
                                                                         "/api/generate."}
