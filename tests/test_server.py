"""The web server started for real (uvicorn on a free 127.0.0.1 port, tiny model) and exercised over HTTP."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from chathuman_hf.chat import ChatEngine
from chathuman_hf.serving import SessionStore, create_app
from chathuman_hf.serving.runner import serve_in_thread
from chathuman_hf.skills import SkillsConfig

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return ChatEngine.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def app(engine):
    return create_app(engine=engine, preset="greedy", preset_overrides={"max_new_tokens": 5},
                      skills=SkillsConfig(disabled=["weather", "stock"]), max_message_chars=1000)


@pytest.fixture(scope="module")
def client(app):
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def history(app, session_id):
    return app.state.store.get(session_id).session.history


def sse(text: str) -> list:
    events = []
    for block in text.split("\n\n"):
        if block.startswith("data: "):
            payload = block[len("data: "):]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def test_page_health_and_static(engine, client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for part in (
        'lang="ko"', "새 대화", "로또 번호 추천", "지금 몇 시야?", 'src="/static/chat.js"', 'maxlength="1000"'
    ):
        assert part in page.text
    script = client.get("/static/chat.js")
    assert script.status_code == 200 and "textContent" in script.text and "innerHTML" not in script.text
    assert "/page/api/chat/stream" in script.text and "\"/api/" not in script.text  # /api/* is Ollama's
    assert client.get("/static/chat.css").status_code == 200
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["model"] == engine.name
    missing = client.get("/nope")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"


def test_chat_skills_and_reset(app, client):
    first = client.post("/page/api/chat", json={"session_id": "s1", "message": "안녕"})
    assert first.status_code == 200
    body = first.json()
    assert body["skill"] is None and body["reply"] and body["session_id"] == "s1"
    assert client.post("/page/api/chat", json={"session_id": "s1", "message": "몇시야?"}).json()["skill"] == "time"
    assert history(app, "s1") == [{"role": "user", "content": "안녕"}, {"role": "assistant", "content": body["reply"]}]
    assert client.post("/page/api/reset", json={"session_id": "s1"}).json()["existed"] is True
    assert history(app, "s1") == []
    fresh = client.post("/page/api/chat", json={"message": "로또 번호 뽑아줘"}).json()
    assert fresh["skill"] == "lotto" and len(fresh["session_id"]) == 32
    said = client.post("/page/api/chat", json={"session_id": "s1", "message": "초기화"}).json()
    assert said["skill"] == "reset"


def test_sessions_are_isolated_over_http(app, client):
    for a, b in [("사과 좋아해", "바나나 좋아해"), ("내일 시험이야", "내일 여행 가")]:
        assert client.post("/page/api/chat", json={"session_id": "alice", "message": a}).status_code == 200
        assert client.post("/page/api/chat", json={"session_id": "bob", "message": b}).status_code == 200
    assert [m["content"] for m in history(app, "alice") if m["role"] == "user"] == ["사과 좋아해", "내일 시험이야"]
    assert [m["content"] for m in history(app, "bob") if m["role"] == "user"] == ["바나나 좋아해", "내일 여행 가"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, "Malformed JSON body"),
    ({"json": [1, 2]}, "must be a JSON object"),
    ({"json": {"session_id": "x"}}, "Missing field 'message'"),
    ({"json": {"session_id": "x", "message": 5}}, "Field 'message'"),
    ({"json": {"session_id": "x", "message": "   "}}, "message is empty"),
    ({"json": {"session_id": "x", "message": "가" * 1001}}, "1001 characters long; the limit is 1000"),
    ({"json": {"session_id": "../etc", "message": "안녕"}}, "session_id must be"),
])
def test_chat_validation(client, kwargs, message):
    response = client.post("/page/api/chat", **kwargs)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


@pytest.mark.filterwarnings("ignore:The last message alone")
def test_exactly_1000_characters_is_accepted(client):
    assert client.post("/page/api/chat", json={"session_id": "long", "message": "가" * 1000}).status_code == 200


def test_generation_error_is_a_500_and_the_server_keeps_serving(engine, client):
    def boom(*_args):
        raise RuntimeError("simulated GPU failure")

    handle = engine.model.lm_head.register_forward_hook(boom)
    try:
        failed = client.post("/page/api/chat", json={"session_id": "err", "message": "안녕"})
        streamed = client.post("/page/api/chat/stream", json={"session_id": "err", "message": "안녕"})
        openai = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "안녕"}]})
    finally:
        handle.remove()
    assert failed.status_code == 500
    assert failed.json()["error"] == {"message": "Generation failed: simulated GPU failure", "type": "server_error",
                                      "param": None, "code": None}
    assert sse(streamed.text)[-1] == {
        "type": "error", "message": "Generation failed: generation failed: simulated GPU failure"
    }
    assert openai.status_code == 500 and "simulated GPU failure" in openai.json()["error"]["message"]
    assert not engine.lock.locked()
    assert client.post("/page/api/chat", json={"session_id": "err", "message": "안녕"}).status_code == 200


def test_client_leaving_mid_stream_stops_generation_and_frees_the_model(engine, client):
    tok = engine.tokenizer
    stops = [tok.eos_token_id, tok.convert_tokens_to_ids("<usr>")]
    steps = []

    def slow_and_endless(_module, _inputs, output):  # never stop on its own, one token every 50 ms
        steps.append(1)
        time.sleep(0.05)
        output[..., stops] -= 1.0e4
        return output

    handle = engine.model.lm_head.register_forward_hook(slow_and_endless)
    try:
        request = {"messages": [{"role": "user", "content": "안녕"}], "stream": True,
                   "max_tokens": 200, "temperature": 0}
        with client.stream("POST", "/v1/chat/completions", json=request) as response:
            lines = response.iter_lines()
            assert next(lines).startswith("data: ")
            assert next(lines) == ""
        # leaving the block closes the connection while the server is still generating
        reply = client.post("/page/api/chat", json={"session_id": "after-leave", "message": "안녕"})
    finally:
        handle.remove()
    assert reply.status_code == 200
    assert len(steps) < 150  # the abandoned generation was stopped, not run to its 200 tokens


def test_page_stream_endpoint(client):
    response = client.post("/page/api/chat/stream", json={"session_id": "stream", "message": "안녕"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse(response.text)
    deltas = [e["text"] for e in events if e["type"] == "delta"]
    done = events[-1]
    assert done["type"] == "done" and done["skill"] is None and done["session_id"] == "stream"
    assert "".join(deltas).replace(" ", "") == done["reply"].replace(" ", "")
    skill = sse(client.post("/page/api/chat/stream", json={"session_id": "stream", "message": "dkssud"}).text)
    assert skill[-1]["skill"] == "keyboard" and "안녕" in skill[-1]["reply"]


OPENAI_REQUEST = {"messages": [
    {"role": "system", "content": "너는 친절한 친구야."},
    {"role": "user", "content": "안녕"},
    {"role": "assistant", "content": "안녕! 반가워"},
    {"role": "user", "content": [{"type": "text", "text": "점심 뭐 먹을까"}]},
], "temperature": 0, "max_tokens": 5, "user": "u-1"}


def test_openai_chat_completion(engine, client):
    response = client.post("/v1/chat/completions", json={"model": engine.name, **OPENAI_REQUEST})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-") and body["model"] == engine.name
    assert isinstance(body["created"], int)
    (choice,) = body["choices"]
    assert choice["index"] == 0 and choice["message"]["role"] == "assistant" and choice["message"]["content"]
    assert choice["finish_reason"] in {"stop", "length"}
    usage = body["usage"]
    assert (
        usage["completion_tokens"] <= 5
        and usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    )
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == engine.name


def test_openai_streaming_matches_the_non_streaming_answer(client):
    whole = client.post("/v1/chat/completions", json=OPENAI_REQUEST).json()["choices"][0]["message"]["content"]
    request = {**OPENAI_REQUEST, "stream": True, "stream_options": {"include_usage": True}}
    with client.stream("POST", "/v1/chat/completions", json=request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse(response.read().decode("utf-8"))
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text.replace(" ", "") == whole.replace(" ", "")
    finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finals) == 1 and finals[0]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] <= 5


def test_skills_answer_on_the_page_but_not_on_v1_by_default(client):
    typed = "dk rkqwkrl gksrmfdl dkscuwu"  # the keyboard skill's message (issue 31: skills answered on /v1)
    assert "아 갑자기 한글이 안쳐져" in client.post("/page/api/chat", json={"message": typed}).json()["reply"]
    body = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": typed}]}).json()
    assert "아 갑자기 한글이 안쳐져" not in body["choices"][0]["message"]["content"]
    assert body["usage"]["completion_tokens"] <= 5  # the model's reply (max_new_tokens 5), not the skill's


@pytest.mark.parametrize(("request_body", "message"), [
    ({"user": "u"}, "Missing field 'messages'"),
    ({"messages": []}, "messages is empty"),
    ({"messages": [{"role": "assistant", "content": "안녕"}]}, "last message must come from the user"),
    ({"messages": [{"role": "user", "content": "안녕"}], "n": 17}, "Field 'n'"),
    ({"messages": [{"role": "tool", "content": "x"}, {"role": "user", "content": "hi"}]}, "not supported"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"},
                                 {"role": "user", "content": "c"}]}, "system message is only allowed first"),
    ({"messages": [{"role": "user", "content": "가" * 1001}]}, "the limit is 1000"),
    ({"messages": [{"role": "user", "content": "안녕"}], "temperature": 5}, "Field 'temperature'"),
])
def test_openai_validation(client, request_body, message):
    response = client.post("/v1/chat/completions", json=request_body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error["message"] and error["type"] == "invalid_request_error"


def test_32_concurrent_sessions(app, client):
    def talk(i: int) -> tuple[int, int, str]:
        sid = f"c{i}"
        first = client.post("/page/api/chat", json={"session_id": sid, "message": f"안녕 {i}"})
        second = client.post("/page/api/chat", json={"session_id": sid, "message": "지금 몇 시야"})
        return first.status_code, second.status_code, second.json().get("skill")

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(talk, range(32), timeout=240))
    assert results == [(200, 200, "time")] * 32
    for i in range(32):
        assert [m["content"] for m in history(app, f"c{i}") if m["role"] == "user"] == [f"안녕 {i}"]


def test_session_store_ttl_and_cap():
    now = [0.0]
    made = []

    def factory():
        made.append(object())
        return type("FakeSession", (), {"history": [], "reset": lambda self: None})()

    store = SessionStore(factory, ttl=10, max_sessions=2, clock=lambda: now[0])
    a = store.get("a").session
    store.get("b")
    assert store.get("a").session is a and len(store) == 2
    store.get("c")  # over the cap: the least recently used ("b") goes
    assert len(store) == 2 and store.evicted == {"expired": 0, "capacity": 1}
    assert store.get("a").session is a
    now[0] = 11.0
    assert len(store) == 0 and store.evicted["expired"] == 2
    assert store.get("a").session is not a and len(made) == 4
    assert store.reset("nobody") is False
    with pytest.raises(ValueError, match="session_id must be"):
        store.get("")


def test_requests_are_logged_without_their_bodies(app, capfd, caplog):
    """In-process server at uvicorn's info level, every logger captured: the typed text never shows up."""
    import logging

    secret = "초록색기린비밀"
    caplog.set_level(logging.DEBUG)
    with serve_in_thread(app, log_level="info") as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.post("/page/api/chat", json={"session_id": "logs", "message": secret}).status_code == 200
        assert client.post("/page/api/chat", json={"session_id": "logs", "message": secret * 200}).status_code == 400
        body = {"messages": [{"role": "user", "content": secret}], "stream": True}
        assert client.post("/v1/chat/completions", json=body).status_code == 200
    out, err = capfd.readouterr()
    logged = out + err + caplog.text
    assert "POST /page/api/chat" in logged and secret not in logged


