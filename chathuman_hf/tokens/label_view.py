"""What trains, token by token (``recipes/inspect_labels.py``): tokenized examples with the target tokens marked.

Examples go through the training recipe's own tokenization (template, truncation, drops, the extra rows of a template
that rewrites history) and ``labels.target_mask``, so what is shown is what ``train.py`` trains on: one view per row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from chathuman_hf.core.cli import require_model
from chathuman_hf.tokens.features import tokenize_dialogues
from chathuman_hf.tokens.labels import LabelMode, target_mask
from chathuman_hf.tokens.template_choice import apply_template_choice, saved_template_date
from chathuman_hf.tokens.tokenizer import load_tokenizer

GREEN, RESET = "\033[1;32m", "\033[0m"
WORD_START = "\u2581"  # ▁: Metaspace's and SentencePiece's mark of a token that starts a word


def load_inspect_tokenizer(model: str, chat_template: str = "auto") -> PreTrainedTokenizerBase:
    """The tokenizer of a base model (Hub id or dir) or an output directory, with ``--chat_template`` applied (and
    the date an output directory was trained with, for templates calling ``strftime_now``)."""
    date = saved_template_date(model) if Path(model).is_dir() else None
    return apply_template_choice(load_tokenizer(require_model(model, "--model")), chat_template, template_date=date)


def label_views(
    dialogues: Any, tokenizer: PreTrainedTokenizerBase, label_mode: str = "input", *, limit: int | None = None,
    max_length: int = 256, max_turns: int | None = None, expand_turns: bool = False, report: Any = None,
) -> list[dict[str, list]]:
    """Per example ``{"ids", "tokens", "trained"}``; ``trained[t]`` is True when token ``t`` is a target
    (unshifted). Tokenization drops are counted on ``report`` as in training.
    """
    mode = LabelMode.parse(label_mode)
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if limit is not None and limit < len(dialogues):
        dialogues = dialogues.select(range(limit)) if hasattr(dialogues, "select") else dialogues[:limit]
    examples = tokenize_dialogues(dialogues, tokenizer, max_length=max_length, max_turns=max_turns,
                                  expand_turns=expand_turns, label_mode=mode, report=report)
    views = []
    for row in examples:
        ids = list(row["input_ids"])
        views.append({"ids": ids, "tokens": tokenizer.convert_ids_to_tokens(ids),
                      "trained": target_mask(row["roles"], row["last_turn"], mode)})
    return views


def _pieces(ids: list[int], trained: list[bool], tokenizer: PreTrainedTokenizerBase) -> list[tuple[str, bool]]:
    """Decoded tokens; byte-level pieces of one character are joined until they decode (up to 4 tokens). A
    Metaspace/SentencePiece token that starts a word (``▁먹``) keeps its space, which decoding it alone drops."""
    out: list[tuple[str, bool]] = []
    buffer: list[int] = []
    tokens = tokenizer.convert_ids_to_tokens(ids)
    for i, (tid, flag) in enumerate(zip(ids, trained, strict=True)):
        buffer.append(tid)
        text = tokenizer.decode(buffer, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        next_same = i + 1 < len(ids) and trained[i + 1] == flag
        if "\ufffd" in text and len(buffer) < 4 and next_same:
            continue
        first = tokens[i + 1 - len(buffer)]
        if isinstance(first, str) and first.startswith(WORD_START) and not text.startswith(" "):
            text = " " + text
        out.append((text, flag))
        buffer = []
    return out


def format_view(view: dict[str, list], tokenizer: PreTrainedTokenizerBase, *, color: bool) -> str:
    """One example as text: trained tokens in green (``color``) or in [brackets], then the trained count."""
    pieces = []
    for text, trained in _pieces(view["ids"], view["trained"], tokenizer):
        text = text.replace("\n", "\\n") or "·"
        pieces.append((f"{GREEN}{text}{RESET}" if color else f"[{text}]") if trained else text)
    count = sum(view["trained"])
    return f"{''.join(pieces)}\n  trained tokens: {count} of {len(view['ids'])}"
