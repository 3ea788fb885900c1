"""Refuse request bodies that are too large from their ``Content-Length``, before a byte of them is read."""

from __future__ import annotations

import json
from typing import Any

import anyio

from chathuman_hf.serving.errors import error_body


class BodySizeLimit:
    """Pure ASGI middleware (streaming responses pass through untouched): 413 over ``max_bytes``, 400 for a
    ``Content-Length`` that is not a number."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            length = dict(scope.get("headers") or []).get(b"content-length")
            problem = None
            if length is not None and not length.isdigit():
                problem = 400, "Content-Length is not a number."
            elif length is not None and int(length) > self.max_bytes:
                problem = 413, f"The request body is {int(length)} bytes; the limit is {self.max_bytes} bytes."
            if problem is not None:
                body = json.dumps(error_body(problem[1])).encode()
                await send({"type": "http.response.start", "status": problem[0], "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class WorkerThreads:
    """Pure ASGI middleware raising anyio's worker-thread limit (40 by default) to ``threads`` in the serving loop:
    a blocking request and each streaming reply hold a worker thread while they wait for the model, so with 40 the
    41st waiter would queue unseen, before the engine's own bounded queue and its 503."""

    def __init__(self, app: Any, threads: int) -> None:
        self.app = app
        self.threads = threads

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        limiter = anyio.to_thread.current_default_thread_limiter()
        if limiter.total_tokens < self.threads:
            limiter.total_tokens = self.threads
        await self.app(scope, receive, send)
