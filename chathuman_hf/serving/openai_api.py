"""OpenAI-compatible ``POST /v1/chat/completions`` (JSON or server-sent events) and ``GET /v1/models``.

Every request field is honoured or refused (``serving/sampling_params.py``); skills answer here only when the server
was started with them (``--skills_on_api``), and then within ``max_tokens``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Generator, Iterator

from fastapi import APIRouter

from chathuman_hf.chat import EngineBusy
from chathuman_hf.serving.errors import ApiError, check_unicode, error_body
from chathuman_hf.serving.logprobs import chat_logprobs
from chathuman_hf.serving.models import ServedModels
from chathuman_hf.serving.request_checks import cut_at_stop
from chathuman_hf.serving.schemas import ChatCompletionRequest
from chathuman_hf.serving.stream_choices import merge_streams
from chathuman_hf.serving.streaming import EventStreamResponse
from chathuman_hf.serving.structured import ToolStream, history_fields


def to_messages(request: ChatCompletionRequest, max_chars: int) -> list[dict[str, str]]:
    """Validate and convert OpenAI messages to the chat template's roles (``developer`` counts as ``system``)."""
    if not request.messages:
        raise ApiError(400, "messages is empty: send at least one user message.", param="messages")
    out: list[dict[str, str]] = []
    for i, message in enumerate(request.messages):
        role = "system" if message.role == "developer" else message.role
        if role not in {"system", "user", "assistant", "tool"}:
            raise ApiError(400, f"messages[{i}]: role '{message.role}' is not supported.",
                           param=f"messages[{i}].role")
        if role == "system" and i != 0:
            raise ApiError(400, f"messages[{i}]: a system message is only allowed first.", param=f"messages[{i}]")
        try:
            text = message.text()
        except ValueError as exc:
            raise ApiError(400, f"messages[{i}]: {exc}.", param=f"messages[{i}].content") from None
        text = check_unicode(text, f"messages[{i}].content").strip()
        if not text and role not in ("assistant", "tool"):
            raise ApiError(400, f"messages[{i}]: content is empty.", param=f"messages[{i}].content")
        if len(text) > max_chars:
            raise ApiError(400, f"messages[{i}]: content is {len(text)} characters long; the limit is {max_chars}.",
                           param=f"messages[{i}].content")
        out.append({"role": role, "content": text, **history_fields(message, i)})
    if out[-1]["role"] not in ("user", "tool"):
        raise ApiError(400, "The last message must come from the user (or be a tool result).", param="messages")
    return out


def in_band_error(message: str, kind: str) -> Iterator[str]:
    """An error once a stream has started (the status is sent): an error event, then the end of the stream."""
    yield f"data: {json.dumps(error_body(message, kind))}\n\n"
    yield "data: [DONE]\n\n"


