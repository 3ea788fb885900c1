"""Exact, cheaper stand-ins for two of ``generate``'s logits processors, for the batch's step loop.

Measured on the 125M KoGPT2 shape (vocabulary 51,200), 16 rows, one thread (bench/batch_step.py): transformers'
``SuppressTokensLogitsProcessor`` rebuilds its vocabulary mask with ``isin`` on every call (~4 ms a step when most ids
are suppressed), and ``TopPLogitsWarper`` sorts all 51,200 scores of every row although the ``TopKLogitsWarper``
before it left ``top_k`` finite ones (~4 ms a row). The stand-ins keep the library's semantics: the mask is built
once; top-p runs the library's own code on the top-k candidates (the other scores are already ``filter_value``, so
their probability is 0) and falls back to the full sort when more than k candidates are left or two candidates tie
(the order of tied scores is the library sort's own). ``sample_top_k`` draws an unseeded row's token from the top-k
candidates directly (same distribution, another random stream), with the same fallback on ties.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessorList
from transformers.generation import logits_process as lp

MAX_CANDIDATES = 1024  # the most candidates a draw among candidates takes (more: the draw is over the whole row)


class MaskedSuppressTokens(lp.SuppressTokensLogitsProcessor):
    """``SuppressTokensLogitsProcessor`` with its vocabulary mask built once per vocabulary size and device."""

    def __init__(self, base: lp.SuppressTokensLogitsProcessor) -> None:
        self.suppress_tokens = base.suppress_tokens
        self._mask: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        if self._mask is None or self._mask.shape[0] != scores.shape[-1] or self._mask.device != scores.device:
            vocab = torch.arange(scores.shape[-1], device=scores.device)
            self._mask = torch.isin(vocab, self.suppress_tokens.to(scores.device))
        return scores.masked_fill(self._mask, -float("inf"))


class CandidateTopP(lp.TopPLogitsWarper):
    """``TopPLogitsWarper`` run on the ``top_k`` candidates a preceding ``TopKLogitsWarper`` left."""

    def __init__(self, base: lp.TopPLogitsWarper, top_k: int) -> None:
        super().__init__(base.top_p, filter_value=base.filter_value, min_tokens_to_keep=base.min_tokens_to_keep)
        self.top_k = top_k

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        k = min(self.top_k, scores.shape[-1] - 1)
        values, indices = torch.topk(scores, k + 1, dim=-1)
        tied = (values[..., 1:] == values[..., :-1]) & (values[..., 1:] != self.filter_value)
        if bool((values[..., -1] != self.filter_value).any() or tied.any()):
            return super().__call__(input_ids, scores)  # more than k left, or ties the library's sort orders
        kept = super().__call__(input_ids, values[..., :k])
        return torch.full_like(scores, self.filter_value).scatter_(-1, indices[..., :k], kept)


def top_k_tail(processors: LogitsProcessorList) -> int:
    """Where ``processors`` end with top-k (then top-p on its candidates), filtering with -inf: the index of the
    top-k warper, or ``len(processors)`` when they do not."""
    n = len(processors)
    start = n - 2 if n >= 2 and type(processors[-1]) is CandidateTopP else n - 1
    if (start < 0 or type(processors[start]) is not lp.TopKLogitsWarper
            or any(q.filter_value != -float("inf") for q in processors[start:])):
        return n
    return start


def sample_top_k(scores: torch.Tensor, tail: LogitsProcessorList) -> torch.Tensor | None:
    """One token per row drawn (global generator) from ``softmax`` of ``scores`` after ``tail`` (top-k, then top-p
    on the candidates: ``top_k_tail``), from one ``topk`` of the scores instead of top-k's full-vocabulary mask,
    top-p's scatter back and a draw that finds the candidates again (8 of 18 ms of a 32-row step, 125M shape, one
    thread). ``None`` where two of the k+1 best scores tie (top-k would keep both; the caller runs ``tail`` itself)."""
    top_k = tail[0].top_k
    if top_k >= scores.shape[-1] or top_k > MAX_CANDIDATES:
        return None
    values, ids = torch.topk(scores, top_k + 1, dim=-1)
    if bool(((values[..., 1:] == values[..., :-1]) & (values[..., 1:] != -float("inf"))).any()):
        return None
    values, ids = values[..., :top_k], ids[..., :top_k]
    if len(tail) > 1:
        values = lp.TopPLogitsWarper.__call__(tail[1], None, values)  # the library's own top-p on the candidates
    return ids.gather(-1, torch.multinomial(torch.softmax(values, dim=-1), num_samples=1))[:, 0]


def faster_processors(processors: LogitsProcessorList) -> LogitsProcessorList:
    """``processors`` with the stand-ins above where they apply (same order, same results)."""
    out = LogitsProcessorList()
    for processor in processors:
        if type(processor) is lp.SuppressTokensLogitsProcessor:
            processor = MaskedSuppressTokens(processor)
        elif (type(processor) is lp.TopPLogitsWarper and out and type(out[-1]) is lp.TopKLogitsWarper
              and out[-1].filter_value == processor.filter_value):
            processor = CandidateTopP(processor, out[-1].top_k)
        out.append(processor)
    return out
