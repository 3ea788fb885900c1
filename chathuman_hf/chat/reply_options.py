"""Per-reply settings beyond a ``GenerationConfig`` (``ReplyOptions``: seed, extra logits processors, log-probs) and
the log-probabilities of chosen tokens (``TokenLogprob``), the same in batched and one-at-a-time decoding."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList


@dataclass(frozen=True)
class ReplyOptions:
    """``seed``: sampling draws from a generator seeded with it (same seed, same reply); ``processors``: builds this
    reply's extra logits processors (a fresh list per reply: they may keep per-reply state), which run where
    ``generate(logits_processor=...)`` runs them (before temperature and top-k/p); ``logprobs``: record the chosen
    token's log-probability and ``logprobs`` alternatives (``None``: nothing recorded)."""

    seed: int | None = None
    processors: Callable[[], list[LogitsProcessor]] | None = None
    logprobs: int | None = None

    def logits_processors(self) -> LogitsProcessorList:
        return LogitsProcessorList(self.processors() if self.processors is not None else [])

    def generator(self, device: torch.device) -> torch.Generator | None:
        return None if self.seed is None else torch.Generator(device=device).manual_seed(self.seed)


@dataclass(frozen=True)
class TokenLogprob:
    """A generated token, its log-probability under the model (raw logits, as vLLM reports by default) and the
    ``top`` alternatives as (token id, log-probability), most likely first."""

    token: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


def token_logprob(logits: torch.Tensor, token: int, k: int) -> TokenLogprob:
    """The ``TokenLogprob`` of ``token`` from one row of raw logits ``[vocab]``."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    top = torch.topk(logp, k) if k > 0 else None
    pairs = tuple(zip(top.indices.tolist(), top.values.tolist(), strict=True)) if top is not None else ()
    return TokenLogprob(int(token), float(logp[token]), pairs)


@contextmanager
def seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Run ``generate`` with the global generator seeded by ``seed`` (restored afterwards); nothing when ``None``.
    Callers hold the model lock, so no other reply draws from the generator meanwhile."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def generate_kwargs(config: GenerationConfig, options: ReplyOptions | None,
                    constraints: list[LogitsProcessor] = ()) -> dict[str, Any]:
    """``generate``'s arguments for ``options``: ``config`` returning a dict (raw logits too when log-probs are
    wanted; a shallow copy, the cached config stays as it is) and the extra processors (``constraints`` first: a
    grammar mask, as the batched ``Job`` runs them)."""
    options = options or ReplyOptions()
    config = copy.copy(config)
    config.return_dict_in_generate, config.output_logits = True, options.logprobs is not None
    return {"generation_config": config,
            "logits_processor": LogitsProcessorList([*constraints, *options.logits_processors()])}


def scored_tokens(output: Any, new: list[int], options: ReplyOptions | None) -> list[TokenLogprob] | None:
    """The log-probs of ``new`` from ``generate``'s output (``generate_kwargs``), when ``options`` ask for them."""
    if options is None or options.logprobs is None or output.logits is None:
        return None
    return [token_logprob(output.logits[t][0], token, options.logprobs) for t, token in enumerate(new)]
