"""The log-probability of each prompt token given the ones before it (``echo`` with ``logprobs`` on the completions
API: what lm-eval's log-likelihood tasks read), from one forward pass under the model lock."""

from __future__ import annotations

import torch

from chathuman_hf.chat.engine import ChatEngine
from chathuman_hf.chat.reply_options import TokenLogprob, token_logprob


def score_prompt(engine: ChatEngine, ids: list[int], k: int) -> list[TokenLogprob | None]:
    """One entry per token of ``ids``: ``None`` for the first (nothing precedes it), then its ``TokenLogprob`` with
    ``k`` alternatives."""
    with engine.lock, torch.inference_mode():
        logits = engine.model(input_ids=torch.tensor([ids], device=engine.model.device)).logits[0]
    return [None] + [token_logprob(logits[i - 1], token, k) for i, token in enumerate(ids) if i > 0]
