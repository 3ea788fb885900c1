"""Train a SentencePiece-style (Metaspace ``▁``) BPE or Unigram tokenizer on dialogue text, chat-ready.

Special tokens sit at fixed ids, are atomic and never split::

    0 <pad>   1 <unk>   2 </s> (bos = eos, as in KoGPT2)   3 <usr>   4 <sys>

Characters never seen in training become ``<unk>`` (no byte fallback), so train on the cleaned text you chat in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from chathuman_hf.tokenization import (
    ASSISTANT_TOKEN,
    DEFAULT_EOS,
    DEFAULT_PAD,
    DEFAULT_UNK,
    USER_TOKEN,
    prepare_tokenizer,
)

SPECIAL_TOKENS = [DEFAULT_PAD, DEFAULT_UNK, DEFAULT_EOS, USER_TOKEN, ASSISTANT_TOKEN]
MODEL_TYPES = ("bpe", "unigram")


def iter_texts(texts_or_dataset: Iterable, batch_size: int = 1000) -> Iterator[str]:
    """Yield training strings from strings, message lists, or a ``datasets.Dataset`` (``messages`` or ``text``)."""
    column_names = getattr(texts_or_dataset, "column_names", None)
    if column_names is not None:
        if "messages" in column_names:
            for batch in texts_or_dataset.iter(batch_size=batch_size):
                for messages in batch["messages"]:
                    for m in messages:
                        if m["content"]:
                            yield m["content"]
            return
        if "text" in column_names:
            for batch in texts_or_dataset.iter(batch_size=batch_size):
                yield from (t for t in batch["text"] if t)
            return
        raise ValueError(f"Dataset columns {column_names}: expected a 'messages' or a 'text' column.")
    for item in texts_or_dataset:
        if isinstance(item, str):
            if item:
                yield item
        elif isinstance(item, dict) and "messages" in item:
            yield from (m["content"] for m in item["messages"] if m["content"])
        elif isinstance(item, list):
            yield from (m["content"] for m in item if m.get("content"))
        else:
            raise TypeError(f"Cannot read training text from {type(item).__name__}: expected str or messages.")


def train_tokenizer(
    texts_or_dataset: Iterable, *, vocab_size: int, model_type: str = "bpe", min_frequency: int = 2
) -> PreTrainedTokenizerFast:
    """Train a tokenizer and return it prepared (specials at fixed ids, chat template installed)."""
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type={model_type!r}: expected one of {MODEL_TYPES}")
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size={vocab_size} is too small: it must exceed {len(SPECIAL_TOKENS)} special tokens")
    if model_type == "bpe":
        tok = Tokenizer(models.BPE(unk_token=DEFAULT_UNK))
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS, show_progress=False
        )
    else:
        tok = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, unk_token=DEFAULT_UNK, show_progress=False
        )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.train_from_iterator(iter_texts(texts_or_dataset), trainer=trainer)
    for i, special in enumerate(SPECIAL_TOKENS):
        if tok.token_to_id(special) != i:
            raise RuntimeError(f"Special token {special} got id {tok.token_to_id(special)}, expected {i}")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=DEFAULT_EOS,
        eos_token=DEFAULT_EOS,
        pad_token=DEFAULT_PAD,
        unk_token=DEFAULT_UNK,
        clean_up_tokenization_spaces=False,
    )
    return prepare_tokenizer(fast)
