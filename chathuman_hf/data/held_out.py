"""The held-out split: a fixed-seed share of the dialogues, each dialogue together with its variants — the role swap
(``#swap``, ``map_steps.turns_batch``), max-turn parts (``#0``, ``#1``…) and converted speech-level twins
(``#plain``/``#polite``, ``speech.balance_levels``, also when ``prepare.py`` wrote them) — so that held-out metrics
are never measured on near-copies of training dialogues."""

from __future__ import annotations

import re

from datasets import Dataset

VARIANT_SUFFIX = re.compile(r"(?:#swap)?(?:#\d+)?(?:#(?:plain|polite))?\Z")


def origin_of(source: str, dialogue_id: str) -> str:
    """The key of the dialogue a row was made from: its source and id without the variant suffixes."""
    return f"{source}\t{VARIANT_SUFFIX.sub('', dialogue_id, count=1)}"


def held_out_split(dialogues: Dataset, share: float, seed: int) -> tuple[Dataset, Dataset]:
    """``(train, held_out)``: ``Dataset.train_test_split(test_size=share, seed=seed)`` over the dialogues' origins,
    every row going where its origin goes (without variants, exactly the split ``datasets`` makes of the rows)."""
    keys = [origin_of(s, d) for s, d in zip(dialogues["source"], dialogues["dialogue_id"], strict=True)]
    groups = list(dict.fromkeys(keys))
    if len(groups) < 2:
        raise ValueError("Need at least 2 dialogues to hold some out; pass --eval-data or --eval-split 0.")
    if len(groups) == len(keys):
        split = dialogues.train_test_split(test_size=share, seed=seed)
        return split["train"], split["test"]
    picked = Dataset.from_dict({"group": list(range(len(groups)))}).train_test_split(test_size=share, seed=seed)
    rows: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        rows.setdefault(key, []).append(index)

    def select(part: str) -> Dataset:
        return dialogues.select([i for g in picked[part]["group"] for i in rows[groups[g]]])

    return select("train"), select("test")
