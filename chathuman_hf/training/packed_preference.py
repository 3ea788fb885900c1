"""Padding-free DPO: TRL's ``DPOTrainer`` loss and metrics, with each forward run on packed rows.

TRL 1.16 disables ``padding_free`` for DPO (trl#2469) and runs ``2·batch`` right-padded rows [prompt + chosen] and
[prompt + rejected] through the model twice per step (policy, reference). Here the model's fused forward (TRL's
``add_fused_lm_head``) is wrapped: a padded call is packed into rows without padding (restarting ``position_ids``,
no attention mask: transformers keeps the sequences apart in every layer, ``tokens/packed_attention``), scored with
pre-shifted labels that stop at each sequence's end, and every per-token output (log-probs, entropy, mean logits,
top-1) is put back in the padded layout TRL reads. TRL's ``_compute_loss`` (sigmoid, ipo, the SFT term, rewards,
accuracies, margins, token counts) and ``compute_ref_log_probs`` then run unchanged on the same numbers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch

from chathuman_hf.tokens.packed_attention import packed_position_ids, packing_problem


@dataclass
class PackedCall:
    """A padded ``(rows, length)`` call laid out as packed rows, and the masks that map outputs back."""

    input_ids: torch.Tensor  # (packed rows, width)
    position_ids: torch.Tensor  # restarting at 0 for each sequence; padding 0
    shift_labels: torch.Tensor  # next-token label of each position, -100 at sequence ends and outside completions
    padded_scored: torch.Tensor  # (rows, length - 1): positions of the padded layout with a label
    packed_scored: torch.Tensor  # (packed rows, width): the same positions, same order, in the packed layout


def right_padded_lengths(attention_mask: torch.Tensor) -> torch.Tensor | None:
    """Each row's length when every row is ``1…1 0…0`` (TRL's right padding), else None."""
    lengths = attention_mask.sum(dim=1)
    positions = torch.arange(attention_mask.size(1), device=attention_mask.device)
    if not torch.equal(attention_mask.bool(), positions < lengths[:, None]):
        return None
    return lengths


def pack_call(input_ids: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor,
              capacity: int | None = None) -> PackedCall:
    """Lay the rows of a padded call end to end, in order, in packed rows of at most ``capacity`` tokens (one row
    when None; a longer sequence gets a row of its own)."""
    rows, length = input_ids.shape
    real = torch.arange(length, device=input_ids.device) < lengths[:, None]
    # the label of each position is the next token of its own sequence (-100 past its end)
    next_labels = torch.cat([labels[:, 1:], labels.new_full((rows, 1), -100)], dim=1).masked_fill(~real, -100)
    sizes = lengths.tolist()
    bins: list[list[int]] = []
    for n in sizes:
        if bins and (capacity is None or sum(bins[-1]) + n <= capacity):
            bins[-1].append(n)
        else:
            bins.append([n])
    width = max(sum(b) for b in bins)
    flat_ids, flat_labels = input_ids[real], next_labels[real]
    packed_ids = input_ids.new_zeros((len(bins), width))
    packed_labels = labels.new_full((len(bins), width), -100)
    start = 0
    for b, members in enumerate(bins):
        n = sum(members)
        packed_ids[b, :n] = flat_ids[start:start + n]
        packed_labels[b, :n] = flat_labels[start:start + n]
        start += n
    return PackedCall(
        input_ids=packed_ids, position_ids=packed_position_ids(bins, width).to(input_ids.device),
        shift_labels=packed_labels, padded_scored=labels[:, 1:] != -100, packed_scored=packed_labels != -100)


def unpack(value: torch.Tensor | None, call: PackedCall) -> torch.Tensor | None:
    """A per-token output of the packed rows in the padded ``(rows, length - 1)`` layout (0 where no label)."""
    if value is None:
        return None
    return value.new_zeros(call.padded_scored.shape).masked_scatter(call.padded_scored, value[call.packed_scored])


PER_TOKEN = ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1", "label_mask")


def padding_free_forward(forward: Any, capacity: int | None = None) -> Any:
    """Wrap a forward patched by TRL's ``add_fused_lm_head``: its padded fused calls run packed."""

    @functools.wraps(forward)
    def packed_forward(*args: Any, fused_lm_head: bool = False, labels: torch.Tensor | None = None,
                       **kwargs: Any) -> Any:
        input_ids, mask = kwargs.get("input_ids"), kwargs.get("attention_mask")
        lengths = None
        if (fused_lm_head and not args and labels is not None and input_ids is not None and mask is not None
                and mask.dim() == 2 and kwargs.get("position_ids") is None and kwargs.get("inputs_embeds") is None
                and kwargs.get("shift_labels") is None and kwargs.get("past_key_values") is None):
            lengths = right_padded_lengths(mask)
        if lengths is None:  # not the padded call of a DPO step: the fused forward as TRL made it
            return forward(*args, fused_lm_head=fused_lm_head, labels=labels, **kwargs)
        call = pack_call(input_ids, lengths, labels, capacity)
        kwargs.update(input_ids=call.input_ids, attention_mask=None, position_ids=call.position_ids,
                      shift_labels=call.shift_labels, use_cache=False)
        outputs = forward(fused_lm_head=True, **kwargs)
        for name in PER_TOKEN:
            if getattr(outputs, name, None) is not None:
                setattr(outputs, name, unpack(getattr(outputs, name), call))
        return outputs

    return packed_forward


def enable_padding_free(model: Any, capacity: int | None = None) -> None:
    """Make ``model``'s fused forward (TRL's ``add_fused_lm_head``, on the base model under PEFT) padding-free."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(inner.forward, "_padding_free", False):
        return
    wrapped = padding_free_forward(inner.forward, capacity)
    wrapped._padding_free = True
    inner.forward = wrapped


def padding_free_problem(trainer: Any) -> str | None:
    """Why packed DPO forwards would not equal TRL's padded ones for this trainer (one line), or None."""
    if getattr(trainer, "_is_vision_dataset", False):
        return "vision-language rows are collated by TRL's processor"
    model = trainer.accelerator.unwrap_model(trainer.model)
    config = getattr(model, "active_peft_config", None)
    if config is not None and config.is_prompt_learning:
        return "prompt-learning PEFT adds virtual tokens to each row"
    for each in (model, trainer.ref_model):
        if each is not None and (problem := packing_problem(each, use_cache=False)):
            return problem.replace("--packing", "padding-free DPO").replace("drop padding-free DPO",
                                                                           "pass --padding_free false")
    return None

