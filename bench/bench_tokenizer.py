"""The one tokenizer every contender of a benchmark run shares, trained locally (no Hub) and cached on disk."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bench.common import CACHE


def _train_fallback(texts: list[str], vocab_size: int):
    """A Metaspace BPE built with `tokenizers` when the package's tokenizer trainer is not importable."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from chathuman_hf.tokens.tokenizer import prepare_tokenizer

    specials = ["<pad>", "<unk>", "</s>", "<usr>", "<sys>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="</s>", bos_token="</s>"
    )
    return prepare_tokenizer(fast)


def bench_tokenizer(texts: list[str], vocab_size: int, *, cache: Path = CACHE):
    """Train (or load the cached) tokenizer for `texts`: the package's trainer when present, else a BPE fallback."""
    from transformers import AutoTokenizer

    digest = hashlib.sha256(json.dumps([vocab_size, len(texts), texts[:200], texts[-200:]]).encode()).hexdigest()[:16]
    path = cache / f"tokenizer_{vocab_size}_{digest}"
    if (path / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(path)
    try:
        from chathuman_hf.tokens.tokenizer_training import train_tokenizer

        tok = train_tokenizer(texts, vocab_size=vocab_size)
        how = "chathuman_hf.tokens.tokenizer_training.train_tokenizer"
    except ImportError:
        tok = _train_fallback(texts, vocab_size)
        how = "bench fallback BPE"
    path.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(path)
    (path / "bench_how.txt").write_text(how + "\n")
    return AutoTokenizer.from_pretrained(path)


QWEN3_TEMPLATE = Path(__file__).resolve().parents[1] / "tests" / "chat_templates" / "qwen3.jinja"


def chatml_tokenizer(texts: list[str], vocab_size: int, *, cache: Path = CACHE, think: bool = False):
    """A byte-level BPE with ChatML markers and template, as Qwen 2.5 / A.X 4.0 ship (a foreign template); ``think``:
    Qwen3's real template (history rewritten: the newest reply gets an empty think block) and <think> tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    from tests.helpers.families import FAMILY_TEMPLATES

    digest = hashlib.sha256(json.dumps([vocab_size, len(texts), texts[:200], texts[-200:]]).encode()).hexdigest()[:16]
    path = cache / f"tokenizer_chatml{'_think' if think else ''}_{vocab_size}_{digest}"
    if not (path / "tokenizer.json").exists():
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                       extra_special_tokens=["<|im_start|>"])
        fast.chat_template = QWEN3_TEMPLATE.read_text(encoding="utf-8") if think else FAMILY_TEMPLATES["qwen2"]
        if think:
            fast.add_tokens(["<think>", "</think>"])
        path.mkdir(parents=True, exist_ok=True)
        fast.save_pretrained(path)
        how = "Qwen3's real template (ChatML + think blocks)" if think else "ChatML template"
        (path / "bench_how.txt").write_text(f"byte-level BPE (tokenizers) with {how}\n")
    return AutoTokenizer.from_pretrained(path)


def tokenizer_origin(tokenizer) -> str:
    path = Path(getattr(tokenizer, "name_or_path", "") or "")
    how = path / "bench_how.txt"
    return how.read_text().strip() if how.exists() else "?"
