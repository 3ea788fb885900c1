"""``POST /v1/feedback`` driven by the real ``openai`` client over loopback: completions are made, then rated; the
feedback log's lines are read back (issue 30)."""

from __future__ import annotations

import json
import re
import time

import httpx
import openai
import pytest

from chathuman_hf.chat import ChatEngine
from chathuman_hf.data.feedback_log import FEEDBACK_SCHEMA
from chathuman_hf.serving import create_app
from chathuman_hf.serving.feedback_api import CompletionMemory
from chathuman_hf.serving.runner import serve_in_thread

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
COMMON = {"preset": "fast", "preset_overrides": {"max_new_tokens": 6}, "use_skills": False}
PII_CHAT = [{"role": "user", "content": "내 번호는 010-2345-6789야"},
            {"role": "assistant", "content": "메일 minjun@example.com 맞지?"},
            {"role": "user", "content": "응 카드는 4111-1111-1111-1111"}]
SCRUBBED = [{"role": "user", "content": "내 번호는 [전화번호]야"},
            {"role": "assistant", "content": "메일 [이메일] 맞지?"},
            {"role": "user", "content": "응 카드는 [카드번호]"}]
HELLO = [{"role": "user", "content": "안녕 오늘 뭐 했어"}]


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return ChatEngine.from_pretrained(tiny_model_dir, max_batch_size=4)


@pytest.fixture(scope="module")
def served(engine, tmp_path_factory):
    """(base URL with a feedback log, its log path, base URL of a server without one)."""
    log = tmp_path_factory.mktemp("feedback") / "logs" / "feedback.jsonl"
    with serve_in_thread(create_app(engine=engine, feedback_log=log, **COMMON)) as url, \
            serve_in_thread(create_app(engine=engine, **COMMON)) as bare:
        yield url, log, bare


@pytest.fixture(scope="module")
def done_id(served) -> str:
    """A completion of one choice, made once for the refusal tests."""
    return client(served[0]).chat.completions.create(model=None, messages=HELLO).id


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)


def rate(url: str, **body) -> dict:
    return client(url).post("/feedback", cast_to=object, body=body)


def lines(log) -> list[dict]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []


def test_a_rated_completion_is_one_scrubbed_line_and_no_pii_reaches_the_file(served, engine):
    url, log, _ = served
    before = len(lines(log))
    done = client(url).chat.completions.create(model=engine.name, messages=PII_CHAT)
    answer = rate(url, id=done.id, rating=-1, comment="카드 4111-1111-1111-1111 를 따라 했어")
    assert answer == {"object": "feedback", "id": done.id, "index": 0, "rating": -1, "model": engine.name,
                      "reply_id": f"{done.id}:0"}
    (line,) = lines(log)[before:]
    assert line == {"schema": FEEDBACK_SCHEMA, "event": "rating", "time": line["time"], "source": "api",
                    "model": engine.name, "revision": engine.revision, "conversation": done.id,
                    "reply_id": f"{done.id}:0", "messages": SCRUBBED, "reply": done.choices[0].message.content,
                    "rating": -1, "comment": "카드 [카드번호] 를 따라 했어"}
    assert re.fullmatch(r"files:[0-9a-f]{16}", line["revision"])  # the tiny model's directory (models/revision.py)
    text = log.read_text(encoding="utf-8")
    for raw in ("010-2345-6789", "minjun@example.com", "4111-1111-1111-1111"):
        assert raw not in text


def test_streamed_replies_and_each_of_n_choices_are_rated_by_index(served):
    url, log, _ = served
    before = len(lines(log))
    chat = client(url).chat.completions
    stream = chat.create(model=None, messages=HELLO, stream=True)
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    rate(url, id=chunks[0].id, rating=1)
    two = chat.create(model=None, messages=HELLO, n=2, temperature=1.0, seed=3)
    rate(url, id=two.id, rating=1, index=1)
    rate(url, id=two.id, rating=-1, index=0)
    pieces: dict[int, str] = {0: "", 1: ""}
    for c in chat.create(model=None, messages=HELLO, n=2, stream=True):
        for choice in c.choices:
            pieces[choice.index] += choice.delta.content or ""
            stream_id = c.id
    rate(url, id=stream_id, rating=1, index=1)
    got = [(line["reply_id"], line["reply"], line["rating"]) for line in lines(log)[before:]]
    assert got == [(f"{chunks[0].id}:0", streamed, 1), (f"{two.id}:1", two.choices[1].message.content, 1),
                   (f"{two.id}:0", two.choices[0].message.content, -1), (f"{stream_id}:1", pieces[1], 1)]


