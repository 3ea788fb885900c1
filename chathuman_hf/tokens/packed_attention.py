"""Packed rows through transformers' own packed-sequence support: restarting ``position_ids``, no attention mask.

transformers (``masking_utils.find_packed_sequence_indices``) reads the sequence boundaries from ``position_ids``
that restart at 0 when no attention mask and no cache are passed, and builds every layer's own mask from them
(causal, sliding window, ...), and flash attention takes its varlen path from the same ``position_ids``.
Measured here (``bench/packing_exactness.py``, ``bench/RESULTS.md``): packed logits equal unpacked ones to
<= 2.6e-7 (loss <= 1e-6) for gpt2, llama, qwen2, gemma3_text and exaone4 (sliding window 16) under eager, sdpa
and flex_attention (not gpt2), while the hand-built 4-D block-diagonal mask used before replaced the sliding-window
layers' masks (logits off by 0.60 on gemma3_text, 0.32 on exaone4). With a cache the detection is off and
dialogues leak (0.19-0.89), hence ``use_cache=False``: Trainer sets ``config.use_cache = args.use_cache`` (False
by default), ``build_model`` does the same, evaluation passes it, and ``check_packing_supported`` refuses
``--use_cache true``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import torch


def packed_position_ids(seq_lengths: Sequence[Sequence[int]], total: int) -> torch.Tensor:
    """``(B, total)`` position ids restarting at 0 for each packed sequence; padding positions are all 0.

    Each padding position then counts as its own one-token sequence (no row is fully masked) and, padding being on
    the right, no real token attends to it.
    """
    out = torch.zeros((len(seq_lengths), total), dtype=torch.long)
    for b, lengths in enumerate(seq_lengths):
        if sum(lengths) > total:
            raise ValueError(f"Batch row {b}: seq_lengths {list(lengths)} exceed the {total} positions of the batch")
        if lengths:
            out[b, : sum(lengths)] = torch.cat([torch.arange(n) for n in lengths])
    return out


def packing_problem(model: Any, *, use_cache: bool | None = False) -> str | None:
    """Why packed rows would not stay isolated in ``model`` (one line with the fix), or None when they do."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    config = getattr(model, "config", None)
    impl = str(getattr(config, "_attn_implementation", None) or "eager")
    if impl not in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping and "flash" not in impl:
        return (f"--packing needs an attention implementation that separates packed sequences (eager, sdpa, "
                f"flash_attention_*); this model uses {impl!r}: load it with attn_implementation='sdpa' "
                "or drop --packing")
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # a PEFT model: the wrapped one
    module = sys.modules.get(type(inner).__module__)
    if module is None or not any(
        hasattr(module, f) for f in ("create_causal_mask", "create_sliding_window_causal_mask")
    ):
        return (f"--packing needs transformers' packed-sequence support, but {type(inner).__name__} "
                f"({type(inner).__module__}) builds its own attention mask (remote or old modeling code): "
                "drop --packing")
    if use_cache:
        return ("--packing needs --use_cache false: with a cache transformers does not detect the packed sequences "
                "and they attend to each other")
    return None


def check_packing_supported(model: Any, *, use_cache: bool | None = False) -> None:
    """Raise ``ValueError`` (one line naming the fix) when packed rows would leak into each other in ``model``."""
    problem = packing_problem(model, use_cache=use_cache)
    if problem:
        raise ValueError(problem)
