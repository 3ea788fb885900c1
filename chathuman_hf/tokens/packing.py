"""Exact packing: whole dialogues share rows up to ``max_length`` (best fit over a shuffled stream).

A packed row keeps ``seq_lengths``; the collator turns it into restarting ``position_ids`` with no attention mask,
from which transformers keeps the dialogues apart in every layer (``packed_attention``), so a packed batch gives the
same per-token logits and loss as the unpacked one.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from typing import Any

from datasets import Dataset

PACKED_COLUMNS = ["input_ids", "roles", "last_turn"]


def best_fit_bins(lengths: Sequence[int], max_length: int, order: Sequence[int]) -> list[list[int]]:
    """Assign example indices (visited in ``order``) to bins of capacity ``max_length``, best fit (tightest bin)."""
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # sorted (remaining capacity, bin id)
    for idx in order:
        n = lengths[idx]
        if n > max_length:
            raise ValueError(
                f"Example {idx} has {n} tokens > max_length={max_length}: tokenize with the same max_length"
            )
        pos = bisect.bisect_left(free, (n, -1))
        if pos < len(free):
            remaining, b = free.pop(pos)
            bins[b].append(idx)
            remaining -= n
        else:
            b = len(bins)
            bins.append([idx])
            remaining = max_length - n
        if remaining > 0:
            bisect.insort(free, (remaining, b))
    return bins


def pack_dataset(dataset: Dataset, *, max_length: int, seed: int = 0) -> Dataset:
    """Pack a tokenized dataset into rows of at most ``max_length`` tokens; adds ``seq_lengths``.

    The examples are shuffled with ``seed`` before packing and the packs are shuffled again, so neighbouring
    examples are not correlated by order, length or label (unshuffled/sorted packing costs held-out perplexity).
    """
    missing = [c for c in PACKED_COLUMNS if c not in dataset.column_names]
    if missing:
        raise ValueError(f"pack_dataset needs the columns {PACKED_COLUMNS} from tokenize_dialogues; missing {missing}")
    rng = random.Random(seed)
    if "length" in dataset.column_names:
        lengths = dataset.data.column("length").to_pylist()
    else:
        lengths = [len(x) for x in dataset.data.column("input_ids").to_pylist()]
    order = list(range(len(dataset)))
    rng.shuffle(order)
    bins = best_fit_bins(lengths, max_length, order)
    rng.shuffle(bins)
    cols = {c: dataset.data.column(c).to_pylist() for c in PACKED_COLUMNS}

    def rows():
        for members in bins:
            row: dict[str, Any] = {c: [t for i in members for t in cols[c][i]] for c in PACKED_COLUMNS}
            row["seq_lengths"] = [lengths[i] for i in members]
            row["length"] = sum(row["seq_lengths"])
            yield row

    return Dataset.from_list(list(rows()))


def packed_rows_per_step(examples_per_step: int, examples: int, rows: int) -> int:
    """Packed rows per step that hold about ``examples_per_step`` of the ``examples`` packed into ``rows`` (>= 1).

    Counting the batch in dialogues keeps the optimizer steps per epoch of the unpacked run; counting it in rows
    divides them by the dialogues per row (~18 for ChatbotData's 14-token pairs in 256-token rows), and a short
    run then stops far from where the unpacked one gets (``bench/RESULTS.md`` § 13).
    """
    if examples <= 0 or rows <= 0:
        raise ValueError(f"packed_rows_per_step needs examples and rows > 0, got {examples} and {rows}")
    return max(1, round(examples_per_step * rows / examples))


def padding_share(lengths: Sequence[int], *, batch_size: int, strategy: str, max_length: int = 256,
                  seed: int = 0) -> float:
    """Share of batch positions that are padding for one pass over examples of the given token ``lengths``.

    ``strategy``: ``fixed`` (every row padded to ``max_length``, the seed's way), ``dynamic`` (shuffled batches
    padded to their longest row) or ``packed`` (best-fit packs of a shuffled stream, then dynamic padding).
    """
    lengths = list(lengths)
    if not lengths:
        raise ValueError("padding_share needs at least one example length")
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if strategy == "fixed":
        rows = [lengths[i] for i in order]
        slots = len(rows) * max_length
        return 1.0 - sum(rows) / slots
    if strategy == "packed":
        bins = best_fit_bins(lengths, max_length, order)
        rng.shuffle(bins)
        rows = [sum(lengths[i] for i in b) for b in bins]
    elif strategy == "dynamic":
        rows = [lengths[i] for i in order]
    else:
        raise ValueError(f"strategy={strategy!r}: expected fixed, dynamic or packed")
    slots = 0
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        slots += max(batch) * len(batch)
    return 1.0 - sum(rows) / slots


def padding_report(lengths: Sequence[int], *, batch_size: int, max_length: int = 256, seed: int = 0) -> dict[str, Any]:
    """Padding share for fixed, dynamic and packed batching of the same examples (for docs and bench)."""
    out: dict[str, Any] = {"examples": len(lengths), "tokens": int(sum(lengths)), "batch_size": batch_size,
                           "max_length": max_length}
    for strategy in ("fixed", "dynamic", "packed"):
        out[strategy] = round(padding_share(lengths, batch_size=batch_size, strategy=strategy,
                                            max_length=max_length, seed=seed), 4)
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    out["packed_rows"] = len(best_fit_bins(list(lengths), max_length, order))
    out["mean_fill"] = round(out["tokens"] / (max(out["packed_rows"], 1) * max_length), 4) if lengths else math.nan
    return out
