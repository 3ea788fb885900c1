"""OpenAI's legacy ``POST /v1/completions``: raw prompts (a string, strings, token ids or lists of them) continued
without the chat template, ``max_tokens``, ``n``, ``echo`` and ``logprobs`` (the prompt's own log-probs too), so
``lm-eval --model local-completions`` scores log-likelihood tasks against the server; ``stream: true`` sends OpenAI's
completion chunks (``serving/completions_stream.py``). Sampling fields are those of the chat endpoint
(``serving/sampling_params.py``)."""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter
from pydantic import ConfigDict, Field

from chathuman_hf.chat import ChatEngine, EngineBusy
from chathuman_hf.chat.prompt_scoring import score_prompt
from chathuman_hf.core.window import ContextOverflow
from chathuman_hf.serving.completions_stream import completion_events
from chathuman_hf.serving.errors import ApiError, check_unicode
from chathuman_hf.serving.logprobs import completion_logprobs
from chathuman_hf.serving.models import ServedModels
from chathuman_hf.serving.openai_api import usage
from chathuman_hf.serving.request_checks import cut_at_stop, stop_strings
from chathuman_hf.serving.sampling_params import check_fields, reply_options, request_preset
from chathuman_hf.serving.schemas import ChatCompletionRequest
from chathuman_hf.serving.streaming import EventStreamResponse

MAX_PROMPTS = 64


class CompletionRequest(ChatCompletionRequest):
    """The completions body: ``prompt`` instead of ``messages``; ``logprobs`` is a count (0-5) here."""

    model_config = ConfigDict(extra="allow")
    messages: list = Field(default_factory=list)
    prompt: str | list[int] | list[str | list[int]]
    logprobs: int | None = Field(default=None, ge=0, le=5)  # type: ignore[assignment]
    echo: bool = False
    max_tokens: int | None = Field(default=16, ge=0)
    suffix: str | None = None
    best_of: int | None = None


def prompt_ids(engine: ChatEngine, prompt: str | list) -> list[list[int]]:
    """Token ids of each prompt (no chat template, no special tokens added)."""
    if isinstance(prompt, str):
        prompt = [prompt]
    if not prompt:
        raise ApiError(400, "prompt is empty.", param="prompt")
    if all(isinstance(p, int) for p in prompt):
        prompt = [prompt]
    if len(prompt) > MAX_PROMPTS:
        raise ApiError(400, f"prompt: at most {MAX_PROMPTS} prompts per request (got {len(prompt)}).", param="prompt")
    vocab = engine.model.config.get_text_config().vocab_size
    out = []
    for i, p in enumerate(prompt):
        ids = engine.tokenizer.encode(check_unicode(p, f"prompt[{i}]"), add_special_tokens=False) \
            if isinstance(p, str) else list(p)
        if not ids:
            raise ApiError(400, f"prompt[{i}] is empty.", param="prompt")
        if any(not 0 <= t < vocab for t in ids):
            raise ApiError(400, f"prompt[{i}] has a token id outside 0-{vocab - 1}.", param="prompt")
        out.append(ids)
    return out


def make_completions_router(models: ServedModels) -> APIRouter:
    api = APIRouter()

    @api.post("/v1/completions")
    def completions(request: CompletionRequest):
        served = models.pick(request.model)
        engine, preset = served.engine, served.chat_api.preset
        for name, given in (("suffix", request.suffix), ("speech_level", request.speech_level),
                            ("messages", request.messages or None),
                            ("logprobs", request.logprobs if request.stream else None),
                            ("best_of", request.best_of if request.best_of not in (None, 1) else None)):
            if given is not None:
                how = " with stream" if name == "logprobs" else ""
                raise ApiError(400, f"{name} is not supported{how} on /v1/completions.", param=name)
        k = request.logprobs
        chat_like = request.model_copy(update={"logprobs": k is not None, "top_logprobs": k})
        check_fields(chat_like, engine.model.config.get_text_config().vocab_size)
        stops = stop_strings(request.stop)
        limit = engine.context_limit()
        max_new = request.max_completion_tokens or request.max_tokens or 0
        if max_new == 0 and not request.echo:
            raise ApiError(400, "max_tokens 0 only makes sense with echo: true.", param="max_tokens")
        prompts = prompt_ids(engine, request.prompt)
        for ids in prompts:
            if limit and len(ids) + max_new > limit:
                raise ApiError(400, str(ContextOverflow(len(ids), max_new or None, limit)),
                               param="max_tokens" if len(ids) < limit else "prompt")
        chosen = request_preset(preset, chat_like, max_new or None)
        if request.stream:
            if not max_new:
                raise ApiError(400, "max_tokens 0 cannot stream: nothing would be generated.", param="max_tokens")
            include_usage = bool((request.stream_options or {}).get("include_usage"))
            return EventStreamResponse(completion_events(
                engine, prompts, request.n, chosen, lambda c: reply_options(chat_like, c), stops, echo=request.echo,
                include_usage=include_usage))
        choices, prompt_tokens, completion_tokens = [], 0, 0
        for p, ids in enumerate(prompts):
            echoed = score_prompt(engine, ids, k) if request.echo and k is not None else None
            prompt_tokens += len(ids)
            for c in range(request.n):
                text, scored, finish, used = "", [], "length", 0
                if max_new:
                    try:
                        result = engine.complete(ids, chosen, options=reply_options(chat_like, c))
                    except EngineBusy:
                        raise
                    except Exception as exc:
                        raise ApiError(500, f"Generation failed: {exc}", type="server_error") from exc
                    text, stopped = cut_at_stop(result.text, stops)
                    used = len(engine.tokenizer.encode(text, add_special_tokens=False)) if stopped else \
                        result.completion_tokens
                    finish = "stop" if stopped else result.finish_reason
                    scored = (result.logprobs or [])[:used]
                prefix = engine.tokenizer.decode(ids) if request.echo else ""
                logprobs = None
                if k is not None:
                    shown = [*(ids if echoed is not None else []), *(s.token for s in scored)]
                    logprobs = completion_logprobs(engine.tokenizer, shown, (echoed or []) + scored)
                choices.append({"text": prefix + text, "index": p * request.n + c, "logprobs": logprobs,
                                "finish_reason": finish})
                completion_tokens += used
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                "model": engine.name, "choices": choices,
                "usage": usage(prompt_tokens, completion_tokens)}

    return api
