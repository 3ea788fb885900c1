"""Log-probabilities in OpenAI's shapes: chat's ``logprobs.content`` and the completions API's legacy lists."""

from __future__ import annotations

from typing import Any

from chathuman_hf.chat.reply_options import TokenLogprob


def token_text(tokenizer: Any, token: int) -> str:
    """A token as text (as vLLM shows it): decoded alone; a byte of a longer character shows as U+FFFD."""
    return tokenizer.decode([token])


def _entry(tokenizer: Any, token: int, logprob: float) -> dict:
    text = token_text(tokenizer, token)
    return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}


def chat_logprobs(tokenizer: Any, scored: list[TokenLogprob] | None) -> dict | None:
    """``{"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}, ...]}`` or ``None``."""
    if scored is None:
        return None
    return {"content": [{**_entry(tokenizer, s.token, s.logprob),
                         "top_logprobs": [_entry(tokenizer, t, lp) for t, lp in s.top]} for s in scored],
            "refusal": None}


def completion_logprobs(tokenizer: Any, tokens: list[int], scored: list[TokenLogprob | None]) -> dict:
    """The completions API's ``{"tokens", "token_logprobs", "top_logprobs", "text_offset"}`` for ``tokens`` (a
    ``None`` in ``scored``: the first prompt token, which has no log-probability)."""
    texts = [token_text(tokenizer, t) for t in tokens]
    offsets = [sum(len(t) for t in texts[:i]) for i in range(len(texts))]
    return {"tokens": texts, "token_logprobs": [s.logprob if s is not None else None for s in scored],
            "top_logprobs": [{token_text(tokenizer, t): lp for t, lp in s.top} if s is not None else None
                             for s in scored],
            "text_offset": offsets}
