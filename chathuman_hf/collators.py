"""Label modes and the chat collator: dynamic padding, labels per mode, packed rows with restarting position ids.

Which tokens carry loss (``✓``) for ``<usr>밥 먹었어<sys>응 먹었어</s><usr>뭐 먹었어<sys>김밥</s>``::

    token      </s> <usr> 밥 먹었어 <sys> 응 먹었어 </s> <usr> 뭐 먹었어 <sys> 김밥 </s>
    input        ·    ✓    ✓   ✓     ✓    ✓   ✓     ✓    ✓    ✓   ✓     ✓    ✓    ✓
    -100         ·    ·    ·   ·     ·    ·   ·     ·    ·    ·   ·     ·    ✓    ✓
    -100+sys     ·    ·    ·   ·     ·    ✓   ✓     ✓    ·    ·   ·     ·    ✓    ✓
    shift        same targets as input, stored one position earlier (label[t] = token[t+1])
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

import torch

from chathuman_hf.features import ASSISTANT
from chathuman_hf.packed_attention import packed_position_ids

IGNORE_INDEX = -100


class LabelMode(str, enum.Enum):
    """Which tokens carry loss: ``input`` (all), ``last_sys`` (``-100``), ``all_sys`` (``-100+sys``), ``shift``."""

    INPUT = "input"
    LAST_SYS = "last_sys"
    ALL_SYS = "all_sys"
    SHIFT = "shift"

    @classmethod
    def parse(cls, value: str | LabelMode) -> LabelMode:
        if isinstance(value, LabelMode):
            return value
        key = str(value).strip().lower()
        aliases = {"-100": cls.LAST_SYS, "-100+sys": cls.ALL_SYS, "inputs": cls.INPUT}
        if key in aliases:
            return aliases[key]
        try:
            return cls(key)
        except ValueError:
            raise ValueError(
                f"Unknown label mode {value!r}: expected one of input, -100 (last_sys), -100+sys (all_sys), shift"
            ) from None

    @property
    def pre_shifted(self) -> bool:
        return self is LabelMode.SHIFT


def unshifted_labels(ids: Sequence[int], roles: Sequence[int], last_turn: Sequence[int], mode: LabelMode) -> list[int]:
    """Labels aligned with ``ids`` (the model shifts them): which tokens are targets under ``mode``."""
    if mode in (LabelMode.INPUT, LabelMode.SHIFT):
        return list(ids)
    if mode is LabelMode.ALL_SYS:
        return [t if r == ASSISTANT else IGNORE_INDEX for t, r in zip(ids, roles, strict=True)]
    return [t if r == ASSISTANT and lt else IGNORE_INDEX for t, r, lt in zip(ids, roles, last_turn, strict=True)]


def example_labels(
    ids: Sequence[int], roles: Sequence[int], last_turn: Sequence[int], mode: LabelMode, seq_lengths: Sequence[int]
) -> list[int]:
    """Labels for one (possibly packed) row; each packed sequence is labelled as if it stood alone."""
    out: list[int] = []
    start = 0
    for n in seq_lengths:
        sl = slice(start, start + n)
        if mode is LabelMode.SHIFT:
            seq = list(ids[sl])
            out.extend(seq[1:] + [IGNORE_INDEX])  # label[t] = token[t+1]; no target after the last token
        else:
            labels = unshifted_labels(ids[sl], roles[sl], last_turn[sl], mode)
            if labels:
                labels[0] = IGNORE_INDEX  # nothing predicts a sequence's first token (matters when packed)
            out.extend(labels)
        start += n
    return out


class ChatCollator:
    """Pad a batch of tokenized dialogues to its longest row and build labels for the selected label mode.

    Rows with ``seq_lengths`` (from ``pack_dataset``) are packed rows: they get restarting ``position_ids`` and no
    ``attention_mask``, from which transformers keeps packed dialogues apart (``packed_attention``). In ``shift`` mode
    the batch also carries ``shift_labels`` (same tensor) so Trainer counts target tokens correctly; compute the loss with
    ``losses.make_compute_loss_func("shift")``.
    """

    def __init__(
        self,
        pad_token_id: int,
        label_mode: str | LabelMode = LabelMode.INPUT,
        *,
        pad_to_multiple_of: int | None = None,
        with_assistant_labels: bool = False,
        return_tensors: str = "pt",
    ) -> None:
        if pad_token_id is None:
            raise ValueError("pad_token_id is None: prepare the tokenizer with chathuman_hf.tokenization.prepare_tokenizer")
        self.pad_token_id = int(pad_token_id)
        self.label_mode = LabelMode.parse(label_mode)
        self.pad_to_multiple_of = pad_to_multiple_of
        self.with_assistant_labels = with_assistant_labels
        if return_tensors != "pt":
            raise ValueError("ChatCollator only returns PyTorch tensors (return_tensors='pt').")

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("ChatCollator got an empty batch")
        missing = [k for k in ("input_ids", "roles", "last_turn") if k not in features[0]]
        if missing:
            raise ValueError(
                f"ChatCollator needs the columns input_ids/roles/last_turn from tokenize_dialogues; missing {missing} "
                f"(got {sorted(features[0])}). With Trainer, set TrainingArguments(remove_unused_columns=False)."
            )
        packed = "seq_lengths" in features[0]
        lengths = [len(f["input_ids"]) for f in features]
        total = max(lengths)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            total = (total + m - 1) // m * m
        B = len(features)
        input_ids = torch.full((B, total), self.pad_token_id, dtype=torch.long)
        labels = torch.full((B, total), IGNORE_INDEX, dtype=torch.long)
        assistant = torch.full((B, total), IGNORE_INDEX, dtype=torch.long) if self.with_assistant_labels else None
        attention = torch.zeros((B, total), dtype=torch.long)
        seq_lengths = []
        for b, f in enumerate(features):
            ids = list(f["input_ids"])
            n = len(ids)
            if n == 0:
                raise ValueError(f"Batch row {b} has no tokens")
            seqs = list(f["seq_lengths"]) if packed else [n]
            if sum(seqs) != n:
                raise ValueError(f"Batch row {b}: seq_lengths {seqs} do not add up to its {n} tokens")
            seq_lengths.append(seqs)
            input_ids[b, :n] = torch.tensor(ids)
            attention[b, :n] = 1
            labels[b, :n] = torch.tensor(example_labels(ids, f["roles"], f["last_turn"], self.label_mode, seqs))
            if assistant is not None:
                assistant[b, :n] = torch.tensor(example_labels(ids, f["roles"], f["last_turn"], LabelMode.ALL_SYS, seqs))
        targets = int((labels != IGNORE_INDEX).sum()) if self.label_mode.pre_shifted else int(
            (labels[:, 1:] != IGNORE_INDEX).sum()
        )
        if targets == 0:
            raise ValueError(
                f"This batch has no label-carrying token under label mode {self.label_mode.value!r}; tokenize with "
                "tokenize_dialogues(..., label_mode=...) so examples without targets are dropped before training."
            )
        batch: dict[str, torch.Tensor] = {"input_ids": input_ids, "labels": labels}
        if packed:
            batch["position_ids"] = packed_position_ids(seq_lengths, total)
        else:
            batch["attention_mask"] = attention
        if self.label_mode.pre_shifted:
            batch["shift_labels"] = labels
        if assistant is not None:
            batch["assistant_labels"] = assistant
        return batch