@pytest.mark.parametrize(("body", "param", "message"), [
    ({"rating": 0}, "rating", "rating must be 1 (👍) or -1 (👎), got '0'"),
    ({"rating": 2}, "rating", "rating must be 1"),
    ({"rating": "1"}, "rating", "rating must be 1"),
    ({"rating": True}, "rating", "rating must be 1"),
    ({"rating": 1.0}, "rating", "rating must be 1"),
    ({}, "rating", "Missing field 'rating'"),
    ({"rating": 1, "index": 2}, "index", "index 2 is out of range: completion 'chatcmpl-"),
    ({"rating": 1, "index": -1}, "index", "index must be a choice index"),
    ({"rating": 1, "comment": "가" * 1001}, "comment", "comment is 1001 characters long; the limit is 1000"),
    ({"rating": 1, "stars": 5}, "stars", "Field 'stars': Extra inputs are not permitted"),
])
def test_a_bad_rating_is_a_400_naming_the_field_and_writes_nothing(served, done_id, body, param, message):
    url, log, _ = served
    before = len(lines(log))
    with pytest.raises(openai.BadRequestError) as caught:
        rate(url, id=done_id, **body)
    error = caught.value.body
    assert (caught.value.status_code, error["param"], error["type"]) == (400, param, "invalid_request_error")
    assert error["message"].startswith(message)
    assert len(lines(log)) == before


def test_an_unknown_id_is_a_404_and_a_server_without_a_log_says_how_to_keep_ratings(served):
    url, log, bare = served
    with pytest.raises(openai.NotFoundError) as caught:
        rate(url, id="chatcmpl-nope", rating=1)
    assert caught.value.body["param"] == "id" and "No chat completion 'chatcmpl-nope'" in caught.value.body["message"]
    done = client(bare).chat.completions.create(model=None, messages=HELLO)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        rate(bare, id=done.id, rating=1)
    assert caught.value.status_code == 403 and "--feedback_log PATH" in caught.value.body["message"]
    legacy = httpx.post(url + "/v1/completions", json={"prompt": "안녕", "max_tokens": 2}, timeout=60).json()
    with pytest.raises(openai.NotFoundError):  # only chat completions can be rated
        rate(url, id=legacy["id"], rating=1)


def test_an_expired_completion_is_a_404(engine, tmp_path):
    with serve_in_thread(create_app(engine=engine, feedback_log=tmp_path / "f.jsonl", session_ttl=0.3,
                                    **COMMON)) as url:
        done = client(url).chat.completions.create(model=None, messages=HELLO)
        time.sleep(0.6)
        with pytest.raises(openai.NotFoundError) as caught:
            rate(url, id=done.id, rating=1)
    assert "has expired (the server keeps the last 10000 for 0.3 s" in caught.value.body["message"]
    assert not (tmp_path / "f.jsonl").exists()


def test_the_completion_memory_is_bounded_by_count_and_characters():
    now = [0.0]
    memory = CompletionMemory(max_entries=2, max_chars=20, ttl=10, clock=lambda: now[0])
    chat = [{"role": "user", "content": "안녕"}]  # 2 characters
    for name in ("a", "b", "c"):
        memory.remember(name, "m", chat, ["좋아"])  # 4 characters each
    assert (memory.get("a"), memory.get("b").replies, len(memory)) == (None, ["좋아"], 2)
    memory.remember("d", "m", chat, ["가" * 15])  # 17 characters: with c's 4 over 20, c goes
    assert (memory.get("b"), memory.get("c"), len(memory)) == (None, None, 1)
    now[0] = 10.5
    assert memory.get("d") is None and len(memory) == 0
