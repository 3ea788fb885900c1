"""Train a SentencePiece (BPE or Unigram, ``▁`` word boundaries) tokenizer on dialogue text, chat-ready.

Two trainers give the same contract: ``library="tokenizers"`` (Hugging Face ``tokenizers``' own BPE/Unigram
trainers with a Metaspace pre-tokenizer, the default) and ``library="sentencepiece"`` (Google's ``sentencepiece``
trainer, converted with transformers' ``SpmConverter`` into a fast tokenizer that encodes exactly like
``SentencePieceProcessor``). Special tokens sit at fixed ids, are atomic and never split::

    0 <pad>   1 <unk>   2 </s> (bos = eos, as in KoGPT2)   3 <usr>   4 <sys>

Both have byte fallback: a character never seen in training (uppercase Latin after lowercasing, an emoji, Hanja)
becomes its UTF-8 bytes as ``<0x00>``…``<0xFF>`` tokens, so any text a user types round-trips exactly through
encode → decode instead of turning into ``<unk>``. The 256 byte tokens count within ``vocab_size``.
"""

from __future__ import annotations

import io
import json
import os
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from chathuman_hf.tokens.tokenizer import (
    ASSISTANT_TOKEN,
    DEFAULT_EOS,
    DEFAULT_PAD,
    DEFAULT_UNK,
    USER_TOKEN,
    prepare_tokenizer,
)

SPECIAL_TOKENS = [DEFAULT_PAD, DEFAULT_UNK, DEFAULT_EOS, USER_TOKEN, ASSISTANT_TOKEN]
MODEL_TYPES = ("bpe", "unigram")
LIBRARIES = ("tokenizers", "sentencepiece")
SPM_PROBE_TEXTS = 2000
BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]  # SentencePiece's byte-piece names (ByteFallback decodes them)


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
    texts_or_dataset: Iterable, *, vocab_size: int, model_type: str = "bpe", min_frequency: int = 2,
    library: str = "tokenizers",
) -> PreTrainedTokenizerFast:
    """Train a tokenizer and return it prepared (specials at fixed ids, chat template installed)."""
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type={model_type!r}: expected one of {MODEL_TYPES}")
    if library not in LIBRARIES:
        raise ValueError(f"library={library!r}: expected one of {LIBRARIES}")
    if vocab_size <= len(SPECIAL_TOKENS) + len(BYTE_TOKENS):
        raise ValueError(f"vocab_size={vocab_size} is too small: it must exceed the {len(SPECIAL_TOKENS)} special "
                         f"and {len(BYTE_TOKENS)} byte-fallback tokens ({len(SPECIAL_TOKENS) + len(BYTE_TOKENS)})")
    if library == "sentencepiece":
        tok = _train_sentencepiece(iter_texts(texts_or_dataset), vocab_size=vocab_size, model_type=model_type)
    else:
        tok = _train_tokenizers(iter_texts(texts_or_dataset), vocab_size=vocab_size - len(BYTE_TOKENS),
                                model_type=model_type, min_frequency=min_frequency)
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


def _train_tokenizers(texts: Iterator[str], *, vocab_size: int, model_type: str, min_frequency: int) -> Tokenizer:
    """Hugging Face ``tokenizers``' BPE/Unigram trainer behind a Metaspace (``▁``) pre-tokenizer."""
    if model_type == "bpe":
        tok = Tokenizer(models.BPE(unk_token=DEFAULT_UNK))
        texts, alphabet = _alphabet_within(texts, vocab_size - len(SPECIAL_TOKENS))
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS, show_progress=False,
            **({"initial_alphabet": alphabet, "limit_alphabet": len(alphabet)} if alphabet else {}),
        )
    else:
        tok = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, unk_token=DEFAULT_UNK, show_progress=False
        )
    # Every space becomes ▁ and one ▁ is prepended, then words are split before each ▁: Metaspace's own
    # prepend_scheme="always" skips the ▁ when a text already starts with a space, so " 7" decoded to "7".
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never")
    try:
        tok.train_from_iterator(texts, trainer=trainer)
    except Exception as err:  # tokenizers raises a plain Exception here
        if "not large enough to contain all chars" not in str(err):
            raise
        raise ValueError(
            f"vocab_size={vocab_size + len(BYTE_TOKENS)} leaves {vocab_size} pieces after the {len(BYTE_TOKENS)} byte "
            "tokens, fewer than the distinct characters of the training text that a Unigram model must hold: raise "
            "--vocab-size or use --model-type bpe (which leaves rare characters to byte fallback)."
        ) from err
    return _add_byte_fallback(tok)


