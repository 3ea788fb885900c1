"""Training-benchmark data: ChatbotData + the embedded sample as `messages`, one split, one encoding for everyone."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

import torch

from bench.common import CHATBOT_CSV, SAMPLE_DIR


def load_messages(csv_path: Path = CHATBOT_CSV, sample_dir: Path = SAMPLE_DIR) -> list[list[dict]]:
    """ChatbotData rows as one-exchange dialogues plus the embedded `*.jsonl` sample dialogues (system kept)."""
    dialogues: list[list[dict]] = []
    if csv_path.exists():
        with csv_path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                q, a = row["Q"].strip(), row["A"].strip()
                if q and a:
                    dialogues.append([{"role": "user", "content": q}, {"role": "assistant", "content": a}])
    for path in sorted(sample_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                dialogues.append(json.loads(line)["messages"])
    if not dialogues:
        raise FileNotFoundError(f"No training dialogues: expected {csv_path} or *.jsonl under {sample_dir}")
    return dialogues


def split(dialogues: list[list[dict]], eval_share: float, seed: int = 1234) -> tuple[list, list]:
    order = list(range(len(dialogues)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, int(len(order) * eval_share))
    return [dialogues[i] for i in order[n_eval:]], [dialogues[i] for i in order[:n_eval]]


def encode_all(dialogues: list[list[dict]], tokenizer, max_length: int) -> list[tuple[list[int], list[int]]]:
    """(ids, roles) per dialogue with the package's encoder (ids = the chat template); longer ones are cut."""
    from chathuman_hf.tokens.features import encode_dialogues

    out = []
    for start in range(0, len(dialogues), 512):
        for rec in encode_dialogues(dialogues[start : start + 512], tokenizer):
            out.append((rec["input_ids"][:max_length], rec["roles"][:max_length]))
    return out


@torch.no_grad()
def assistant_perplexity(model, examples, pad_id: int, *, batch_size: int = 32, device: str = "cpu") -> float:
    """exp(token-weighted mean NLL over assistant tokens: content + eos) of held-out examples; same for everyone."""
    from chathuman_hf.tokens.labels import LabelMode, example_labels

    was_training = model.training
    model.eval()
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    nll, count = 0.0, 0
    for start in range(0, len(order), batch_size):
        chunk = [examples[i] for i in order[start : start + batch_size]]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        labels = torch.full((len(chunk), width), -100, dtype=torch.long)
        for row, (tok, roles) in enumerate(chunk):
            ids[row, : len(tok)] = torch.tensor(tok)
            mask[row, : len(tok)] = 1
            labels[row, : len(tok)] = torch.tensor(example_labels(tok, roles, [0] * len(tok), LabelMode.ALL_SYS))
        ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float()
        shift_logits, shift_labels = logits[:, :-1], labels[:, 1:]
        nll += torch.nn.functional.cross_entropy(
            shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1), ignore_index=-100,
            reduction="sum",
        ).item()
        count += int((shift_labels != -100).sum())
    model.train(was_training)
    return math.exp(nll / max(count, 1))


def attention_context(lengths: list[int]) -> float:
    """Mean number of attended positions per token for causal attention within documents of these lengths."""
    total = sum(lengths)
    return sum(n * (n + 1) / 2 for n in lengths) / max(total, 1)
