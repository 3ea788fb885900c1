"""Train a chat-ready SentencePiece-style tokenizer on dialogue data and save it as a Hugging Face fast tokenizer.

    python recipes/train_tokenizer.py --data ../shared/data/ChatbotData.csv --vocab-size 8000 --output out/tok
    python recipes/train_tokenizer.py --vocab-size 2000 --output out/tok_sample      # embedded sample data
    python recipes/train_tokenizer.py --library sentencepiece --model-type unigram --vocab-size 8000 --output out/spm

Specials at fixed ids: 0 <pad>, 1 <unk>, 2 </s> (bos = eos), 3 <usr>, 4 <sys>. The output directory loads with
``AutoTokenizer.from_pretrained(DIR)`` offline and carries the chat template.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from chathuman_hf.core.cli import run_cli
from chathuman_hf.data import load_dialogues
from chathuman_hf.data.report import DataReport
from chathuman_hf.tokens.tokenizer_training import LIBRARIES, MODEL_TYPES, iter_texts, train_tokenizer
from chathuman_hf.training.preflight import log_vocab_fill

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="*", default=None, help="dialogue files/folders (default: embedded sample)")
    parser.add_argument("--format", default="auto", help="input format for the data loader (default: auto)")
    parser.add_argument("--vocab-size", type=int, required=True, help="target vocabulary size, specials included")
    parser.add_argument("--output", required=True, help="directory to save the tokenizer into")
    parser.add_argument("--model-type", choices=MODEL_TYPES, default="bpe", help="bpe (default) or unigram")
    parser.add_argument("--library", choices=LIBRARIES, default="tokenizers",
                        help="trainer: Hugging Face tokenizers (default) or Google sentencepiece")
    parser.add_argument("--min-frequency", type=int, default=2, help="tokenizers BPE: minimum pair frequency to merge")
    return parser.parse_args(argv)


def tokenizer_stats(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> dict:
    """Unknown-token share, tokens per message and the exact round-trip share on ``texts``."""
    enc = tokenizer(texts, add_special_tokens=False)["input_ids"]
    n_tok = sum(len(ids) for ids in enc)
    unk = sum(ids.count(tokenizer.unk_token_id) for ids in enc)
    same = sum(tokenizer.decode(ids) == text for ids, text in zip(enc, texts, strict=True))
    return {
        "messages": len(texts),
        "tokens": n_tok,
        "tokens_per_message": round(n_tok / max(len(texts), 1), 3),
        "unk_share": round(unk / max(n_tok, 1), 6),
        "round_trip_share": round(same / max(len(texts), 1), 6),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = DataReport()
    dataset = load_dialogues(args.data or None, format=args.format, report=report)
    tokenizer = train_tokenizer(dataset, vocab_size=args.vocab_size, model_type=args.model_type,
                                min_frequency=args.min_frequency, library=args.library)
    log_vocab_fill(tokenizer, args.vocab_size)  # the train recipe's message for a vocabulary the data cannot fill
    out = Path(args.output)
    tokenizer.save_pretrained(out)
    stats = {"library": args.library, "model_type": args.model_type, "vocab_size": len(tokenizer),
             "dialogues": len(dataset), **tokenizer_stats(tokenizer, list(iter_texts(dataset)))}
    (out / "tokenizer_training.json").write_text(json.dumps(stats, ensure_ascii=False, indent=2) + "\n",
                                                  encoding="utf-8")
    print(json.dumps(stats, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