@pytest.mark.slow
def test_serve_recipe_logs_no_message_bodies(tiny_model_dir, repo_root, tmp_path):
    """The real recipes/serve.py at its default log level: requests are logged, what users typed is not."""
    import os
    import subprocess
    import sys

    from chathuman_hf.serving.runner import free_port

    port = free_port()
    secret = "보라색코끼리비밀"
    log = (tmp_path / "serve.log").open("w+", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(repo_root / "recipes/serve.py"), "--model", str(tiny_model_dir),
                             "--host", "127.0.0.1", "--port", str(port), "--preset", "greedy",
                             "--max-new-tokens", "3"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=repo_root,
                            env=dict(os.environ, HF_HUB_OFFLINE="1"))  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    assert proc.poll() is None and time.monotonic() < deadline, log.seek(0) or log.read()[-2000:]
                    time.sleep(0.3)
            said = client.post("/page/api/chat", json={"session_id": "s", "message": f"{secret} 안녕"})
            assert said.status_code == 200
            assert client.post("/page/api/chat/stream", json={"session_id": "s", "message": secret}).status_code == 200
            body = {"messages": [{"role": "user", "content": secret}]}
            assert client.post("/v1/chat/completions", json=body).status_code == 200
            assert client.post("/page/api/chat", json={"session_id": "s", "message": secret * 200}).status_code == 400
            assert client.post("/page/api/chat", content=f'{{"message": "{secret}"'.encode()).status_code == 400
    finally:
        proc.terminate()
        proc.wait(30)
    log.seek(0)
    text = log.read()
    assert "POST /page/api/chat" in text and "POST /v1/chat/completions" in text  # requests are logged ...
    assert secret not in text  # ... their bodies are not