def _alphabet_within(texts: Iterator[str], budget: int) -> tuple[list[str], list[str] | None]:
    """The texts (as a list) and, when they hold more than ``budget`` characters, the ``budget`` most frequent.

    The rarer characters are left to byte fallback so ``vocab_size`` is never exceeded. We pick them ourselves
    (count, then character order): BpeTrainer's own ``limit_alphabet`` breaks frequency ties differently in every
    process (measured: two runs, two vocabularies), which made runs that should be identical differ.
    """
    texts = list(texts)
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(text)
    counts["▁"] += counts.pop(" ", 0) + len(texts)  # the normalizer's word boundary
    if len(counts) <= budget:
        return texts, None
    return texts, [c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:budget]]


def _add_byte_fallback(tok: Tokenizer) -> Tokenizer:
    """Append the 256 ``<0xXX>`` byte tokens to a trained BPE/Unigram model and switch its byte fallback on.

    The trainers have no byte-fallback option (SentencePiece's has), so the trained model is rebuilt from its JSON
    with the byte tokens after the learned ones (learned ids do not move) and ``ByteFallback`` in the decoder.
    """
    data = json.loads(tok.to_str())
    model = data["model"]
    if model["type"] == "BPE":
        vocab = model["vocab"]
        for piece in BYTE_TOKENS:
            vocab.setdefault(piece, len(vocab))
    else:  # Unigram: byte pieces score below every learned piece, so they are used only when nothing else fits
        floor = min(score for _, score in model["vocab"]) - 10.0
        known = {piece for piece, _ in model["vocab"]}
        model["vocab"] += [[piece, floor] for piece in BYTE_TOKENS if piece not in known]
    model["byte_fallback"] = True
    out = Tokenizer.from_str(json.dumps(data))
    out.decoder = decoders.Sequence([decoders.ByteFallback(),
                                     decoders.Metaspace(replacement="▁", prepend_scheme="always")])
    return out


def _train_sentencepiece(texts: Iterator[str], *, vocab_size: int, model_type: str) -> Tokenizer:
    """Google ``sentencepiece``'s trainer (in memory), converted to a ``tokenizers`` object by ``SpmConverter``.

    Identity normalization keeps the text as cleaned (NFKC would turn ㅋ into a conjoining jamo), full character
    coverage keeps every Hangul syllable seen, and ``hard_vocab_limit=False`` lets a small corpus yield fewer pieces.
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2
    from transformers.convert_slow_tokenizer import SpmConverter

    model = io.BytesIO()
    probe: list[str] = []  # the first texts, to check the conversion against SentencePiece itself

    def keep_probe(stream: Iterator[str]) -> Iterator[str]:
        for text in stream:
            if len(probe) < SPM_PROBE_TEXTS:
                probe.append(text)
            yield text

    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=keep_probe(texts), model_writer=model, vocab_size=vocab_size, model_type=model_type,
            pad_id=0, unk_id=1, eos_id=2, bos_id=-1, pad_piece=DEFAULT_PAD, unk_piece=DEFAULT_UNK,
            eos_piece=DEFAULT_EOS, user_defined_symbols=[USER_TOKEN, ASSISTANT_TOKEN], character_coverage=1.0,
            normalization_rule_name="identity", hard_vocab_limit=False, minloglevel=2, byte_fallback=True,
            remove_extra_whitespaces=False,
            num_threads=os.cpu_count() or 1,
        )
    except RuntimeError as err:
        needed = re.search(r"smaller than required_chars\. \d+ vs (\d+)", str(err))
        if needed:
            raise ValueError(
                f"vocab_size={vocab_size} is below the {needed.group(1)} distinct characters and special tokens of "
                f"the training text: sentencepiece needs --vocab-size {needed.group(1)} or more (or use "
                f"--library tokenizers, whose BPE leaves rare characters to byte fallback)."
            ) from err
        raise ValueError(f"sentencepiece could not train on this text: {err}") from err
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model.getvalue())
    if model_type == "unigram":
        vocab = [(piece.piece, piece.score) for piece in proto.pieces]
    else:
        vocab = {piece.piece: i for i, piece in enumerate(proto.pieces)}
    tok = SpmConverter.build_tokenizer_from_spm_proto(proto, vocab)
    reference = spm.SentencePieceProcessor(model_proto=model.getvalue())
    differ = [t for t, enc in zip(probe, tok.encode_batch(probe, add_special_tokens=False), strict=True)
              if enc.ids != reference.encode(t)]
    if differ:
        warnings.warn(
            f"The converted tokenizer encodes {len(differ)} of {len(probe)} checked texts differently from "
            f"SentencePiece itself (first: {differ[0][:60]!r}); upgrade transformers (its SpmConverter) for an exact "
            "conversion.",
            stacklevel=3,
        )
    return tok
