"""Structured output (``response_format``) on /v1/chat/completions: grammar-constrained decoding, driven by the real
``openai`` and ``langchain-openai`` clients against a server on loopback, and inside the batched engine."""

from __future__ import annotations

import json
import threading
import time

import httpx
import jsonschema
import pytest
import torch
from pydantic import BaseModel, Field

from chathuman_hf.chat import ChatEngine, get_preset
from chathuman_hf.chat.constrained import grammars_for
from chathuman_hf.chat.decoding import Job
from chathuman_hf.serving import create_app
from chathuman_hf.serving.runner import serve_in_thread

openai = pytest.importorskip("openai")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# Bounded strings and numbers: even a random model's reply must close within max_tokens under the grammar.
SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 6},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "unit": {"enum": ["celsius", "fahrenheit"]},
        "rain": {"type": "boolean"},
    },
    "required": ["city", "days", "unit", "rain"],
    "additionalProperties": False,
}


class Forecast(BaseModel):
    city: str = Field(max_length=6)
    days: int = Field(ge=1, le=7)
    rain: bool


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return ChatEngine.from_pretrained(tiny_model_dir, max_batch_size=8)


@pytest.fixture(scope="module")
def url(engine):
    app = create_app(engine=engine, preset="fast", preset_overrides={"max_new_tokens": 8}, use_skills=False)
    with serve_in_thread(app) as base:
        yield base


@pytest.fixture(scope="module")
def client(url):
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def ask(client, **kwargs):
    kwargs.setdefault("max_tokens", 200)  # the schema bounds a reply under ~110 tokens
    return client.chat.completions.create(model="", messages=[{"role": "user", "content": "서울 날씨 알려줘"}],
                                          **kwargs)


def test_json_schema_replies_validate_from_concurrent_sampled_requests(client):
    fmt = {"type": "json_schema", "json_schema": {"name": "forecast", "schema": SCHEMA, "strict": True}}
    replies: list = []

    def one() -> None:
        replies.append(ask(client, response_format=fmt, temperature=1.0))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(replies) == 4
    for reply in replies:
        assert reply.choices[0].finish_reason == "stop"
        jsonschema.validate(json.loads(reply.choices[0].message.content), SCHEMA)


def test_streamed_json_schema_reply_validates(client):
    fmt = {"type": "json_schema", "json_schema": {"name": "forecast", "schema": SCHEMA, "strict": True}}
    chunks = list(ask(client, response_format=fmt, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(text), SCHEMA)


def test_openai_parse_helper_gets_a_validated_object(client):
    completion = client.chat.completions.parse(model="", messages=[{"role": "user", "content": "날씨"}],
                                               response_format=Forecast, max_tokens=200)
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Forecast) and 1 <= parsed.days <= 7


def test_json_object_cut_mid_json_is_length_and_bad_formats_are_400(client):
    fmt = {"type": "json_schema", "json_schema": {"name": "forecast", "schema": SCHEMA}}
    reply = ask(client, response_format=fmt, max_tokens=3)  # a whole reply needs far more than 3 tokens
    assert reply.choices[0].finish_reason == "length" and reply.choices[0].message.content.startswith("{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.choices[0].message.content)
    for _ in range(3):  # a JSON object when the grammar completed ({} counts); a random model may loop to the limit
        reply = ask(client, response_format={"type": "json_object"}, max_tokens=40)
        if reply.choices[0].finish_reason == "stop":
            assert isinstance(json.loads(reply.choices[0].message.content), dict)
        else:
            assert reply.choices[0].finish_reason == "length"
    for fmt, param in [({"type": "xml"}, "response_format.type"),
                       ({"type": "json_schema", "json_schema": {"schema": SCHEMA}}, "response_format.json_schema"),
                       ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object",
                                                                                       "required": 5}}},
                        "response_format.json_schema.schema")]:
        with pytest.raises(openai.BadRequestError) as err:
            ask(client, response_format=fmt)
        assert err.value.body["param"] == param


