"""A client's mistake is a 4xx, never a 500: the real server (uvicorn on loopback, tiny model) probed over HTTP."""

from __future__ import annotations

import html
import json
import re
import socket
from urllib.parse import urlparse

import httpx
import pytest

from chathuman_hf.chat import ChatEngine
from chathuman_hf.serving import create_app
from chathuman_hf.serving.runner import serve_in_thread
from chathuman_hf.skills import SkillsConfig, build_router
from chathuman_hf.window import ChatWindow

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SKILLS = SkillsConfig(disabled=["weather", "stock"])


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    loaded = ChatEngine.from_pretrained(tiny_model_dir)  # a 24-token window: "too many tokens" is cheap to reach
    return ChatEngine(loaded.model, loaded.tokenizer, window=ChatWindow(max_turns=1, max_length=24), name=loaded.name)


@pytest.fixture(scope="module")
def url(engine):
    app = create_app(engine=engine, preset="greedy", preset_overrides={"max_new_tokens": 5}, skills=SKILLS,
                     max_body_bytes=100_000)
    with serve_in_thread(app) as base:
        yield base


@pytest.fixture(scope="module")
def client(url):
    with httpx.Client(base_url=url, timeout=120) as client:
        yield client


def events(text: str) -> list:
    return [json.loads(b[6:]) if b[6:] != "[DONE]" else "[DONE]" for b in text.split("\n\n") if b.startswith("data: ")]


def test_max_tokens_beyond_the_positions_is_clamped_not_a_500(engine, client):
    room = engine.max_new_tokens_limit()
    assert room == 24 - 8
    ask = {"messages": [{"role": "user", "content": "안녕"}], "max_tokens": 1000, "temperature": 0}
    response = client.post("/v1/chat/completions", json=ask)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["usage"]["completion_tokens"] <= room
    assert body["choices"][0]["finish_reason"] == (
        "length" if body["usage"]["completion_tokens"] == room else "stop")
    streamed = events(client.post("/v1/chat/completions", json={**ask, "stream": True}).text)
    assert streamed[-1] == "[DONE]" and not any("error" in e for e in streamed[:-1])
    assert streamed[-2]["choices"][0]["finish_reason"] in {"stop", "length"}


def test_a_lone_surrogate_is_a_400(client):
    text = "안녕\ud800"  # httpx writes it as the JSON escape "\ud800", as a broken client would
    for path, body in [("/api/chat", {"session_id": "s", "message": text}),
                       ("/api/chat/stream", {"session_id": "s", "message": text}),
                       ("/v1/chat/completions", {"messages": [{"role": "user", "content": text}]})]:
        response = client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})
        assert response.status_code == 400, (path, response.text)
        assert "lone UTF-16 surrogate" in response.json()["error"]["message"]


def test_session_ids_reset_and_empty_bodies(client):
    assert client.post("/api/chat", json={"session_id": "abc\n", "message": "안녕"}).status_code == 400
    huge = "a" * 100_000 + "!"
    for sid in ("abc\n", huge[:90_000] + "!"):
        response = client.post("/api/reset", json={"session_id": sid})
        assert response.status_code == 400 and len(response.content) < 500
        assert response.json()["error"]["message"].startswith("session_id must be 1-64 characters")
    assert client.post("/api/reset", json={"session_id": "fresh"}).json() == {
        "ok": True, "session_id": "fresh", "existed": False}
    empty = client.post("/api/chat", content=b"", headers={"content-type": "application/json"})
    assert empty.status_code == 400
    assert empty.json()["error"]["message"] == "The request body is empty: send a JSON object."


def test_a_large_body_is_refused_from_its_content_length_before_it_is_read(url):
    address = urlparse(url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 67108864\r\n\r\n")  # promises 64 MB and sends none of it
        reply = b""
        while chunk := sock.recv(65536):  # the server answers and closes without waiting for the body
            reply += chunk
        reply = reply.decode()
    assert reply.startswith("HTTP/1.1 413")
    assert "the limit is 100000 bytes" in reply


def test_openai_answers_as_the_served_model_or_404(engine, client):
    ask = {"messages": [{"role": "user", "content": "안녕"}], "max_tokens": 3}
    assert client.post("/v1/chat/completions", json=ask).json()["model"] == engine.name
    assert client.post("/v1/chat/completions", json={**ask, "model": engine.name}).json()["model"] == engine.name
    unknown = client.post("/v1/chat/completions", json={**ask, "model": "gpt-4"})
    assert unknown.status_code == 404 and "'gpt-4' does not exist" in unknown.json()["error"]["message"]


def test_page_chips_are_messages_that_reach_their_skill_and_the_favicon_exists(client):
    page = client.get("/").text
    chips = [html.unescape(c) for c in re.findall(r'<button type="button" class="example">(.*?)</button>', page)]
    router = build_router(SKILLS)
    expected = {s["name"]: s["example"] for s in router.catalog() if s["example"] and s["name"] != "help"}
    assert sorted(chips) == sorted(expected.values())
    for name, chip in expected.items():
        assert router.route(chip).skill == name, chip  # a chip sends what triggers its skill, not a description
    assert "나쁜 말은 정중히 거절해요" in page and ">나쁜 말은 정중히 거절해요</button>" not in page
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert 'timeZone: "Asia/Seoul"' in client.get("/static/chat.js").text  # bubble times in KST, like the skill
