"""Padding-free DPO: TRL's ``DPOTrainer`` loss and metrics, with each forward run on packed rows.

TRL 1.16 disables ``padding_free`` for DPO (trl#2469) and runs ``2·batch`` right-padded rows [prompt + chosen] and
[prompt + rejected] through the model twice per step (policy, reference). Here the model's fused forward (TRL's
``add_fused_lm_head``) is wrapped: a padded call is laid out in packed rows without padding (``pair_layout``; each
pair's prompt computed once where a 4-D mask is exact, else each row a sequence of its own), scored with the labels of
the padded call, and every per-token output (log-probs, entropy, mean logits, top-1) is put back in the padded layout
TRL reads. TRL's ``_compute_loss`` (sigmoid, ipo, the SFT term, rewards, accuracies, margins, token counts) and
``compute_ref_log_probs`` then run unchanged on the same numbers.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator
from typing import Any

import torch

from chathuman_hf.tokens.packed_attention import packing_problem
from chathuman_hf.training.pair_layout import pair_layout, unpack


def right_padded_lengths(attention_mask: torch.Tensor) -> torch.Tensor | None:
    """Each row's length when every row is ``1…1 0…0`` (TRL's right padding), else None."""
    lengths = attention_mask.sum(dim=1)
    positions = torch.arange(attention_mask.size(1), device=attention_mask.device)
    if not torch.equal(attention_mask.bool(), positions < lengths[:, None]):
        return None
    return lengths


PER_TOKEN = ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1", "label_mask")


def shares_prompt_exactly(model: Any) -> bool:
    """True when a hand-built 4-D mask is every layer's whole mask in ``model`` (eager or sdpa, causal layers only,
    no sliding window or chunked attention), so a pair's prompt can be computed once."""
    config = getattr(model, "config", None)
    if config is None or str(getattr(config, "_attn_implementation", None) or "eager") not in ("eager", "sdpa"):
        return False
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    layer_types = getattr(text, "layer_types", None)
    if layer_types is not None:
        return all(kind == "full_attention" for kind in layer_types)
    return not any(getattr(text, name, None) for name in ("sliding_window", "attention_chunk_size"))


def _additive(keep: torch.Tensor, model: Any) -> torch.Tensor:
    """The 4-D mask the attention implementation takes: bool for sdpa, 0 / dtype-min for eager."""
    keep = keep[:, None]
    if model.config._attn_implementation == "sdpa":
        return keep
    dtype = next(model.parameters()).dtype
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(~keep, torch.finfo(dtype).min)


_LAST: list = []  # (input_ids, labels, share_prompt, capacity, layout) of the last call


def _layout(input_ids: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor, share_prompt: bool,
            capacity: int | None) -> Any:
    """``pair_layout``, built once for the policy and reference calls of a step (TRL passes them the same tensors)."""
    if _LAST and _LAST[0] is input_ids and _LAST[1] is labels and _LAST[2:4] == [share_prompt, capacity]:
        return _LAST[4]
    layout = pair_layout(input_ids, lengths, labels, share_prompt=share_prompt, capacity=capacity)
    _LAST[:] = [input_ids, labels, share_prompt, capacity, layout]
    return layout


def padding_free_forward(forward: Any, model: Any, *, share_prompt: bool, capacity: int | None = None) -> Any:
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
        layout = _layout(input_ids, lengths, labels, share_prompt, capacity)
        kwargs.update(input_ids=layout.input_ids, position_ids=layout.position_ids, shift_labels=layout.shift_labels,
                      attention_mask=None if layout.keep is None else _additive(layout.keep, model), use_cache=False)
        outputs = forward(fused_lm_head=True, **kwargs)
        for name in PER_TOKEN:
            if getattr(outputs, name, None) is not None:
                setattr(outputs, name, unpack(getattr(outputs, name), layout))
        return outputs

    return packed_forward


def enable_padding_free(model: Any, capacity: int | None = None) -> bool:
    """Make ``model``'s fused forward (TRL's ``add_fused_lm_head``, on the base model under PEFT) padding-free;
    True when a pair's prompt is computed once (``shares_prompt_exactly``)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    share = shares_prompt_exactly(inner)
    if not getattr(inner.forward, "_padding_free", False):
        wrapped = padding_free_forward(inner.forward, inner, share_prompt=share, capacity=capacity)
        wrapped._padding_free = True
        inner.forward = wrapped
    return share


@contextlib.contextmanager
def steady_peft_check(trainer: Any) -> Iterator[None]:
    """While a step of ``trainer`` runs, TRL's ``is_peft_model(trainer.model)`` answers from ``trainer.is_peft``:
    accelerate's re-reads peft's package metadata on every call (11 ms per DPO step on 2 cores, measured with
    cProfile: 16% of a tiny-Llama step); other models get accelerate's answer."""
    module = sys.modules["trl.trainer.dpo_trainer"]
    original = module.is_peft_model
    module.is_peft_model = lambda model: trainer.is_peft if model is trainer.model else original(model)
    try:
        yield
    finally:
        module.is_peft_model = original


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

