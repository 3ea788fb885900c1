"""Server limits that a hostile client probes: bodies without Content-Length, one session asked many times at once
(issue 34). The real server (uvicorn on loopback, tiny model) driven over HTTP and raw sockets."""

from __future__ import annotations

import json
import select
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from urllib.parse import urlparse

import httpx
import pytest

from chathuman_hf.chat import ChatEngine
from chathuman_hf.serving import create_app
from chathuman_hf.serving.runner import serve_in_thread

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
LIMIT = 100_000


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return ChatEngine.from_pretrained(tiny_model_dir, max_batch_size=1, max_queue=3, request_timeout=2.0)


@pytest.fixture(scope="module")
def app(engine):
    return create_app(engine=engine, preset="greedy", preset_overrides={"max_new_tokens": 3}, use_skills=False,
                      max_body_bytes=LIMIT)


@pytest.fixture(scope="module")
def url(app):
    with serve_in_thread(app) as base:
        yield base


def send_chunked(url: str, path: str, chunks, *, stop_at: int = 50_000_000) -> tuple[str, int]:
    """POST ``chunks`` as ``Transfer-Encoding: chunked`` (no Content-Length) until the server answers or ``stop_at``
    bytes went out; the server's reply and the number of body bytes sent."""
    address = urlparse(url)
    sent = 0
    with socket.create_connection((address.hostname, address.port), timeout=20) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n".encode())
        try:
            for chunk in chunks:
                if select.select([sock], [], [], 0)[0] or sent >= stop_at:
                    break  # the server answered (or closed): stop sending
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed by the server while we sent
        reply = b""
        try:
            while piece := sock.recv(65536):
                reply += piece
                if b"\r\n\r\n" in reply and reply.endswith(b"}"):
                    break
        except (ConnectionResetError, TimeoutError):
            pass
    return reply.decode(errors="replace"), sent


def huge_json(chunk_size: int):
    """A JSON chat body that never ends: ``{"message": "aaaa…`` in ``chunk_size`` pieces."""
    yield b'{"session_id": "s", "message": "'
    while True:
        yield b"a" * chunk_size


@pytest.mark.parametrize("path", ["/page/api/chat", "/page/api/chat/stream", "/v1/chat/completions",
                                  "/page/api/reset"])
@pytest.mark.parametrize("chunk_size", [65_536, 1_000, 1_000_000], ids=["64KiB", "1KB", "1MB"])
def test_a_chunked_body_over_the_limit_is_refused_as_it_arrives(url, path, chunk_size):
    reply, sent = send_chunked(url, path, huge_json(chunk_size), stop_at=20_000_000)
    assert reply.startswith("HTTP/1.1 413"), reply[:300]
    body = json.loads(reply.split("\r\n\r\n", 1)[1])
    assert body["error"]["message"] == (
        f"The request body is over the limit of {LIMIT} bytes (sent without Content-Length).")
    assert "connection: close" in reply.lower()
    assert sent < 20_000_000  # answered while the body still arrived (it never ends)


def test_a_chunked_body_within_the_limit_is_answered(url):
    body = json.dumps({"session_id": "ok", "message": "안녕"}).encode()
    reply, _ = send_chunked(url, "/page/api/chat", [body[:7], body[7:20], body[20:]])
    assert reply.startswith("HTTP/1.1 200"), reply[:300]
    assert json.loads(reply.split("\r\n\r\n", 1)[1])["session_id"] == "ok"
    at_limit = json.dumps({"session_id": "ok", "message": "안녕" + " " * (LIMIT - 100)}).encode()
    at_limit = at_limit[:-2] + b" " * (LIMIT - len(at_limit)) + at_limit[-2:]
    assert len(at_limit) == LIMIT
    reply, _ = send_chunked(url, "/page/api/chat", [at_limit[i:i + 4096] for i in range(0, LIMIT, 4096)])
    assert not reply.startswith("HTTP/1.1 413"), reply[:300]  # at the limit: read (then judged on its content)
    with httpx.Client(base_url=url, timeout=30) as client:  # a streamed upload from the client people use
        answer = client.post("/page/api/chat", content=iter([b'{"message": "', b"a" * (LIMIT + 1), b'"}']),
                             headers={"content-type": "application/json"})
        assert answer.status_code == 413 and "over the limit of 100000 bytes" in answer.json()["error"]["message"]
        assert client.get("/healthz").status_code == 200


