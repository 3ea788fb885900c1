"""Preference rows → token ids the way the model sees them at inference (DPO/ORPO pairs, KTO ratings).

The prompt is ``apply_chat_template(prompt, add_generation_prompt=True)`` of the model's own template; each reply
(chosen, rejected, or a rated completion) is what the template renders for it when it is the newest message, from the
end of the generation prompt through its end-of-turn text (Qwen3's empty think block included), read off the same
per-token role marks as SFT (``encoding.encode_dialogues``: ``last_turn``). TRL instead tokenizes the prompt and
prompt+completion separately and cuts at their common prefix, which drops prompt tokens for templates that render a
prompt differently once a reply follows (trl#6105). A row whose prompt alone reaches ``max_length`` is dropped and
counted (``prompt_too_long``), never cut; longer completions are cut at ``max_length`` by the trainer's collator.
"""

from __future__ import annotations

from typing import Any

from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from chathuman_hf.tokens.encoding import encode_dialogues
from chathuman_hf.tokens.template_inputs import render_ids

DROP_PROMPT_TOO_LONG = "prompt_too_long"
PAIR_COLUMNS = ["prompt_ids", "chosen_ids", "rejected_ids"]
RATING_COLUMNS = ["prompt_ids", "completion_ids", "label"]


def reply_ids(prompt: list[dict], replies: list[list[dict]], tokenizer: PreTrainedTokenizerBase) -> list[list[int]]:
    """Each reply's ids as the template renders it after ``prompt`` when newest, its end-of-turn text included."""
    records = encode_dialogues([list(prompt) + list(reply) for reply in replies], tokenizer)
    out = []
    for record in records:
        marked = [i for i, flag in enumerate(record["last_turn"]) if flag]
        out.append(record["input_ids"][marked[0]: marked[-1] + 1] if marked else [])
    return out


def prompt_ids(prompt: list[dict], tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The generation prompt's ids: ``apply_chat_template(prompt, add_generation_prompt=True)``."""
    return render_ids(tokenizer, list(prompt), gen=True)


def _encode_pairs(batch: dict[str, list], tokenizer: PreTrainedTokenizerBase, max_length: int) -> dict[str, list]:
    out: dict[str, list] = {"prompt_ids": [], "chosen_ids": [], "rejected_ids": [], "drop": []}
    for prompt, chosen, rejected in zip(batch["prompt"], batch["chosen"], batch["rejected"], strict=True):
        ids = prompt_ids(prompt, tokenizer)
        too_long = len(ids) >= max_length
        chosen_ids, rejected_ids = ([], []) if too_long else reply_ids(prompt, [chosen, rejected], tokenizer)
        out["prompt_ids"].append(ids)
        out["chosen_ids"].append(chosen_ids)
        out["rejected_ids"].append(rejected_ids)
        out["drop"].append(DROP_PROMPT_TOO_LONG if too_long else "")
    return out


def _encode_ratings(batch: dict[str, list], tokenizer: PreTrainedTokenizerBase, max_length: int) -> dict[str, list]:
    out: dict[str, list] = {"prompt_ids": [], "completion_ids": [], "drop": []}
    for prompt, completion in zip(batch["prompt"], batch["completion"], strict=True):
        ids = prompt_ids(prompt, tokenizer)
        too_long = len(ids) >= max_length
        out["prompt_ids"].append(ids)
        out["completion_ids"].append([] if too_long else reply_ids(prompt, [completion], tokenizer)[0])
        out["drop"].append(DROP_PROMPT_TOO_LONG if too_long else "")
    return out


def _keep(encoded: Dataset, columns: list[str], report: Any, prefix: str) -> Dataset:
    drops = [d for d in encoded["drop"] if d]
    if report is not None:
        for reason in sorted(set(drops)):
            report.drop(f"{prefix}{reason}", drops.count(reason))
    if drops:
        encoded = encoded.filter(lambda d: not d, input_columns=["drop"])
    return encoded.select_columns(columns)


def tokenize_pairs(
    pairs: Dataset, tokenizer: PreTrainedTokenizerBase, *, max_length: int, report: Any = None, prefix: str = "",
    num_proc: int | None = None,
) -> Dataset:
    """``prompt``/``chosen``/``rejected`` rows → ``prompt_ids``/``chosen_ids``/``rejected_ids`` (drops counted in
    ``report`` under ``prefix``)."""
    encoded = pairs.map(_encode_pairs, batched=True, batch_size=64, remove_columns=pairs.column_names,
                        fn_kwargs={"tokenizer": tokenizer, "max_length": max_length}, num_proc=num_proc,
                        desc="Tokenizing preference pairs")
    return _keep(encoded, PAIR_COLUMNS, report, prefix)


def tokenize_ratings(
    ratings: Dataset, tokenizer: PreTrainedTokenizerBase, *, max_length: int, report: Any = None, prefix: str = "",
    num_proc: int | None = None,
) -> Dataset:
    """``prompt``/``completion``/``label`` rows → ``prompt_ids``/``completion_ids``/``label``."""
    labels = [bool(x) for x in ratings["label"]]
    encoded = ratings.map(_encode_ratings, batched=True, batch_size=64,
                          remove_columns=[c for c in ratings.column_names if c != "label"],
                          fn_kwargs={"tokenizer": tokenizer, "max_length": max_length}, num_proc=num_proc,
                          desc="Tokenizing rated replies")
    if "label" not in encoded.column_names:
        encoded = encoded.add_column("label", labels)
    return _keep(encoded, RATING_COLUMNS, report, prefix)


def unpair(pairs: Dataset) -> Dataset:
    """Pairs → ratings (chosen 👍, rejected 👎), as TRL's ``unpair_preference_dataset`` does, for KTO on pair data."""
    rows = {"prompt": [], "completion": [], "label": []}
    for prompt, chosen, rejected in zip(pairs["prompt"], pairs["chosen"], pairs["rejected"], strict=True):
        rows["prompt"] += [prompt, prompt]
        rows["completion"] += [chosen, rejected]
        rows["label"] += [True, False]
    return Dataset.from_dict(rows)


def preference_views(
    rows: Dataset, tokenizer: PreTrainedTokenizerBase, *, limit: int | None = None, max_length: int = 256,
    report: Any = None,
) -> list[dict[str, Any]]:
    """What a preference stage trains on, per row (``recipes/inspect_labels.py --stage dpo``): the ids and decoded
    text of the prompt and of each reply (chosen / rejected, or the rated completion with its label)."""
    if limit is not None and limit < len(rows):
        rows = rows.select(range(limit))
    paired = "chosen" in rows.column_names
    encoded = (tokenize_pairs if paired else tokenize_ratings)(rows, tokenizer, max_length=max_length, report=report)
    parts = ("prompt", "chosen", "rejected") if paired else ("prompt", "completion")
    views = []
    for row in encoded:
        view: dict[str, Any] = {}
        for part in parts:
            ids = list(row[f"{part}_ids"])
            view[f"{part}_ids"] = ids
            view[part] = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        if not paired:
            view["label"] = bool(row["label"])
        views.append(view)
    return views


def format_preference_view(view: dict[str, Any]) -> str:
    """One row as text: each span on its own line with its token count (the replies are what trains)."""
    lines = []
    for part in ("prompt", "chosen", "rejected", "completion"):
        if part in view:
            tag = f"{part} ({'👍' if view['label'] else '👎'})" if part == "completion" else part
            text = view[part].replace("\n", "\\n")
            lines.append(f"  {tag:<10} [{text}]  ({len(view[f'{part}_ids'])} tokens)")
    return "\n".join(lines)