def test_langchain_with_structured_output_json_schema(url, engine):
    langchain_openai = pytest.importorskip("langchain_openai")
    llm = langchain_openai.ChatOpenAI(base_url=f"{url}/v1", api_key="unused", model=engine.name, max_tokens=200,
                                      max_retries=0)
    forecast = llm.with_structured_output(Forecast, method="json_schema").invoke("내일 부산 날씨는?")
    assert isinstance(forecast, Forecast) and 1 <= forecast.days <= 7


def test_grammar_rows_and_plain_rows_share_a_batch_and_greedy_rows_stay_unchanged(tiny_model_dir, engine):
    solo = ChatEngine.from_pretrained(tiny_model_dir)
    greedy = get_preset("greedy", max_new_tokens=20)
    structured = get_preset("fast", max_new_tokens=200, no_repeat_ngram_size=0, banned_words=())
    eos = engine.base_config.eos_token_id
    grammars = grammars_for(engine.model, engine.tokenizer, eos if isinstance(eos, list) else [eos])
    compiled = grammars.json_schema(SCHEMA)
    prompts = ["안녕", "점심 뭐 먹을까", "비 온다", "고마워"]
    expected = [solo.generate([{"role": "user", "content": p}], greedy).text for p in prompts]
    jobs = []
    for i, prompt in enumerate(prompts * 2):  # plain greedy rows and grammar rows, joined in one batch
        ids = engine.prompt_ids([{"role": "user", "content": prompt}], max_new_tokens=200)
        grammar = i >= len(prompts)
        config = engine.generation_config(structured if grammar else greedy)
        jobs.append(engine.scheduler.submit(Job(ids, config, time.monotonic() + 60,
                                                constraints=[grammars.mask(compiled)] if grammar else [])))
    for job in jobs:
        assert job.done.wait(60) and job.error is None
    texts = [engine.tokenizer.decode(j.tokens, skip_special_tokens=True).strip() for j in jobs]
    assert texts[:4] == expected
    for text in texts[4:]:
        jsonschema.validate(json.loads(text), SCHEMA)


def test_one_at_a_time_engine_honours_the_grammar(tiny_model_dir):
    solo = ChatEngine.from_pretrained(tiny_model_dir)
    app = create_app(engine=solo, preset="seed", use_skills=False)  # beam search preset: one beam under a grammar
    fmt = {"type": "json_schema", "json_schema": {"name": "forecast", "schema": SCHEMA}}
    with serve_in_thread(app) as base:
        body = httpx.post(f"{base}/v1/chat/completions", timeout=60, json={
            "messages": [{"role": "user", "content": "날씨"}], "response_format": fmt, "max_tokens": 200}).json()
    assert body["choices"][0]["finish_reason"] == "stop"
    jsonschema.validate(json.loads(body["choices"][0]["message"]["content"]), SCHEMA)


def test_special_tokens_never_enter_a_json_string(engine):
    """The tokenizer's special tokens other than the stop ids (here <pad>, <unk>, <sys>) are not text: xgrammar saw
    them as the bytes of their names and let them into JSON strings, and a sampled <pad> at the token limit made a
    cut reply look finished ("stop" with '{"페W … 마셔' as its content)."""
    eos = engine.base_config.eos_token_id
    stops = eos if isinstance(eos, list) else [eos]
    grammars = grammars_for(engine.model, engine.tokenizer, stops)
    mask = grammars.mask(grammars.json_schema(None))
    prompt = engine.prompt_ids([{"role": "user", "content": "서울 날씨 알려줘"}], max_new_tokens=40)
    vocab = engine.model.get_output_embeddings().weight.shape[0]
    mask(torch.tensor([prompt]), torch.zeros(1, vocab))
    opened = prompt + engine.tokenizer.convert_tokens_to_ids(["<0x7B>", '"'])  # {" : inside the first key
    allowed = mask(torch.tensor([opened]), torch.zeros(1, vocab))[0] > -float("inf")
    special = [i for i in engine.tokenizer.all_special_ids if i not in stops]
    assert sorted(engine.tokenizer.convert_ids_to_tokens(special)) == ["<pad>", "<sys>", "<unk>"]
    assert [i for i in special if allowed[i]] == []
    assert allowed.sum() > 1000  # the string still takes almost any text
