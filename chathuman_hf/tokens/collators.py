"""The chat collator: dynamic padding, labels per mode (``chathuman_hf.tokens.labels``), packed rows with restarting
position ids.

Which tokens are targets is decided by ``chathuman_hf.tokens.labels`` only; this module pads and stacks.
"""

from __future__ import annotations

from typing import Any

import torch

from chathuman_hf.tokens.labels import IGNORE_INDEX, LabelMode, example_labels
from chathuman_hf.tokens.packed_attention import packed_position_ids

__all__ = ["ChatCollator", "IGNORE_INDEX", "LabelMode", "example_labels"]


class ChatCollator:
    """Pad a batch of tokenized dialogues to its longest row and build labels for the selected label mode.

    Rows with ``seq_lengths`` (from ``pack_dataset``) are packed rows: they get restarting ``position_ids`` and no
    ``attention_mask``, from which transformers keeps packed dialogues apart (``packed_attention``). In ``shift``
    mode the batch also carries ``shift_labels`` (same tensor): transformers' causal-LM loss then uses them without
    shifting again, and Trainer counts ``num_items_in_batch`` on them.
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
            raise ValueError(
                "pad_token_id is None: prepare the tokenizer with chathuman_hf.tokens.tokenizer.prepare_tokenizer"
            )
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
                assistant[b, :n] = torch.tensor(
                    example_labels(ids, f["roles"], f["last_turn"], LabelMode.ALL_SYS, seqs)
                )
        targets = int((labels != IGNORE_INDEX).sum()) if self.label_mode.pre_shifted else int(
            (labels[:, 1:] != IGNORE_INDEX).sum()
        )
        if targets == 0 and (assistant is None or not bool((assistant != IGNORE_INDEX).any())):
            # (an eval batch of rows a history-rewriting template adds has no -100 target but assistant ones)
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
