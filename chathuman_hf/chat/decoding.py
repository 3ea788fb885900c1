"""One reply of a batch (``Job``) and how its next token is chosen: its own logits processors and stop ids, built from
its ``GenerationConfig`` as ``generate`` builds them, run on its own token history."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessorList, PreTrainedModel
from transformers.generation import logits_process as lp

from chathuman_hf.chat.fast_processors import MAX_CANDIDATES, faster_processors, sample_top_k, top_k_tail
from chathuman_hf.chat.reply_options import ReplyOptions, TokenLogprob, token_logprob

# Processors that ignore the token history and treat each row alone: run once on all rows that share a config
# (measured on the 125M shape, 16 replies: SuppressTokens' isin over 51,200 ids took 12 ms per call, per-row
# multinomial 4 ms; once per group instead of once per row). Every other processor runs on each row's own history.
ROW_WISE = tuple(getattr(lp, name) for name in (
    "TemperatureLogitsWarper", "TopKLogitsWarper", "TopPLogitsWarper", "MinPLogitsWarper", "TypicalLogitsWarper",
    "EpsilonLogitsWarper", "EtaLogitsWarper", "SuppressTokensLogitsProcessor", "InfNanRemoveLogitsProcessor",
) if hasattr(lp, name))

# Processors that read the history but work on a left-padded batch of histories exactly as on each row alone: run
# once per group on the group's histories padded with -1 (never a token). Sequence bias / bad words match the end of
# each row (a -1 never matches, as a history shorter than the prefix is skipped); no-repeat-ngram compares each
# window with the row's last n-1 tokens (a window holding a -1 never matches a real suffix, and a row shorter than n
# has no window that does); the repetition penalty is rebuilt with each row's padding as its
# ``prompt_ignore_length`` (how ``generate`` handles left padding). Per row, no-repeat-ngram alone took 8 ms of a
# 32-row step (125M shape, one thread).
PADDED = (lp.SequenceBiasLogitsProcessor, lp.NoBadWordsLogitsProcessor, lp.RepetitionPenaltyLogitsProcessor,
          lp.NoRepeatNGramLogitsProcessor)

# Unseeded rows sample among the scores the warpers left (the others are -inf: probability 0, so the distribution is
# the same) when at most ``MAX_CANDIDATES`` are left: ``torch.multinomial`` over the whole vocabulary draws one
# exponential per id (25 ms of a 32-row step over 51,200 ids, one thread; among 50 candidates well under 1 ms). Seeded
# rows keep the draw over the whole vocabulary: it is ``generate``'s own, so the same seed gives the same reply
# batched and alone (tests/test_openai_fields.py).


def _padded(processor: lp.LogitsProcessor, histories: torch.Tensor, pads: torch.Tensor,
            scores: torch.Tensor) -> torch.Tensor:
    if type(processor) is lp.RepetitionPenaltyLogitsProcessor:
        return lp.RepetitionPenaltyLogitsProcessor(processor.penalty, prompt_ignore_length=pads)(histories, scores)
    return processor(histories, scores)


def _stack(jobs: list[Job]) -> tuple[torch.Tensor, torch.Tensor]:
    """The jobs' histories left-padded with -1 into one tensor, and each row's padding length."""
    width = max(j.history.shape[1] for j in jobs)
    histories = jobs[0].history.new_full((len(jobs), width), -1)
    for r, job in enumerate(jobs):
        histories[r, width - job.history.shape[1]:] = job.history[0]
    pads = torch.tensor([width - j.history.shape[1] for j in jobs], device=histories.device)
    return histories, pads


def _batchable(processor: lp.LogitsProcessor, k: int, jobs: list[Job]) -> bool:
    """``processor`` (the first job's k-th) is one of ``PADDED`` with no prompt offset, and every job's k-th
    processor is of the same type (a job's own extra processors keep the per-row path)."""
    if type(processor) not in PADDED or any(type(j.processors[k]) is not type(processor) for j in jobs):
        return False
    ignore = getattr(processor, "prompt_ignore_length", None)
    return ignore is None or (isinstance(ignore, torch.Tensor) and not bool(ignore.any()))


@dataclass(eq=False)
class Job:
    """One reply: prompt ids, its generation config, deadline, optional streamer; ``done`` is set at the end."""

    ids: list[int]
    config: GenerationConfig
    deadline: float
    streamer: Any = None  # a transformers streamer (put/end), fed one token at a time
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    tokens: list[int] = field(default_factory=list)
    error: BaseException | None = None
    history: torch.Tensor | None = None  # [1, prompt + generated]: what this reply's logits processors see
    processors: LogitsProcessorList | None = None
    stops: frozenset[int] = frozenset()
    group: tuple[int, int] = (0, 0)  # replies whose configs are one object share row-wise processing and sampling
    cut: bool = False  # stopped at its deadline
    constraints: list = field(default_factory=list)  # this reply's own processors (a grammar mask), before warpers
    options: ReplyOptions | None = None  # seed, extra processors (as generate's logits_processor), log-probs
    generator: torch.Generator | None = None  # this reply's sampling draws (seeded replies)
    scored: list[TokenLogprob] = field(default_factory=list)  # filled when options.logprobs is set


def job_scored(job: Job) -> list[TokenLogprob] | None:
    """The job's recorded log-probs, or ``None`` when it did not ask for them."""
    return job.scored if job.options is not None and job.options.logprobs is not None else None


def prepare_job(model: PreTrainedModel, job: Job,
                prepared: dict[int, tuple[GenerationConfig, GenerationConfig]]) -> None:
    """The job's logits processors and stop ids, built from its config as ``generate`` builds them; ``prepared``:
    the prepared config per original config object, kept by the caller."""
    device = model.device
    key = id(job.config)
    job.group = (key, len(job.constraints))  # grammar rows group apart: their processor lists are longer
    if key not in prepared:  # a deep copy per config, not per reply (bad words: 150 ms a copy)
        if len(prepared) >= 64:
            prepared.clear()
        config, _ = model._prepare_generation_config(job.config)
        model._prepare_special_tokens(config, kwargs_has_attention_mask=True, device=device)
        prepared[key] = job.config, config  # the original kept alive: its id stays unique
    config = prepared[key][1]
    prompt = torch.tensor([job.ids], dtype=torch.long, device=device)
    options = job.options or ReplyOptions()
    job.generator = options.generator(device)
    extra = options.logits_processors()
    if extra:  # its processor list differs from the others of its config: it cannot share their group
        job.group = (id(job), -1)
    job.processors = faster_processors(model._get_logits_processor(
        generation_config=config, input_ids_seq_length=prompt.shape[1], encoder_input_ids=prompt,
        prefix_allowed_tokens_fn=None, logits_processor=LogitsProcessorList([*job.constraints, *extra]),
        device=device, model_kwargs={"attention_mask": torch.ones_like(prompt)}))
    eos = config.eos_token_id
    job.stops = frozenset(eos if isinstance(eos, list) else [] if eos is None else [eos])
    job.history = prompt
    job.config = config


def sample_candidates(scores: torch.Tensor) -> torch.Tensor:
    """One token per row drawn from ``softmax(scores)`` (the global generator): among the ids whose score is not
    -inf when few are (``MAX_CANDIDATES``), else over the whole row as ``generate`` draws."""
    kept = int((scores != -float("inf")).sum(dim=-1).max())
    if 0 < kept <= MAX_CANDIDATES:
        values, ids = torch.topk(scores, kept, dim=-1)  # rows with fewer kept ids carry -inf: probability 0
        return ids.gather(-1, torch.multinomial(torch.softmax(values, dim=-1), num_samples=1))[:, 0]
    return torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1)[:, 0]


def _draw(scores: torch.Tensor, jobs: list[Job], do_sample: bool) -> torch.Tensor:
    """Each row's token from its processed scores: argmax, or a draw (seeded rows from their own generator)."""
    if do_sample and any(j.generator is not None for j in jobs):
        probs = torch.softmax(scores, dim=-1)  # seeded replies draw from their own generator, row by row
        return torch.cat([torch.multinomial(probs[r:r + 1], 1, generator=j.generator)[:, 0]
                          for r, j in enumerate(jobs)])
    if do_sample:
        return sample_candidates(scores)
    return torch.argmax(scores, dim=-1)


def choose_tokens(jobs: list[Job], logits: torch.Tensor) -> torch.Tensor:
    """The next token of each job from its own processors and sampling settings (as ``generate`` chooses)."""
    chosen = torch.zeros(len(jobs), dtype=torch.long, device=logits.device)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(job.group, []).append(i)
    for members in groups.values():
        first = jobs[members[0]]
        scores = logits[members]
        stacked = None
        seeded = any(jobs[i].generator is not None for i in members)
        tail = top_k_tail(first.processors) if first.config.do_sample and not seeded else len(first.processors)
        for k, processor in enumerate(first.processors[:tail]):
            if isinstance(processor, ROW_WISE):
                scores = processor(first.history, scores)
            elif len(members) > 1 and _batchable(processor, k, [jobs[i] for i in members]):
                stacked = stacked or _stack([jobs[i] for i in members])
                scores = _padded(processor, *stacked, scores)
            else:
                scores = torch.cat([jobs[i].processors[k](jobs[i].history, scores[r:r + 1])
                                    for r, i in enumerate(members)])
        tokens = sample_top_k(scores, first.processors[tail:]) if tail < len(first.processors) else None
        if tokens is None:
            for processor in first.processors[tail:]:  # top-k and top-p as they are (ties across the k-th score)
                scores = processor(first.history, scores)
            tokens = _draw(scores, [jobs[i] for i in members], first.config.do_sample)
        chosen[members] = tokens
    for row, (job, token) in enumerate(zip(jobs, chosen.tolist(), strict=True)):
        if job.options is not None and job.options.logprobs is not None:
            job.scored.append(token_logprob(logits[row], token, job.options.logprobs))
        job.history = torch.cat([job.history, job.history.new_tensor([[token]])], dim=1)
        job.tokens.append(token)
        if job.streamer is not None:
            job.streamer.put(torch.tensor([token]))
    return chosen
