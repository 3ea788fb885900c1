"""Dialogues → token features: ``input_ids`` plus per-token ``roles`` and ``last_turn`` (one ``datasets.map``).

Every label mode is derived later by the collator from these columns, so the data is tokenized once.
Ids are exactly ``tokenizer.apply_chat_template(messages)``: the template is rendered to text and tokenized with
offsets, and each token gets the role of the character span it starts in.

Each assistant turn trains in the context the model sees at inference. With a template that renders every turn as
at inference (prefix-consistent: ours, Llama, Gemma, ChatML, EXAONE) a dialogue is one row. With a template that
rewrites earlier turns (Qwen3 drops past think blocks) a dialogue with n replies becomes n rows, row k ending at reply
k; in row k everything before its newest exchange is ``HISTORY`` (trains in no mode), so each reply and each user turn
trains once. Rows added only for that carry no ``last_turn`` (``-100`` still trains the last reply only, and they are
not built for it); their number and tokens are logged and kept in ``report.json`` (``inference_context_rows``).
Which rows a dialogue becomes is decided in ``reply_rows``.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from chathuman_hf.core.window import split_exchanges
from chathuman_hf.tokens.encoding import _fast_plan, encode_dialogues
from chathuman_hf.tokens.exact_encoding import _encode_exact
from chathuman_hf.tokens.labels import ASSISTANT, FRAME, SYSTEM, USER, LabelMode, label_token_count
from chathuman_hf.tokens.packing import pack_dataset
from chathuman_hf.tokens.rendering import TemplateError
from chathuman_hf.tokens.reply_rows import as_context_row, examples_for
from chathuman_hf.tokens.tool_encoding import check_tool_template, split_tool_dialogues

FEATURE_COLUMNS = ["input_ids", "roles", "last_turn", "length"]
__all__ = ["tokenize_dialogues", "pack_dataset", "encode_dialogues", "label_token_count", "FRAME", "USER",
           "ASSISTANT", "SYSTEM", "TemplateError", "_encode_exact", "_fast_plan"]

DROP_TOO_LONG = "too_long_single_exchange"
DROP_EMPTY_TARGET = "empty_target"
TRUNCATED_EXCHANGES = "oldest_exchanges_truncated"
TRUNCATED_USER_TURN = "long_user_turn_cut_from_the_left"

_BOOKKEEPING = ["drop_reason", "truncated_exchanges", "user_turn_cut", "context_row"]
CONTEXT_ROWS = "inference_context_rows"
# Passed to datasets.map so that its cache fingerprint changes with the row format (datasets fingerprints a module
# function by name, so map results cached by code that built other columns would otherwise be reused).
ROW_FORMAT = "inference-context-rows-1"


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
    row_format: str = ROW_FORMAT,
) -> dict[str, list]:
    memo: dict = {}
    for i in split_tool_dialogues(batch["messages"]):  # the first record with tool data names the refusal
        where = f"{batch['source'][i]} record {batch['dialogue_id'][i]}" if "dialogue_id" in batch else "the data"
        check_tool_template(tokenizer, where)
        break
    rows = [row for msgs in batch["messages"] for row in examples_for(
        msgs, max_turns=max_turns, expand_turns=expand_turns, tokenizer=tokenizer, label_mode=label_mode, memo=memo)]
    examples = [messages for messages, _, _ in rows]
    records = encode_dialogues(examples, tokenizer) if examples else []
    out: dict[str, list] = {c: [] for c in [*FEATURE_COLUMNS, *_BOOKKEEPING]}
    for (messages, asked, history), record in zip(rows, records, strict=True):
        record, dropped, cut = _fit(messages, record, tokenizer, max_length)
        reason = ""
        if record is None:
            reason = DROP_TOO_LONG
            record = {"input_ids": [], "roles": [], "last_turn": []}
        else:
            record = as_context_row(record, messages, asked, history)
        if (record["input_ids"] and label_mode is not None
                and label_token_count(record["roles"], record["last_turn"], label_mode) == 0):
            reason = DROP_EMPTY_TARGET
        out["input_ids"].append(record["input_ids"])
        out["roles"].append(record["roles"])
        out["last_turn"].append(record["last_turn"])
        out["length"].append(len(record["input_ids"]))
        out["drop_reason"].append(reason)
        out["truncated_exchanges"].append(dropped)
        out["user_turn_cut"].append(cut)
        out["context_row"].append(int(not asked))
    return out


def _note_context_rows(mapped: Dataset, report: Any) -> None:
    """Log and record (``report.json``) the rows and tokens a history-rewriting template adds."""
    extra = mapped.data.column("context_row").to_pylist()
    if not any(extra):
        return
    kept = [not r for r in mapped.data.column("drop_reason").to_pylist()]
    lengths = mapped.data.column("length").to_pylist()
    rows = sum(e and k for e, k in zip(extra, kept, strict=True))
    tokens = sum(n for n, e, k in zip(lengths, extra, kept, strict=True) if e and k)
    total = sum(n for n, k in zip(lengths, kept, strict=True) if k)
    info = {"rows_added": rows, "tokens_added": tokens, "token_share_added": round(tokens / max(total, 1), 4)}
    print(f"The chat template rewrites earlier turns: every reply gets its own row in its inference context "
          f"({rows} rows, {tokens} tokens added; {info['token_share_added']:.1%} of the tokens).", file=sys.stderr,
          flush=True)  # a note: stdout stays data (inspect_labels.py --json)
    target = getattr(report, "report", report)
    if target is not None and isinstance(getattr(target, "stats", None), dict):
        target.stats[getattr(report, "prefix", "") + CONTEXT_ROWS] = info


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
            "row_format": ROW_FORMAT,
        },
        desc="Tokenizing dialogues",
    )
    reasons = Counter(r for r in mapped.data.column("drop_reason").to_pylist() if r)
    _note_context_rows(mapped, report)
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
