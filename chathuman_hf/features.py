"""Dialogues → token features: ``input_ids`` plus per-token ``roles`` and ``last_turn`` (one ``datasets.map``).

Every label mode is derived later by the collator from these columns, so the data is tokenized once.
Ids are exactly ``tokenizer.apply_chat_template(messages)``: the template is rendered to text and tokenized with
offsets, and each token gets the role of the character span it starts in.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from chathuman_hf.encoding import _encode_exact, _fast_plan, encode_dialogues
from chathuman_hf.labels import ASSISTANT, FRAME, SYSTEM, USER, LabelMode, label_token_count
from chathuman_hf.packing import pack_dataset
from chathuman_hf.rendering import TemplateError
from chathuman_hf.window import split_exchanges

FEATURE_COLUMNS = ["input_ids", "roles", "last_turn", "length"]
__all__ = ["tokenize_dialogues", "pack_dataset", "encode_dialogues", "label_token_count", "FRAME", "USER",
           "ASSISTANT", "SYSTEM", "TemplateError", "_encode_exact", "_fast_plan"]

DROP_TOO_LONG = "too_long_single_exchange"
DROP_EMPTY_TARGET = "empty_target"
TRUNCATED_EXCHANGES = "oldest_exchanges_truncated"
TRUNCATED_USER_TURN = "long_user_turn_cut_from_the_left"

_BOOKKEEPING = ["drop_reason", "truncated_exchanges", "user_turn_cut"]


def _examples_for(messages: list[dict], *, max_turns: int | None, expand_turns: bool) -> list[list[dict]]:
    head, exchanges = split_exchanges(messages)
    ends = range(1, len(exchanges) + 1) if expand_turns else [len(exchanges)]
    examples = []
    for end in ends:
        chosen = exchanges[:end]
        if max_turns is not None and max_turns > 0:
            chosen = chosen[-max_turns:]
        examples.append(head + [m for ex in chosen for m in ex])
    return examples


def _cut_user_turn(
    head: list[dict], exchange: list[dict], tokenizer: PreTrainedTokenizerBase, max_length: int
) -> dict[str, Any] | None:
    """Keep the end of a too-long user message so that the (intact) assistant answer fits; None if it cannot."""
    if len(exchange) != 2 or exchange[0]["role"] != "user":
        return None
    user = exchange[0]["content"]
    lo, hi, best = 1, len(user) - 1, None
    while lo <= hi:  # binary search on the number of characters kept from the end
        keep = (lo + hi) // 2
        text = user[-keep:].lstrip() or user[-1:]
        record = encode_dialogues([[*head, {"role": "user", "content": text}, exchange[1]]], tokenizer)[0]
        if len(record["input_ids"]) <= max_length:
            best, lo = record, keep + 1
        else:
            hi = keep - 1
    return best


def _fit(
    messages: list[dict], record: dict[str, Any], tokenizer: PreTrainedTokenizerBase, max_length: int
) -> tuple[dict[str, Any] | None, int, int]:
    """Drop oldest whole exchanges until the example fits; a lone too-long exchange keeps the end of its user turn.

    Returns (record or None, exchanges dropped, 1 if the user turn was cut).
    """
    if len(record["input_ids"]) <= max_length:
        return record, 0, 0
    head, exchanges = split_exchanges(messages)
    dropped = 0
    while len(record["input_ids"]) > max_length:
        if len(exchanges) <= 1:
            cut = _cut_user_turn(head, exchanges[0], tokenizer, max_length) if exchanges else None
            return cut, dropped, int(cut is not None)
        # estimate how many exchanges to drop from per-message token counts, then verify by re-encoding
        per_msg = Counter(record["owner"])
        first = len(head)
        sizes = []
        for ex in exchanges:
            sizes.append(sum(per_msg.get(first + j, 0) for j in range(len(ex))))
            first += len(ex)
        sizes[0] += per_msg.get(-1, 0)  # leading frame (bos, first marker): over-estimate, never over-drop
        excess = len(record["input_ids"]) - max_length
        k, removed = 0, 0
        while k < len(exchanges) - 1 and removed < excess:
            removed += sizes[k]
            k += 1
        k = max(k, 1)
        exchanges = exchanges[k:]
        dropped += k
        messages = head + [m for ex in exchanges for m in ex]
        record = encode_dialogues([messages], tokenizer)[0]
    return record, dropped, 0


def _tokenize_batch(
    batch: dict[str, list],
    *,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    max_turns: int | None,
    expand_turns: bool,
    label_mode: str | None,
) -> dict[str, list]:
    examples = [
        ex for msgs in batch["messages"] for ex in _examples_for(msgs, max_turns=max_turns, expand_turns=expand_turns)
    ]
    records = encode_dialogues(examples, tokenizer) if examples else []
    out: dict[str, list] = {c: [] for c in [*FEATURE_COLUMNS, *_BOOKKEEPING]}
    for messages, record in zip(examples, records, strict=True):
        record, dropped, cut = _fit(messages, record, tokenizer, max_length)
        reason = ""
        if record is None:
            reason = DROP_TOO_LONG
            record = {"input_ids": [], "roles": [], "last_turn": []}
        elif label_mode is not None and label_token_count(record["roles"], record["last_turn"], label_mode) == 0:
            reason = DROP_EMPTY_TARGET
        out["input_ids"].append(record["input_ids"])
        out["roles"].append(record["roles"])
        out["last_turn"].append(record["last_turn"])
        out["length"].append(len(record["input_ids"]))
        out["drop_reason"].append(reason)
        out["truncated_exchanges"].append(dropped)
        out["user_turn_cut"].append(cut)
    return out


def tokenize_dialogues(
    dataset: Dataset | list,
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_length: int = 256,
    max_turns: int | None = None,
    expand_turns: bool = False,
    label_mode: str | None = None,
    num_proc: int | None = None,
    report: Any = None,
) -> Dataset:
    """Tokenize a ``messages`` dataset into ``input_ids``, ``roles``, ``last_turn``, ``length`` (batched, cached).

    Longer dialogues lose whole oldest exchanges (the last assistant turn and its eos stay intact); when the last
    exchange alone is too long its user message keeps only its end, and if even the answer does not fit the example
    is dropped. With ``label_mode`` set, examples with no label token under that mode are
    dropped. Every drop is counted on ``report`` (anything with ``.drop(reason, count)``).
    """
    if isinstance(dataset, list):
        dataset = Dataset.from_list([{"messages": m} if isinstance(m, list) else m for m in dataset])
    if "messages" not in dataset.column_names:
        raise ValueError(f"Dataset columns {dataset.column_names}: expected a 'messages' column (data contract).")
    if max_length < 4:
        raise ValueError(f"max_length={max_length} is too small for a chat example")
    if label_mode is not None:
        label_mode = LabelMode.parse(label_mode).value
    mapped = dataset.map(
        _tokenize_batch,
        batched=True,
        batch_size=256,
        num_proc=num_proc,
        remove_columns=dataset.column_names,
        fn_kwargs={
            "tokenizer": tokenizer,
            "max_length": max_length,
            "max_turns": max_turns,
            "expand_turns": expand_turns,
            "label_mode": label_mode,
        },
        desc="Tokenizing dialogues",
    )
    reasons = Counter(r for r in mapped.data.column("drop_reason").to_pylist() if r)
    truncated = sum(mapped.data.column("truncated_exchanges").to_pylist())
    cut = sum(mapped.data.column("user_turn_cut").to_pylist())
    if report is not None:
        for reason, count in sorted(reasons.items()):
            name = f"{reason}:{label_mode}" if reason == DROP_EMPTY_TARGET else reason
            report.drop(name, count)
        if truncated:
            report.drop(TRUNCATED_EXCHANGES, truncated)
        if cut:
            report.drop(TRUNCATED_USER_TURN, cut)
    if reasons:
        # a cheap predicate: worker processes would only add their start-up cost
        mapped = mapped.filter(lambda r: [not x for x in r], input_columns="drop_reason", batched=True,
                               desc="Dropping empty/too-long examples")
    return mapped.remove_columns(_BOOKKEEPING)
