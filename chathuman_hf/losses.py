"""Token-weighted causal-LM losses, the ``shift`` mode's no-internal-shift loss, and the double-shift guard.

``make_compute_loss_func(mode)`` plugs into ``Trainer(compute_loss_func=...)``. It sums token losses and divides
by Trainer's ``num_items_in_batch`` (all target tokens of the accumulated batch), so gradient accumulation gives
the same update as one big batch. The ``shift`` collator also sends ``shift_labels`` so Trainer counts targets on
the already-shifted labels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from chathuman_hf.collators import IGNORE_INDEX, LabelMode

DOUBLE_SHIFT_MESSAGE = (
    "These labels are already shifted (label[t] == input_ids[t+1]) but the model shifts labels again inside its "
    "loss, so every token would be trained to predict the token two positions ahead (the seed's 'shift' bug). "
    "Use label_mode='shift' with Trainer(compute_loss_func=make_compute_loss_func('shift')) or pass the labels as "
    "shift_labels=..., or pass unshifted labels (label_mode='input')."
)


class EmptyTargetsError(ValueError):
    """A batch reached the loss without a single label-carrying token."""


def token_loss_sum(logits: torch.Tensor, labels: torch.Tensor, *, shifted: bool) -> tuple[torch.Tensor, int]:
    """Sum of token cross-entropies and the number of target tokens.

    ``shifted=False``: labels are aligned with the inputs (HF convention; position t predicts label t+1).
    ``shifted=True``: labels are already next-token targets (position t predicts label t).
    """
    if not shifted:
        logits = logits[:, :-1, :]
        labels = labels[:, 1:]
    labels = labels.to(logits.device)
    total = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
    )
    return total, int((labels != IGNORE_INDEX).sum())


def token_weighted_loss(
    logits: torch.Tensor, labels: torch.Tensor, *, shifted: bool = False, num_items_in_batch: Any = None
) -> torch.Tensor:
    """Mean token loss over target tokens (or the sum divided by ``num_items_in_batch`` when given)."""
    total, count = token_loss_sum(logits, labels, shifted=shifted)
    if count == 0:
        raise EmptyTargetsError(
            "A batch with zero label tokens reached the loss (it would give loss 0 and a NaN grad norm); drop such "
            "examples with tokenize_dialogues(..., label_mode=...)."
        )
    if num_items_in_batch is not None:
        denom = num_items_in_batch.to(total.device) if torch.is_tensor(num_items_in_batch) else num_items_in_batch
        return total / denom
    return total / count


def make_compute_loss_func(label_mode: str | LabelMode) -> Callable[..., torch.Tensor]:
    """A ``Trainer(compute_loss_func=...)`` loss for ``label_mode`` (``shift``: no internal shift)."""
    mode = LabelMode.parse(label_mode)

    def compute_loss(outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        if labels is None:
            raise ValueError("compute_loss_func got labels=None: the collator must return 'labels'.")
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs.logits
        return token_weighted_loss(logits, labels, shifted=mode.pre_shifted, num_items_in_batch=num_items_in_batch)

    compute_loss.label_mode = mode  # type: ignore[attr-defined]
    return compute_loss


def looks_pre_shifted(input_ids: torch.Tensor, labels: torch.Tensor) -> bool:
    """True when labels match ``input_ids`` shifted left by one but not ``input_ids`` themselves."""
    if input_ids is None or labels is None or input_ids.shape != labels.shape or input_ids.shape[-1] < 2:
        return False
    lab = labels[:, :-1]
    valid = lab != IGNORE_INDEX
    if not bool(valid.any()):
        return False
    matches_next = bool((lab[valid] == input_ids[:, 1:][valid]).all())
    aligned_valid = labels != IGNORE_INDEX
    matches_same = bool((labels[aligned_valid] == input_ids[aligned_valid]).all())
    return matches_next and not matches_same


def check_not_double_shifted(input_ids: torch.Tensor, labels: torch.Tensor) -> None:
    """Raise ``ValueError`` if pre-shifted labels are about to go into a loss that shifts them again."""
    if looks_pre_shifted(input_ids, labels):
        raise ValueError(DOUBLE_SHIFT_MESSAGE)


def install_label_guard(model: torch.nn.Module, *, checks: int = 8) -> Any:
    """Refuse, at forward time, pre-shifted ``labels`` given to the model's own (shifting) loss.

    Labels that come with ``shift_labels`` are fine (transformers then skips its shift). Only the first ``checks``
    forwards with labels are inspected (a wrong setup shows at once; later steps skip the device sync).
    Returns the hook handle.
    """
    seen = [0]

    def hook(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        labels = kwargs.get("labels")
        if labels is None or kwargs.get("shift_labels") is not None or seen[0] >= checks:
            return
        seen[0] += 1
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        check_not_double_shifted(input_ids, labels)

    return model.register_forward_pre_hook(hook, with_kwargs=True)