def late_errors(events: Generator[str, None, None]) -> Iterator[str]:
    """``events`` under OpenAI's rule for a stream's errors: a full engine before the first event propagates
    (``EventStreamResponse`` answers 503); once events flow (the status is sent), a refusal or a failure ends the
    stream with an in-band error event. Closing the stream closes ``events``."""
    started = False
    try:
        for event in events:
            started = True
            yield event
    except EngineBusy:
        if not started:
            raise
        yield from in_band_error("The server is busy: a reply was refused.", "server_busy")
    except Exception as exc:  # headers are sent: report in-band, as OpenAI does
        yield from in_band_error(f"Generation failed: {exc}", "server_error")
    finally:
        events.close()


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def make_openai_router(models: ServedModels, *, max_chars: int,
                       remember: Callable[[str, str, list, list[str]], None] | None = None) -> APIRouter:
    """``models``: what the ``model`` field picks from (each with its skills, preset, window and speech level);
    ``remember(id, model, messages, texts)``: called with each finished completion (for ``POST /v1/feedback``)."""
    api = APIRouter()
    created = int(time.time())

    @api.get("/v1/models")
    def list_models() -> dict:
        return {"object": "list", "data": [{"id": m.name, "object": "model", "created": created,
                                            "owned_by": "chathuman_hf"} for m in models]}

    @api.post("/v1/chat/completions")
    def chat_completions(request: ChatCompletionRequest):
        messages = to_messages(request, max_chars)
        served = models.pick(request.model)
        engine = served.engine
        chat = served.chat_api.prepare(request, messages)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        model = engine.name
        now = int(time.time())

        def keep(texts: list[str]) -> None:
            if remember is not None:
                remember(completion_id, model, messages, texts)

        if not request.stream:
            choices, texts = [], []
            for i, result in enumerate(chat.replies(request.n)):
                content, finish, scored = result.text, result.finish_reason, result.logprobs
                content, stopped = cut_at_stop(content, chat.stops)
                completion_tokens = result.completion_tokens
                if stopped:
                    finish, completion_tokens = "stop", chat.count(content)
                    scored = scored[:completion_tokens] if scored is not None else None
                texts.append(content)
                message, finish = chat.structured.reply(content, finish)
                choices.append(({"index": i, "message": message,
                                 "logprobs": chat_logprobs(engine.tokenizer, scored), "finish_reason": finish},
                                completion_tokens))
            keep(texts)
            return {
                "id": completion_id, "object": "chat.completion", "created": now, "model": model,
                "choices": [c for c, _ in choices],
                "usage": usage(chat.prompt_tokens, sum(n for _, n in choices)),
            }

        include_usage = bool((request.stream_options or {}).get("include_usage"))

        def chunk(delta: dict, finish: str | None = None, scored: list | None = None, index: int = 0) -> str:
            body = {"id": completion_id, "object": "chat.completion.chunk", "created": now, "model": model,
                    "choices": [{"index": index, "delta": delta, "logprobs": chat_logprobs(engine.tokenizer, scored),
                                 "finish_reason": finish}]}
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        def events() -> Iterator[str]:
            pieces = chat.shown()
            calls = ToolStream(chat.structured)  # content is held back where a tool call may begin
            started = False  # the role chunk goes with the first piece: a full engine is a 503 before it
            held: list = []  # log-probs of text held back
            text: list[str] = []  # the reply as generated, for POST /v1/feedback
            try:
                while True:
                    try:
                        piece, scored = next(pieces)
                    except StopIteration as end:
                        finish, completion_tokens, scored = end.value
                        break
                    text.append(piece)
                    if not started:
                        started = True
                        yield chunk({"role": "assistant", "content": ""})
                    piece = calls.feed(piece)
                    if not piece:
                        held.extend(scored or [])
                        continue
                    yield chunk({"content": piece}, scored=held + scored if scored is not None else None)
                    held = []
            finally:
                pieces.close()
            if not started:
                yield chunk({"role": "assistant", "content": ""})
            scored = held + scored if scored is not None else None
            if chat.structured.style is not None:
                delta, finish = calls.finish(finish)
                if delta:
                    yield chunk(delta, scored=scored)
                    scored = [] if scored is not None else None
            yield chunk({}, finish, scored=scored)
            if include_usage:
                body = {"id": completion_id, "object": "chat.completion.chunk", "created": now, "model": model,
                        "choices": [], "usage": usage(chat.prompt_tokens, completion_tokens)}
                yield f"data: {json.dumps(body, ensure_ascii=False)}\n\n"
            keep(["".join(text)])
            yield "data: [DONE]\n\n"

        def choice_events() -> Iterator[str]:  # n > 1: the replies decode together, chunks tagged by index
            merged = merge_streams([chat.shown(i) for i in range(request.n)])
            started: set[int] = set()
            texts: list[list[str]] = [[] for _ in range(request.n)]
            try:
                while True:
                    try:
                        i, (piece, scored) = next(merged)
                    except StopIteration as end:
                        finals = end.value
                        break
                    texts[i].append(piece)
                    if i not in started:
                        started.add(i)
                        yield chunk({"role": "assistant", "content": ""}, index=i)
                    yield chunk({"content": piece}, scored=scored, index=i)
            finally:
                merged.close()
            for i, (finish, _, scored) in enumerate(finals):
                if i not in started:
                    yield chunk({"role": "assistant", "content": ""}, index=i)
                yield chunk({}, finish, scored=scored, index=i)
            if include_usage:
                body = {"id": completion_id, "object": "chat.completion.chunk", "created": now, "model": model,
                        "choices": [], "usage": usage(chat.prompt_tokens, sum(f[1] for f in finals))}
                yield f"data: {json.dumps(body, ensure_ascii=False)}\n\n"
            keep(["".join(t) for t in texts])
            yield "data: [DONE]\n\n"

        return EventStreamResponse(late_errors(events() if request.n == 1 else choice_events()))

    return api
