"""Preference pairs from dialogue data (``--rejected``), for users who have no ratings yet.

Every assistant reply of a dialogue, in its context, is ``chosen``; ``rejected`` is

- ``other``: a reply drawn (seeded) from another place of the data;
- ``other-similar``: the reply that follows the most similar other context (Jaccard overlap of character bigrams
  of the last user message; ties broken by the seeded order): a harder negative, a fitting answer to a
  neighbouring question;
- ``self``: the SFT model's own sampled reply (as in SPIN), from a sampler the training layer passes in.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from chathuman_hf.core.cli import UsageError

Messages = list[dict[str, str]]
Sampler = Callable[[list[Messages]], list[str]]
REJECTED_MODES = ("other", "other-similar", "self")
RANDOM_TRIES = 20  # draws for a different reply before a slot is dropped as no_other_reply
MAX_POSTINGS = 400  # bigrams shared by more contexts than this are too common to tell contexts apart


@dataclass
class Slot:
    """One assistant reply in its context: ``prompt`` (ends with the user's turn) and the reply's text."""

    prompt: Messages
    reply: str
    where: str


def reply_slots(dialogues: Iterable[dict[str, Any]]) -> list[Slot]:
    """Every assistant reply that follows a user turn, with the messages before it, in dialogue order."""
    slots = []
    for row in dialogues:
        messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
        for i, message in enumerate(messages):
            if message["role"] == "assistant" and i and messages[i - 1]["role"] == "user":
                slots.append(Slot(messages[:i], message["content"], f"{row['source']}: {row['dialogue_id']}#{i}"))
    return slots


def bigrams(text: str) -> frozenset[str]:
    """Character bigrams of ``text`` without spaces (a one-character text is its own bigram)."""
    compact = "".join(text.split())
    return frozenset(compact[i : i + 2] for i in range(max(len(compact) - 1, 1)))


def _random_other(slots: list[Slot], k: int, rng: random.Random) -> int | None:
    for _ in range(RANDOM_TRIES):
        j = rng.randrange(len(slots))
        if j != k and slots[j].reply != slots[k].reply:
            return j
    return None


def _similar_other(slots: list[Slot], grams: list[frozenset[str]], index: dict[str, list[int]], k: int,
                   rank: list[int]) -> int | None:  # fmt: skip
    own = grams[k]
    usable = [g for g in own if len(index[g]) <= MAX_POSTINGS] or sorted(own, key=lambda g: len(index[g]))[:2]
    shared: Counter[int] = Counter()
    for gram in usable:
        shared.update(index[gram])
    context, reply = slots[k].prompt[-1]["content"], slots[k].reply
    best, best_key = None, None
    for j, common in shared.items():
        if j == k or slots[j].reply == reply or slots[j].prompt[-1]["content"] == context:
            continue  # the same question's other answers are not negatives
        key = (common / (len(own) + len(grams[j]) - common), -rank[j])
        if best_key is None or key > best_key:
            best, best_key = j, key
    return best


def rejected_from_dialogues(slots: list[Slot], mode: str, seed: int,
                            sampler: Sampler | None = None) -> list[str | None]:  # fmt: skip
    """The rejected reply of every slot (None: no reply could be chosen) for ``mode`` (see the module doc)."""
    if mode == "self":
        if sampler is None:  # the sampler lives in the training layer (training/self_replies.py)
            raise UsageError("--rejected self: this loader has no model to sample; run recipes/prepare.py --rejected "
                             "self --rejected_model DIR and train on its preferences.jsonl (or load with "
                             "chathuman_hf.training.preference_data.load_preference_data)")  # fmt: skip
        return list(sampler([slot.prompt for slot in slots]))
    rng = random.Random(seed)
    if mode == "other":
        chosen = [_random_other(slots, k, rng) for k in range(len(slots))]
    else:
        grams = [bigrams(slot.prompt[-1]["content"]) for slot in slots]
        index: dict[str, list[int]] = {}
        for j, own in enumerate(grams):
            for gram in own:
                index.setdefault(gram, []).append(j)
        rank = list(range(len(slots)))
        rng.shuffle(rank)
        chosen = []
        for k in range(len(slots)):
            j = _similar_other(slots, grams, index, k, rank)
            chosen.append(j if j is not None else _random_other(slots, k, rng))
    return [slots[j].reply if j is not None else None for j in chosen]
