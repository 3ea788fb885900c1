"""Fair evaluation: token-weighted loss sums per example, assistant-token perplexity and generation health.

Every number is a sum over target tokens divided by the number of target tokens of the whole held-out set, so it is
the same for any eval batch size, with or without packing, and across label modes (``assistant_*`` always scores the
assistant-turn tokens: contents and their end-of-turn, never user turns or role markers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from chathuman_hf.tokens.labels import IGNORE_INDEX
from chathuman_hf.tokens.tokenizer import CHAT_SAMPLING

STAT_COLUMNS = ("loss_sum", "tokens", "assistant_loss_sum", "assistant_tokens")


def token_nll_sums(
    logits: torch.Tensor, labels: torch.Tensor, *, pre_shifted: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row sums of token NLL and target counts (float64, int64); ``pre_shifted`` labels are not shifted again."""
    if not pre_shifted:
        logits, labels = logits[:, :-1, :], labels[:, 1:]
    nll = F.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=IGNORE_INDEX, reduction="none"
    ).view(labels.shape)
    mask = labels != IGNORE_INDEX
    return (nll.double() * mask).sum(dim=1), mask.sum(dim=1)


def batch_loss_stats(
    logits: torch.Tensor, labels: torch.Tensor, assistant_labels: torch.Tensor | None, *, pre_shifted: bool
) -> torch.Tensor:
    """``(B, 4)`` float64 rows: mode loss sum, mode tokens, assistant loss sum, assistant tokens."""
    loss_sum, tokens = token_nll_sums(logits, labels, pre_shifted=pre_shifted)
    if assistant_labels is None:
        a_sum, a_tokens = torch.zeros_like(loss_sum), torch.zeros_like(tokens)
    else:
        a_sum, a_tokens = token_nll_sums(logits, assistant_labels, pre_shifted=False)
    return torch.stack([loss_sum, tokens.double(), a_sum, a_tokens.double()], dim=1)


def _perplexity(loss: float) -> float:
    return math.exp(min(loss, 700.0)) if math.isfinite(loss) else float("nan")


def summarize_stats(stats: torch.Tensor) -> dict[str, float]:
    """Token-weighted ``loss``, ``perplexity``, ``assistant_loss``, ``assistant_perplexity`` and token counts."""
    totals = stats.double().sum(dim=0).tolist() if stats.numel() else [0.0] * len(STAT_COLUMNS)
    loss_sum, tokens, a_sum, a_tokens = totals
    loss = loss_sum / tokens if tokens else float("nan")
    a_loss = a_sum / a_tokens if a_tokens else float("nan")
    return {
        "loss": loss,
        "perplexity": _perplexity(loss),
        "assistant_loss": a_loss,
        "assistant_perplexity": _perplexity(a_loss),
        "tokens": int(tokens),
        "assistant_tokens": int(a_tokens),
    }


@dataclass
class StatsAccumulator:
    """Collects ``batch_loss_stats`` rows over an eval loop (already gathered across processes)."""

    rows: list[torch.Tensor] = field(default_factory=list)

    def reset(self) -> None:
        self.rows.clear()

    def add(self, stats: torch.Tensor) -> None:
        self.rows.append(stats.detach().double().cpu())

    def summary(self) -> dict[str, float]:
        return summarize_stats(torch.cat(self.rows) if self.rows else torch.zeros(0, len(STAT_COLUMNS)))


def health_prompts(dialogues: Any, n: int) -> list[list[dict[str, str]]]:
    """The first ``n`` held-out dialogues cut before their last assistant message: fixed generation prompts."""
    prompts = []
    for row in dialogues:
        messages = list(row["messages"] if isinstance(row, dict) else row)
        while messages and messages[-1]["role"] != "user":
            messages.pop()
        if messages:
            prompts.append([{"role": m["role"], "content": m["content"]} for m in messages])
        if len(prompts) >= n:
            break
    return prompts


@torch.no_grad()
def generate_replies(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[list[dict[str, str]]],
    *,
    max_new_tokens: int = CHAT_SAMPLING["max_new_tokens"],
    max_prompt_tokens: int | None = None,
    max_turns: int | None = None,
    synced_gpus: bool = False,
) -> tuple[list[list[int]], list[int], list[str]]:
    """Greedy replies to ``prompts``: (reply token ids without specials, stopped-at-end-of-turn flags, texts)."""
    from chathuman_hf.core.window import fit_prompt

    gen_config = model.generation_config
    eos = gen_config.eos_token_id if gen_config is not None else None
    eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [tokenizer.eos_token_id])
    special = set(tokenizer.all_special_ids)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    replies, stopped, texts = [], [], []
    for messages in prompts:
        ids, _ = fit_prompt(messages, tokenizer, max_turns=max_turns, max_prompt_tokens=max_prompt_tokens)
        input_ids = torch.tensor([ids], device=device)
        out = model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=sorted(eos_ids),
            pad_token_id=tokenizer.pad_token_id,
            synced_gpus=synced_gpus,
        )
        new = out[0, input_ids.shape[1] :].tolist()
        end = next((i for i, t in enumerate(new) if t in eos_ids), None)
        stopped.append(int(end is not None))
        body = new[:end] if end is not None else new
        reply = [t for t in body if t not in special]
        replies.append(reply)
        texts.append(tokenizer.decode(reply, skip_special_tokens=True).strip())
    if was_training:
        model.train()
    return replies, stopped, texts


def load_metric(name: str) -> Any:
    """A metric module shipped in ``chathuman_hf/evaluation/metrics`` loaded offline with ``evaluate.load(path)``."""
    import evaluate

    from chathuman_hf.evaluation.metrics import metric_path

    return evaluate.load(metric_path(name), keep_in_memory=True)


def generation_health(replies: list[list[int]], stopped: list[int]) -> dict[str, float]:
    """``gen_stopped_share``, ``gen_empty_share``, ``gen_distinct_2``, ``gen_mean_length`` via the shipped metric."""
    metric = load_metric("generation_health")
    values = metric.compute(predictions=replies, references=stopped)
    return {f"gen_{k}": float(v) for k, v in values.items()}
