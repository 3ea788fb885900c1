"""A client's mistake is a 4xx, never a 500: the real server (uvicorn on loopback, tiny model) probed over HTTP."""

from __future__ import annotations

import html
import http.client
import json
import re
import socket
import time
from urllib.parse import urlparse

import httpx
import pytest

from chathuman_hf.chat import ChatEngine
from chathuman_hf.core.window import ChatWindow
from chathuman_hf.serving import create_app
from chathuman_hf.serving.runner import serve_in_thread
from chathuman_hf.skills import SkillsConfig, build_router

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


def test_max_tokens_beyond_the_positions_is_a_400_naming_both_numbers(engine, client):
    """Issue 31: a large max_tokens silently cut the prompt (vLLM answers 400); the newest message is never cut."""
    ask = {"messages": [{"role": "user", "content": "안녕"}], "temperature": 0}
    prompt = len(engine.prompt_ids(ask["messages"], max_new_tokens=1))
    for streaming in (False, True):
        refused = client.post("/v1/chat/completions", json={**ask, "max_tokens": 1000, "stream": streaming})
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["param"] == "max_tokens" and error["message"] == (
            f"'max_tokens' or 'max_completion_tokens' is too large: 1000. This model's maximum context length is 24 "
            f"tokens and your request has {prompt} input tokens (1000 > 24 - {prompt}).")
    fits = client.post("/v1/chat/completions", json={**ask, "max_tokens": 24 - prompt}).json()
    assert fits["usage"]["prompt_tokens"] == prompt and fits["usage"]["completion_tokens"] <= 24 - prompt
    too_long = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "가나다라 " * 30}]})
    assert too_long.status_code == 400 and too_long.json()["error"]["param"] == "messages"
    assert "maximum context length is 24 tokens" in too_long.json()["error"]["message"]


def test_a_lone_surrogate_is_a_400(client):
    text = "안녕\ud800"  # httpx writes it as the JSON escape "\ud800", as a broken client would
    for path, body in [("/page/api/chat", {"session_id": "s", "message": text}),
                       ("/page/api/chat/stream", {"session_id": "s", "message": text}),
                       ("/v1/chat/completions", {"messages": [{"role": "user", "content": text}]})]:
        response = client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})
        assert response.status_code == 400, (path, response.text)
        assert "lone UTF-16 surrogate" in response.json()["error"]["message"]


def test_session_ids_reset_and_empty_bodies(client):
    assert client.post("/page/api/chat", json={"session_id": "abc\n", "message": "안녕"}).status_code == 400
    huge = "a" * 100_000 + "!"
    for sid in ("abc\n", huge[:90_000] + "!"):
        response = client.post("/page/api/reset", json={"session_id": sid})
        assert response.status_code == 400 and len(response.content) < 500
        assert response.json()["error"]["message"].startswith("session_id must be 1-64 characters")
    assert client.post("/page/api/reset", json={"session_id": "fresh"}).json() == {
        "ok": True, "session_id": "fresh", "existed": False}
    empty = client.post("/page/api/chat", content=b"", headers={"content-type": "application/json"})
    assert empty.status_code == 400
    assert empty.json()["error"]["message"] == "The request body is empty: send a JSON object."


def test_a_large_body_is_refused_from_its_content_length_before_it_is_read(url):
    address = urlparse(url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(b"POST /page/api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 67108864\r\n\r\n")  # promises 64 MB and sends none of it
        reply = b""
        while chunk := sock.recv(65536):  # the server answers and closes without waiting for the body
            reply += chunk
        reply = reply.decode()
    assert reply.startswith("HTTP/1.1 413")
    assert "the limit is 100000 bytes" in reply


def test_an_idle_connection_stays_open_longer_than_http_clients_keep_it(url):
    """uvicorn's default closes a connection idle for 5 s, the moment httpx's pool (5 s) may reuse it: the request
    then fails with "Server disconnected without sending a response" (seen under load in bench.feedback_loop)."""
    address = urlparse(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    connection.request("GET", "/healthz")
    assert connection.getresponse().read().startswith(b'{"status":"ok"')  # a whole response, however it arrives
    sock = connection.sock
    time.sleep(5.5)  # idle past httpx's keepalive_expiry (5 s) and uvicorn's default timeout_keep_alive (5 s)
    connection.request("GET", "/healthz")  # on the same socket: a closed one raises RemoteDisconnected here
    assert connection.getresponse().status == 200 and connection.sock is sock
    connection.close()


def test_serve_recipe_keeps_idle_connections_75_seconds(repo_root, tiny_model_dir, capsys, monkeypatch):
    from tests.test_cli_errors import run_entry_point

    uvicorn = pytest.importorskip("uvicorn")
    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.update(options))
    code, _ = run_entry_point(repo_root, "serve", ["--model", str(tiny_model_dir)], capsys)
    assert code == 0 and started["timeout_keep_alive"] == 75
    code, _ = run_entry_point(repo_root, "serve", ["--model", str(tiny_model_dir), "--keep_alive", "10"], capsys)
    assert code == 0 and started["timeout_keep_alive"] == 10
    code, err = run_entry_point(repo_root, "serve", ["--model", str(tiny_model_dir), "--keep_alive", "0"], capsys)
    assert code == 2 and err == ["error: --keep_alive must be at least 1 second, got 0"]


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


# The chat template google/gemma-2-2b-it ships (tokenizer_config.json): no system role, strict alternation.
GEMMA2_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)