def _post(url: str, path: str, body: dict) -> tuple[int, dict, float, str]:
    start = time.monotonic()
    with httpx.Client(base_url=url, timeout=30) as client:
        response = client.post(path, json=body)
    return response.status_code, dict(response.headers), time.monotonic() - start, response.text


@contextmanager
def session_busy(app, session_id: str):
    """The session answers a long message meanwhile: its lock is held (as by a reply still generating)."""
    entry = app.state.store.get(session_id)
    entry.lock.acquire()
    try:
        yield
    finally:
        entry.lock.release()


def test_requests_waiting_for_their_session_count_in_the_queue_and_time_out(app, url):
    """max_batch_size 1 + max_queue 3: four may wait; the rest, and other visitors, get 503 + Retry-After at once."""
    asks = [("/page/api/chat", {"session_id": "busy", "message": "안녕"}),
            ("/page/api/chat/stream", {"session_id": "busy", "message": "안녕"}),
            ("/page/api/reset", {"session_id": "busy"})] * 2
    with httpx.Client(base_url=url, timeout=30) as client, ThreadPoolExecutor(8) as pool:
        refused_before = client.get("/healthz").json()["refused"]
        with session_busy(app, "busy"):
            waiting = [pool.submit(_post, url, path, body) for path, body in asks]
            deadline = time.monotonic() + 5
            while (health := client.get("/healthz").json())["waiting_for_session"] < 4:
                assert time.monotonic() < deadline, health
                time.sleep(0.05)
            assert health["queue_depth"] == 4 and health["batch_occupancy"] == 0
            other = client.post("/page/api/chat", json={"session_id": "other", "message": "안녕"})
            assert other.status_code == 503 and int(other.headers["retry-after"]) >= 1  # seen at once, not queued
            results = [f.result(timeout=20) for f in waiting]
        at_once = [r for r in results if r[2] < 1.5]
        timed_out = [r for r in results if r[2] >= 1.5]
        assert len(at_once) == 2 and len(timed_out) == 4, [(r[0], round(r[2], 2)) for r in results]
        for status, headers, _seconds, text in results:
            assert status == 503 and int(headers["retry-after"]) >= 1, text
            assert json.loads(text)["error"]["type"] == "server_busy"
        assert all(r[2] < 4 for r in timed_out)  # the request timeout (2 s) is honoured while waiting
        assert all("waited 2 s behind this session's earlier message" in r[3] for r in timed_out)
        assert all("limit 4" in r[3] for r in at_once)
        health = client.get("/healthz").json()
        assert health["queue_depth"] == 0 and health["waiting_for_session"] == 0
        assert health["refused"] == refused_before + 7


def test_waiting_requests_of_a_session_are_answered_in_turn_while_others_are_served(app, url):
    with ThreadPoolExecutor(4) as pool:
        with session_busy(app, "turns"):
            waiting = [pool.submit(_post, url, "/page/api/chat", {"session_id": "turns", "message": m})
                       for m in ("안녕", "뭐해")]
            status, _, seconds, _ = _post(url, "/page/api/chat", {"session_id": "visitor", "message": "안녕"})
            assert status == 200 and seconds < 1.5  # another visitor is served while they wait
            time.sleep(0.5)
            stream = pool.submit(_post, url, "/page/api/chat/stream", {"session_id": "turns", "message": "응"})
            time.sleep(0.3)
        results = [f.result(timeout=20) for f in [*waiting, stream]]
    assert [r[0] for r in results] == [200, 200, 200], results
    session = app.state.store.get("turns").session
    kept = [m["content"] for m in session.history if m["role"] == "user"]
    assert len(kept) == min(3, session.max_turns - 1) and set(kept) <= {"안녕", "뭐해", "응"}  # one at a time
