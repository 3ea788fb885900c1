"""Seed-style training loop: plain PyTorch, every example padded to 256, Adam, one step per batch.

Written by us from SEED_NOTES.md. Labels follow the label mode chosen for the whole benchmark so that the quality
comparison is fair (pads are always -100; the seed's fixed padding is what costs the time).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import torch

from .seed_preprocess import ASSISTANT


def label_ids(ids: list[int], roles: list[int], label_mode: str) -> list[int]:
    """`input`: every real token; `-100+sys`: assistant content and its eos only."""
    if label_mode == "input":
        return list(ids)
    if label_mode in ("-100+sys", "all_sys"):
        return [t if r == ASSISTANT else -100 for t, r in zip(ids, roles, strict=True)]
    raise ValueError(f"seed-style loop supports label modes 'input' and '-100+sys', not {label_mode!r}")


def seed_style_train(
    model: torch.nn.Module,
    examples: list[tuple[list[int], list[int]]],
    *,
    pad_id: int,
    label_mode: str,
    batch_size: int,
    lr: float,
    order_seed: int,
    after_step: Callable[[], bool],
    max_length: int = 256,
    device: str = "cpu",
    bf16: bool = False,
) -> int:
    """Train until `after_step()` returns True; each batch is padded to `max_length`. Returns the step count."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    rng = random.Random(order_seed)
    model.train()
    steps = 0
    while True:
        order = list(range(len(examples)))
        rng.shuffle(order)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            rows, labels, mask = [], [], []
            for i in order[start : start + batch_size]:
                ids, roles = examples[i]
                ids, roles = ids[:max_length], roles[:max_length]
                n_pad = max_length - len(ids)
                rows.append(ids + [pad_id] * n_pad)
                labels.append(label_ids(ids, roles, label_mode) + [-100] * n_pad)
                mask.append([1] * len(ids) + [0] * n_pad)
            batch = {
                "input_ids": torch.tensor(rows, device=device),
                "attention_mask": torch.tensor(mask, device=device),
                "labels": torch.tensor(labels, device=device),
            }
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
                loss = model(**batch, use_cache=False).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            steps += 1
            if after_step():
                return steps
