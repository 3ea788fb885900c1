"""The double-shift guard: pre-shifted labels must not go into a loss that shifts them again.

The training loss itself is transformers' own causal-LM loss (``ForCausalLMLoss``): it shifts ``labels``, or takes
``shift_labels`` as they are (the ``shift`` mode's collator sends both), and divides by Trainer's
``num_items_in_batch`` so gradient accumulation gives the same update as one big batch (measured equal to the
hand-written loss this replaced, STACK_NOTES).
"""

from __future__ import annotations

from typing import Any

import torch

from chathuman_hf.tokens.labels import IGNORE_INDEX

DOUBLE_SHIFT_MESSAGE = (
    "These labels are already shifted (label[t] == input_ids[t+1]) but the model shifts labels again inside its "
    "loss, so every token would be trained to predict the token two positions ahead (the seed's 'shift' bug). "
    "Use label_mode='shift' (ChatCollator sends the labels as shift_labels=..., which the model does not shift), "
    "or pass unshifted labels (label_mode='input')."
)


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
