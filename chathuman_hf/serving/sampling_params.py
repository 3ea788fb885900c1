"""An OpenAI request's sampling fields, honoured or refused: checks (a 400 in OpenAI's shape naming ``param``), the
generation preset they make, the per-reply options (seed, penalties, ``logit_bias``, log-probs) and the reply length
that fits the model's positions (vLLM's rule: prompt + ``max_tokens`` over the context is a 400 naming both)."""

from __future__ import annotations

from typing import Any

from chathuman_hf.chat import ChatEngine, GenerationPreset
from chathuman_hf.chat.penalties import LogitBias, PresenceFrequencyPenalty
from chathuman_hf.chat.reply_options import ReplyOptions
from chathuman_hf.core.window import ContextOverflow
from chathuman_hf.serving.errors import ApiError

# OpenAI fields this server cannot honour: refused when set (rather than ignored)
UNSUPPORTED = {
    "audio": "audio output is not available", "prediction": "predicted outputs are not available",
    "web_search_options": "web search is not available", "functions": "send tools instead (functions is deprecated)",
    "function_call": "send tool_choice instead (function_call is deprecated)",
    "prompt_logprobs": "prompt log-probs are available on /v1/completions with echo",
}


def refuse(param: str, message: str) -> ApiError:
    return ApiError(400, message, param=param)


def check_fields(request: Any, vocab_size: int) -> None:
    """400 for a field set that this server would otherwise ignore, or a combination OpenAI and vLLM refuse."""
    extra = request.model_extra or {}
    for name, why in UNSUPPORTED.items():
        if extra.get(name) is not None:
            raise refuse(name, f"{name} is not supported here: {why}.")
    modalities = extra.get("modalities")
    if modalities is not None and list(modalities) != ["text"]:
        raise refuse("modalities", "modalities other than text are not available here (send [\"text\"] or leave "
                     "it out).")
    if request.stream_options is not None and not request.stream:
        raise refuse("stream_options", "stream_options is only allowed when stream is true.")
    if request.top_logprobs is not None and not request.logprobs:
        raise refuse("top_logprobs", "top_logprobs needs logprobs: true.")
    tool_choice = getattr(request, "tool_choice", None) or extra.get("tool_choice")
    if tool_choice not in (None, "none") and not (getattr(request, "tools", None) or extra.get("tools")):
        raise refuse("tool_choice", "tool_choice is only allowed when tools are given.")
    for key in request.logit_bias or {}:
        if not key.lstrip("-").isdigit() or not 0 <= int(key) < vocab_size:
            raise refuse("logit_bias", f"logit_bias: '{key[:20]}' is not a token id of this model (0 to "
                         f"{vocab_size - 1}).")


def request_preset(base: GenerationPreset, request: Any, max_new_tokens: int | None = None) -> GenerationPreset:
    """``base`` with the request's sampling fields (vLLM's ``top_k``, ``min_p``, ``min_tokens``,
    ``repetition_penalty`` included); ``temperature`` 0 decodes greedily; one beam where tokens must be followed."""
    overrides: dict[str, Any] = {}
    if max_new_tokens is not None:
        overrides["max_new_tokens"] = max_new_tokens
    if request.temperature is not None:
        if request.temperature == 0:
            overrides.update(do_sample=False, temperature=None, top_p=None, num_beams=1)
        else:
            overrides.update(temperature=request.temperature, do_sample=True)
    sampling = overrides.get("do_sample", base.do_sample)
    if request.top_p is not None and sampling:
        overrides["top_p"] = request.top_p
    if request.top_k is not None:
        overrides["top_k"] = max(request.top_k, 0)  # vLLM: -1 (or 0) switches top-k off
    if request.min_p is not None:
        overrides["min_p"] = request.min_p
    if request.min_tokens:
        overrides["min_new_tokens"] = request.min_tokens
    if request.repetition_penalty is not None:
        overrides["repetition_penalty"] = request.repetition_penalty
    if request.stream or request.logprobs or request.n > 1 or request.seed is not None:
        overrides["num_beams"] = 1
    return base.replace(**overrides) if overrides else base


def reply_options(request: Any, choice: int = 0) -> ReplyOptions | None:
    """Seed (``seed + choice`` for the ``choice``-th of ``n``), penalties and ``logit_bias``, log-probs."""
    presence, frequency = request.presence_penalty or 0.0, request.frequency_penalty or 0.0
    bias = {int(k): float(v) for k, v in (request.logit_bias or {}).items()}

    def processors() -> list:
        made: list = []
        if presence or frequency:
            made.append(PresenceFrequencyPenalty(presence, frequency))
        if bias:
            made.append(LogitBias(bias))
        return made

    logprobs = (request.top_logprobs or 0) if request.logprobs else None
    seed = None if request.seed is None else request.seed + choice
    if seed is None and logprobs is None and not (presence or frequency or bias):
        return None
    return ReplyOptions(seed=seed, processors=processors, logprobs=logprobs)


def fit_reply(engine: ChatEngine, messages: list[dict], requested: int | None, default: int,
              max_turns: int | None, tools: list[dict] | None = None) -> tuple[int, int]:
    """(``max_new_tokens``, prompt tokens) for a request: older exchanges are dropped whole to make room; the newest
    is never cut. ``requested`` (``max_tokens``) that cannot fit beside it is a 400 naming both numbers; without
    it the reply gets ``default`` tokens or what the positions leave (as vLLM)."""
    limit = engine.context_limit()
    want = requested if requested is not None else default
    try:
        ids = engine.prompt_ids(messages, max_new_tokens=want, max_turns=max_turns, cut_newest=False, tools=tools)
        return want, len(ids)
    except ContextOverflow as exc:
        if requested is not None or exc.prompt_tokens >= limit:
            raise ApiError(400, str(exc), param="max_tokens" if requested is not None else "messages") from None
        room = limit - exc.prompt_tokens
        ids = engine.prompt_ids(messages, max_new_tokens=room, max_turns=max_turns, cut_newest=False, tools=tools)
        return room, len(ids)
