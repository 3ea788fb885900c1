"""Logits processors for OpenAI's sampling fields: additive presence/frequency penalties and ``logit_bias``.

Both run per reply on that reply's own tokens (``ReplyOptions.processors``), in batched decoding and in ``generate``.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor


class PresenceFrequencyPenalty(LogitsProcessor):
    """OpenAI's additive penalties: ``logit[j] -= frequency * count[j] + presence * (count[j] > 0)``, where
    ``count`` counts token ``j`` in the reply generated so far (the prompt is not counted, as in vLLM)."""

    def __init__(self, presence: float, frequency: float) -> None:
        self.presence, self.frequency = presence, frequency
        self.start: int | None = None  # the prompt's length, learnt at the first call (the reply is empty then)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.start is None:
            self.start = input_ids.shape[1]
        generated = input_ids[:, self.start:]
        if generated.shape[1] == 0:
            return scores
        counts = torch.zeros_like(scores).scatter_add_(1, generated, torch.ones_like(generated, dtype=scores.dtype))
        return scores - self.frequency * counts - self.presence * (counts > 0).to(scores.dtype)


class LogitBias(LogitsProcessor):
    """OpenAI's ``logit_bias``: a value from -100 to 100 added to the logit of each listed token id."""

    def __init__(self, bias: dict[int, float]) -> None:
        self.ids = torch.tensor(list(bias), dtype=torch.long)
        self.values = torch.tensor(list(bias.values()), dtype=torch.float32)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores.clone()
        scores[:, self.ids.to(scores.device)] += self.values.to(scores.device, scores.dtype)
        return scores