@pytest.fixture(scope="module")
def strict_client(engine):
    import copy

    tokenizer = copy.deepcopy(engine.tokenizer)
    tokenizer.chat_template = GEMMA2_TEMPLATE
    strict = ChatEngine(engine.model, tokenizer, window=ChatWindow(max_turns=3, max_length=64), name="strict")
    app = create_app(engine=strict, preset="greedy", preset_overrides={"max_new_tokens": 3}, use_skills=False)
    with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=120) as client:
        yield client


USER, BOT = {"role": "user", "content": "안녕"}, {"role": "assistant", "content": "반가워"}


@pytest.mark.parametrize("messages, reason", [
    ([{"role": "system", "content": "친절하게"}, USER], "System role not supported"),
    ([{"role": "developer", "content": "친절하게"}, USER], "System role not supported"),
    ([USER, USER], "Conversation roles must alternate"),
    ([USER, BOT, USER, USER], "Conversation roles must alternate"),
    ([USER, BOT, BOT, USER], "Conversation roles must alternate"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_a_conversation_the_template_refuses_is_a_400_with_its_reason(strict_client, messages, reason, stream):
    """Before any generation, and before a stream starts (not 200 and then an error event)."""
    response = strict_client.post("/v1/chat/completions", json={"messages": messages, "stream": stream})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert reason in error["message"] and error["type"] == "invalid_request_error" and error["param"] == "messages"
    assert error["message"].startswith("The model's chat template refuses this conversation")


@pytest.mark.parametrize("stream", [False, True])
def test_a_conversation_the_template_accepts_is_answered(strict_client, stream):
    response = strict_client.post("/v1/chat/completions", json={"messages": [USER, BOT, USER], "stream": stream})
    assert response.status_code == 200, response.text
    if stream:
        assert events(response.text)[-1] == "[DONE]" and not any("error" in e for e in events(response.text)[:-1])


def _reply(client, **extra) -> tuple[str, str, dict]:
    body = client.post("/v1/chat/completions", json={"messages": [USER], "temperature": 0, **extra}).json()
    return body["choices"][0]["message"]["content"], body["choices"][0]["finish_reason"], body["usage"]


def _streamed(client, **extra) -> tuple[str, str]:
    request = {"messages": [USER], "temperature": 0, "stream": True, "stream_options": {"include_usage": True},
               **extra}
    chunks = events(client.post("/v1/chat/completions", json=request).text)
    assert chunks[-1] == "[DONE]" and not any("error" in c for c in chunks[:-1]), chunks
    usage = chunks[-2]["usage"]
    assert usage["prompt_tokens"] > 0 and usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1] if c["choices"])
    (finish,) = [c["choices"][0]["finish_reason"] for c in chunks[:-1] if c["choices"]
                 and c["choices"][0]["finish_reason"]]
    return text, finish


def test_stop_strings_end_the_reply_with_finish_reason_stop(client):
    """The reply ends before the first stop string (not included), finish_reason "stop", streaming or not."""
    whole, _, _ = _reply(client)
    k = next(i for i in range(1, len(whole)) if not whole[i].isspace())
    pair = whole[k:k + 2] if k + 2 <= len(whole) and not whole[k + 1].isspace() else whole[k]
    cases = [(whole[k], whole[k]), ([whole[k]], whole[k]), (["절대없는말", whole[k]], whole[k]), ([pair], pair),
             ([whole[-1], whole[k]], min(whole[-1], whole[k], key=whole.index))]
    for value, first in cases:
        cut = whole[: whole.index(first)].rstrip()
        content, finish, usage = _reply(client, stop=value)
        assert (content, finish) == (cut, "stop"), (whole, value)
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        text, finish = _streamed(client, stop=value)
        assert (text.replace(" ", ""), finish) == (cut.replace(" ", ""), "stop"), (whole, value, text)
    assert _reply(client, stop="절대없는말")[0] == whole  # a stop string that never comes changes nothing
    assert _streamed(client, stop=["절대없는말"])[0].replace(" ", "") == whole.replace(" ", "")


@pytest.mark.parametrize("stop, message", [
    (["a", "b", "c", "d", "e"], "stop: at most 4 sequences"),
    ("", "stop: an empty string"),
    (["안녕", ""], "stop: an empty string"),
    (7, "Field 'stop"),
])
def test_unusable_stop_values_are_a_400(client, stop, message):
    response = client.post("/v1/chat/completions", json={"messages": [USER], "stop": stop})
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]["message"]


@pytest.mark.parametrize("pieces, stops, shown, stopped", [
    (["안녕 반", "가워 친구"], ["반가워"], ["안녕", "", ""], True),  # the stop string split over two pieces
    (["a ", " b", "c"], ["x"], ["a", "  b", "c", ""], False),  # whitespace waits for text after it
    (["안녕 반", "찬 먹자"], ["반가워"], ["안녕", " 반찬 먹자", ""], False),  # a prefix that did not become one
    (["좋아.", " 끝", "!"], ["끝!", "\n"], ["좋아.", "", "", ""], True),
    (["하나 둘", " 셋"], ["넷"], ["하나 둘", " 셋", ""], False),
    (["STOP부터"], ["STOP"], ["", ""], True),
])
def test_stop_stream_holds_back_what_may_begin_a_stop_string(pieces, stops, shown, stopped):
    from chathuman_hf.serving.request_checks import StopStream, cut_at_stop

    cutter = StopStream(stops)
    out = [cutter.feed(p) for p in pieces] + [cutter.flush()]
    assert (out, cutter.stopped) == (shown, stopped)
    assert "".join(out) == cut_at_stop("".join(pieces), stops)[0]
