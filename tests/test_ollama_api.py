"""Ollama's API (``/api/chat``, ``/api/generate``, ``/api/tags``, ``/api/show``) driven by the real ``ollama`` client
over loopback: the same replies as ``/v1``, Ollama's shapes (NDJSON, ``done``, counts), ``options`` honoured or
refused (issue 31 item 6)."""

from __future__ import annotations

import httpx
import ollama
import pytest

from chathuman_hf.chat import ChatEngine
from chathuman_hf.serving import create_app
from chathuman_hf.serving.runner import serve_in_thread
from chathuman_hf.skills import SkillsConfig

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
HELLO = [{"role": "user", "content": "안녕 오늘 뭐 했어"}]


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return ChatEngine.from_pretrained(tiny_model_dir, max_batch_size=4)


@pytest.fixture(scope="module")
def url(engine):
    app = create_app(engine=engine, preset="greedy", preset_overrides={"max_new_tokens": 8},
                     skills=SkillsConfig(disabled=["weather", "stock"]))
    with serve_in_thread(app) as base:
        yield base


@pytest.fixture(scope="module")
def client(url):
    return ollama.Client(host=url, timeout=120)


def v1(url, **body) -> dict:
    return httpx.post(url + "/v1/chat/completions", json={"messages": HELLO, **body}, timeout=120).json()


def test_tags_show_and_version(client, engine, url):
    (listed,) = client.list().models
    assert listed.model == f"{engine.name}:latest" and listed.details.family == "gpt2"
    assert listed.details.quantization_level == "F32" and listed.size > 0
    shown = client.show(listed.model)
    assert shown.template == engine.tokenizer.chat_template and shown.modelinfo["gpt2.context_length"] == 256
    assert shown.capabilities == ["completion"]
    assert httpx.get(url + "/api/version").json() == {"version": "0.1.0"}


def test_chat_is_the_v1_reply_in_ollamas_shape(client, engine, url):
    reply = client.chat(model=engine.name, messages=HELLO)
    expected = v1(url)
    assert reply.message.role == "assistant" and reply.message.content == expected["choices"][0]["message"]["content"]
    assert reply.done and reply.done_reason == expected["choices"][0]["finish_reason"]
    assert (reply.prompt_eval_count, reply.eval_count) == (expected["usage"]["prompt_tokens"],
                                                           expected["usage"]["completion_tokens"])
    assert reply.total_duration > 0 and reply.created_at.endswith("Z")


def test_chat_streams_ndjson(client, engine, url):
    with httpx.stream("POST", url + "/api/chat", json={"model": engine.name, "messages": HELLO}) as raw:
        assert raw.headers["content-type"].startswith("application/x-ndjson")  # stream is Ollama's default
    parts = list(client.chat(model=f"{engine.name}:latest", messages=HELLO, stream=True))
    assert all(not p.done for p in parts[:-1]) and parts[-1].done and parts[-1].message.content == ""
    whole = client.chat(model=engine.name, messages=HELLO)
    assert "".join(p.message.content for p in parts).replace(" ", "") == whole.message.content.replace(" ", "")
    assert parts[-1].eval_count == whole.eval_count and parts[-1].done_reason == whole.done_reason


def test_generate_with_system_is_the_chat_reply(client, engine, url):
    system = "너는 친절한 친구야"
    reply = client.generate(model=engine.name, prompt=HELLO[0]["content"], system=system)
    expected = v1(url, messages=[{"role": "system", "content": system}, *HELLO])
    assert reply.response == expected["choices"][0]["message"]["content"] and reply.done
    assert reply.prompt_eval_count == expected["usage"]["prompt_tokens"]
    loaded = client.generate(model=engine.name, prompt="")
    assert loaded.done and loaded.done_reason == "load" and loaded.response == ""


def test_options_map_onto_the_same_fields(client, engine, url):
    sampled = {"temperature": 1.0, "seed": 11, "num_predict": 6}
    first = client.chat(model=engine.name, messages=HELLO, options=sampled)
    assert first.message.content == client.chat(model=engine.name, messages=HELLO, options=sampled).message.content
    assert first.message.content == v1(url, temperature=1.0, seed=11, max_tokens=6)["choices"][0]["message"]["content"]
    assert first.eval_count <= 6
    penalised = client.chat(model=engine.name, messages=HELLO, options={"repeat_penalty": 3.0, "top_k": 1})
    assert penalised.message.content == v1(url, repetition_penalty=3.0)["choices"][0]["message"]["content"]
    runtime = client.chat(model=engine.name, messages=HELLO, options={"num_ctx": 2048, "num_thread": 2,
                                                                      "num_predict": -1})
    assert runtime.message.content == client.chat(model=engine.name, messages=HELLO).message.content
    scored = client.chat(model=engine.name, messages=HELLO, logprobs=True, top_logprobs=2)
    assert len(scored.logprobs) == scored.eval_count and len(scored.logprobs[0].top_logprobs) == 2


def test_format_json_and_a_schema_constrain_the_reply(client, engine, url):
    """Ollama's ``format`` goes through the structured-output path: the reply parses (and validates), even from a
    random tiny model."""
    import json

    import jsonschema

    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 6},
                                               "days": {"type": "integer", "minimum": 1, "maximum": 3}},
              "required": ["city", "days"], "additionalProperties": False}
    reply = client.chat(model=engine.name, messages=HELLO, format=schema, options={"num_predict": 120})
    assert reply.done_reason == "stop"
    jsonschema.validate(json.loads(reply.message.content), schema)
    anything = client.chat(model=engine.name, messages=HELLO, format="json", options={"num_predict": 40})
    assert anything.message.content.startswith("{")  # a random model may write one long string up to the limit
    if anything.done_reason == "stop":
        assert isinstance(json.loads(anything.message.content), dict)
    else:
        assert anything.done_reason == "length"
    streamed = "".join(part.message.content for part in client.chat(
        model=engine.name, messages=HELLO, format=schema, options={"num_predict": 120}, stream=True))
    jsonschema.validate(json.loads(streamed), schema)
    raw = httpx.post(url + "/api/chat", json={"messages": HELLO, "format": "yaml", "stream": False}, timeout=60)
    assert raw.status_code == 400 and raw.json() == {"error": 'format must be "json" or a JSON schema object.'}


@pytest.mark.parametrize(("kwargs", "status", "message"), [
    ({"options": {"mirostat": 2}}, 400, "options.mirostat is not supported"),
    ({"options": {"temperature": 9}}, 400, "temperature"),
    ({"format": {"type": "object", "properties": {"a": {"type": "nonsense"}}}}, 400, "format"),
    ({"think": True}, 400, "think is not supported"),
    ({"model": "llama3"}, 404, "model 'llama3' not found"),
    ({"messages": [{"role": "user", "content": "봐", "images": ["aGVsbG8="]}]}, 400, "images cannot be read"),
])
def test_refusals_in_ollamas_error_shape(client, engine, kwargs, status, message):
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(**{"model": engine.name, "messages": HELLO, **kwargs})
    assert caught.value.status_code == status and message in caught.value.error
