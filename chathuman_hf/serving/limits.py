"""Refuse request bodies that are too large: from their ``Content-Length`` before a byte of them is read, and by
counting the bytes as they arrive when there is none (``Transfer-Encoding: chunked``)."""

from __future__ import annotations

import json
from typing import Any

import anyio
from starlette.exceptions import HTTPException

from chathuman_hf.serving.errors import error_body


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body without ``Content-Length`` passed the limit: the app stops reading it."""


class BodySizeLimit:
    """Pure ASGI middleware (streaming responses pass through untouched): 413 over ``max_bytes``, 400 for a
    ``Content-Length`` that is not a number. A body without ``Content-Length`` is counted as it arrives and refused
    (413, connection closed) at the first chunk over the limit, whatever the app made of it."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and not length.isdigit():
            return await refuse(send, 400, "Content-Length is not a number.")
        if length is not None and int(length) > self.max_bytes:
            return await refuse(send, 413, f"The request body is {int(length)} bytes; the limit is {self.max_bytes} "
                                           "bytes.")
        over = f"The request body is over the limit of {self.max_bytes} bytes (sent without Content-Length)."
        seen, started, replaced = 0, False, False

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(413, over)
            return message

        async def checked(message: dict) -> None:
            nonlocal started, replaced
            if replaced or (seen > self.max_bytes and not started):  # the app's answer to a cut body is replaced
                if not replaced and message["type"] == "http.response.start":
                    started = replaced = True
                    await refuse(send, 413, over)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, checked)
        except BodyTooLarge:
            if replaced:
                return
            if started:
                raise
            await refuse(send, 413, over)


async def refuse(send: Any, status: int, message: str) -> None:
    """Answer ``status`` with the JSON error body and close the connection (the rest of the body is not read)."""
    body = json.dumps(error_body(message)).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


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
