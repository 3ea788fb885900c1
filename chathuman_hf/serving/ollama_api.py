"""Ollama's API in Ollama's shapes: ``POST /api/chat`` and ``/api/generate`` (NDJSON streaming by default,
``options``, ``done``/``done_reason``, token counts and durations in nanoseconds), ``GET /api/tags``,
``POST /api/show``, ``GET /api/version``; the ``ollama`` client and front ends such as Open WebUI connect.

Requests go through the same preparation as ``/v1`` (``serving/chat_request.py``): ``options`` map onto the OpenAI
fields; options that change sampling in ways this server cannot are refused, runtime ones (``num_ctx``, ``num_gpu``…)
have no effect. Errors are ``{"error": "..."}`` with the HTTP status, as Ollama answers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from chathuman_hf.chat import ChatEngine, EngineBusy
from chathuman_hf.serving.chat_request import PreparedChat
from chathuman_hf.serving.errors import ApiError, busy_error
from chathuman_hf.serving.models import ServedModel, ServedModels
from chathuman_hf.serving.openai_api import to_messages
from chathuman_hf.serving.request_checks import cut_at_stop
from chathuman_hf.serving.schemas import ChatCompletionRequest
from chathuman_hf.serving.streaming import EventStreamResponse

OPTIONS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "min_p": "min_p", "seed": "seed",
           "num_predict": "max_tokens", "stop": "stop", "repeat_penalty": "repetition_penalty",
           "presence_penalty": "presence_penalty", "frequency_penalty": "frequency_penalty"}
NO_EFFECT = {"num_ctx", "num_batch", "num_gpu", "main_gpu", "low_vram", "f16_kv", "logits_all", "vocab_only",
             "use_mmap", "use_mlock", "embedding_only", "num_thread", "numa", "num_keep"}
DTYPES = {"torch.float32": "F32", "torch.float16": "F16", "torch.bfloat16": "BF16"}  # as Ollama names them
NEUTRAL = {"mirostat": 0, "tfs_z": 1.0, "typical_p": 1.0, "penalize_newline": None, "repeat_last_n": None}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def openai_request(body: dict, messages: list[dict]) -> ChatCompletionRequest:
    """The OpenAI request an Ollama body stands for (``options`` mapped; unavailable ones a 400)."""
    for name in ("format", "tools", "images", "suffix", "template", "context"):
        if body.get(name):
            raise ApiError(400, f"{name} is not supported by this server.", param=name)
    if body.get("raw"):
        raise ApiError(400, "raw prompts are not supported: the model's chat template always applies.", param="raw")
    if body.get("think") not in (None, False):
        raise ApiError(400, "think is not supported: this model has no separate thinking.", param="think")
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise ApiError(400, "options must be an object.", param="options")
    fields: dict[str, Any] = {"messages": messages, "stream": False, "logprobs": bool(body.get("logprobs")),
                              "top_logprobs": body.get("top_logprobs")}
    for name, value in options.items():
        if name in OPTIONS:
            if name == "num_predict" and isinstance(value, int) and value < 0:  # -1: until the end, -2: fill
                continue
            fields[OPTIONS[name]] = value
        elif name not in NO_EFFECT and not (name in NEUTRAL and value in (NEUTRAL[name], None)):
            raise ApiError(400, f"options.{name} is not supported by this server.", param=f"options.{name}")
    try:
        return ChatCompletionRequest.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ApiError(400, f"{where}: {first['msg']}.", param=where) from None


def stats(chat: PreparedChat, start: float, completion_tokens: int) -> dict:
    elapsed = int((time.monotonic() - start) * 1e9)
    return {"total_duration": elapsed, "load_duration": 0, "prompt_eval_count": chat.prompt_tokens,
            "prompt_eval_duration": 0, "eval_count": completion_tokens, "eval_duration": elapsed}


def ollama_logprobs(tokenizer: Any, scored: list | None) -> list | None:
    if scored is None:
        return None
    return [{"token": tokenizer.decode([s.token]), "logprob": s.logprob,
             "top_logprobs": [{"token": tokenizer.decode([t]), "logprob": lp} for t, lp in s.top]} for s in scored]


class NdjsonResponse(EventStreamResponse):
    """Newline-delimited JSON over the same closing, 503-before-headers machinery as the event streams."""

    def __init__(self, source: Iterator[str]) -> None:
        self.source = source
        StreamingResponse.__init__(self, source, media_type="application/x-ndjson")


def make_ollama_router(models: ServedModels) -> APIRouter:
    """``models``: what the ``model`` field picks from (``name`` or ``name:latest``; absent: the first)."""
    api = APIRouter()
    modified = now_iso()

    def details(engine: ChatEngine) -> dict:
        params = sum(p.numel() for p in engine.model.parameters())
        return {"parent_model": "", "format": "safetensors", "family": engine.model.config.model_type,
                "families": [engine.model.config.model_type], "parameter_size": f"{params / 1e6:.1f}M",
                "quantization_level": DTYPES.get(str(engine.model.dtype), str(engine.model.dtype))}

    def check_model(body: dict) -> ServedModel:
        served = models.get(body.get("model"))
        if served is None:
            raise ApiError(404, f"model '{str(body.get('model'))[:100]}' not found; this server serves "
                           f"{models.listed()} (GET /api/tags).", param="model")
        return served

    async def read(request: Request) -> dict:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            raise ApiError(400, f"Malformed JSON body: {exc}.") from None
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        return body

    def answer(body: dict, messages: list[dict], shape: Callable[[str], dict]):
        """The reply to ``messages`` as one JSON object or NDJSON lines; ``shape``: where the text goes."""
        served = check_model(body)
        engine, chat_api = served.engine, served.chat_api
        request = openai_request(body, messages)
        chat = chat_api.prepare(request, to_messages(request, chat_api.max_chars))
        start = time.monotonic()
        base = {"model": engine.name}
        if not body.get("stream", True):
            result = chat.replies(1)[0]
            text, stopped = cut_at_stop(result.text, chat.stops)
            used = chat.count(text) if stopped else result.completion_tokens
            scored = result.logprobs[:used] if result.logprobs is not None else None
            return {**base, "created_at": now_iso(), **shape(text), "done": True,
                    "done_reason": "stop" if stopped else result.finish_reason, **stats(chat, start, used),
                    **({"logprobs": ollama_logprobs(engine.tokenizer, scored)} if scored is not None else {})}

        def lines() -> Iterator[str]:
            pieces = chat.shown()
            try:
                while True:
                    try:
                        piece, scored = next(pieces)
                    except StopIteration as end:
                        finish, used, scored = end.value
                        break
                    extra = {"logprobs": ollama_logprobs(engine.tokenizer, scored)} if scored is not None else {}
                    yield json.dumps({**base, "created_at": now_iso(), **shape(piece), "done": False, **extra},
                                     ensure_ascii=False) + "\n"
            except EngineBusy:
                raise  # before the first line: answered 503
            except Exception as exc:  # the status is sent: Ollama reports the error in-band
                yield json.dumps({"error": f"Generation failed: {exc}"}) + "\n"
                return
            finally:
                pieces.close()
            extra = {"logprobs": ollama_logprobs(engine.tokenizer, scored)} if scored else {}
            yield json.dumps({**base, "created_at": now_iso(), **shape(""), "done": True, "done_reason": finish,
                              **stats(chat, start, used), **extra}, ensure_ascii=False) + "\n"

        return NdjsonResponse(lines())

    def ollama_errors(handler: Callable) -> Callable:
        async def wrapped(request: Request):
            try:
                return await handler(request)
            except ApiError as exc:
                return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)
            except EngineBusy as exc:
                error = busy_error(exc)
                return JSONResponse({"error": error.message}, status_code=503, headers=error.headers)
        wrapped.__name__ = handler.__name__
        return wrapped

    @api.post("/api/chat")
    @ollama_errors
    async def chat(request: Request):
        body = await read(request)
        messages = body.get("messages") or []
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise ApiError(400, "messages must be a list of {role, content} objects.", param="messages")
        for i, message in enumerate(messages):
            if message.get("images"):
                raise ApiError(400, f"messages[{i}]: images cannot be read by this text-only model.",
                               param=f"messages[{i}].images")

        def message(text: str) -> dict:
            return {"message": {"role": "assistant", "content": text}}
        return await run(answer, body, [{"role": m.get("role"), "content": m.get("content")} for m in messages],
                         message)

    @api.post("/api/generate")
    @ollama_errors
    async def generate(request: Request):
        body = await read(request)
        prompt = body.get("prompt") or ""
        if not prompt:  # Ollama's way to load a model: nothing to generate
            return {"model": check_model(body).name, "created_at": now_iso(), "response": "", "done": True,
                    "done_reason": "load"}
        system = [{"role": "system", "content": body["system"]}] if body.get("system") else []

        def response(text: str) -> dict:
            return {"response": text}
        return await run(answer, body, [*system, {"role": "user", "content": prompt}], response)

    @api.get("/api/tags")
    def tags() -> dict:
        return {"models": [{"name": f"{m.name}:latest", "model": f"{m.name}:latest", "modified_at": modified,
                            "size": sum(p.numel() * p.element_size() for p in m.engine.model.parameters()),
                            "digest": "", "details": details(m.engine)} for m in models]}

    @api.post("/api/show")
    @ollama_errors
    async def show(request: Request):
        body = await read(request)
        engine = check_model(body).engine
        config = engine.model.config
        arch = config.model_type
        return {"modelfile": "", "parameters": "", "template": engine.tokenizer.chat_template or "",
                "details": details(engine), "modified_at": modified, "capabilities": ["completion"],
                "model_info": {"general.architecture": arch,
                               "general.parameter_count": sum(p.numel() for p in engine.model.parameters()),
                               f"{arch}.context_length": engine.context_limit()}}

    @api.get("/api/version")
    def version() -> dict:
        from chathuman_hf import __version__

        return {"version": __version__}

    return api


async def run(answer: Callable, *args: Any) -> Any:
    """``answer`` (which blocks on the model when not streaming) in a worker thread."""
    return await run_in_threadpool(answer, *args)
