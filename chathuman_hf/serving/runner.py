"""Run an app with uvicorn in a background thread on 127.0.0.1 (tests, notebooks, screenshots)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

# Seconds an idle connection stays open. uvicorn's default (5 s) equals httpx's pool expiry, so a client could send on
# a connection the server was closing ("Server disconnected without sending a response": 2 of 13 bench.feedback_loop
# runs side by side, bench/RESULTS.md § 18d). Longer than the pools of httpx (5 s) and aiohttp (15 s) and the idle
# timeout of proxies in front (nginx upstream keep-alive, AWS ALB: 60 s).
KEEP_ALIVE_SECONDS = 75


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int | None = None, *, timeout: float = 30.0,
                    log_level: str = "warning", **config: object) -> Iterator[str]:
    """Start uvicorn serving ``app`` in a daemon thread; yields the base URL and stops the server on exit."""
    port = port or free_port(host)
    config.setdefault("timeout_keep_alive", KEEP_ALIVE_SECONDS)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="off",
                                           **config))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
