"""Test helpers: a tiny, fully offline chat model directory (tokenizer trained on the embedded sample)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from chathuman_hf.data.files import SAMPLE_DIR

FALLBACK_DIALOGUES = [
    ["안녕", "안녕! 오늘 하루 어땠어?"],
    ["오늘 너무 피곤하다", "푹 쉬어. 따뜻한 차 한 잔 어때?"],
    ["점심 뭐 먹을까", "김치찌개 어때? 날이 추우니까 따끈한 게 좋겠다."],
    ["주말에 뭐 하지", "날씨 좋으면 공원 산책 가자."],
    ["영화 추천해 줘", "요즘 재밌는 코미디 영화 한 편 보는 거 어때?"],
    ["비 온다", "우산 꼭 챙겨. 감기 조심하고."],
    ["배고파", "간단하게 라면이라도 끓여 먹자."],
    ["잠이 안 와", "따뜻한 우유 마시고 눈 감고 있어 봐."],
    ["시험 망했어", "괜찮아. 다음에 더 잘하면 돼."],
    ["고마워", "천만에! 언제든지 말해."],
]


def sample_texts() -> list[str]:
    """Text of the embedded sample dialogues (falls back to a few built-in lines when the sample is absent)."""
    try:
        from chathuman_hf.data import load_dialogues

        texts = [m["content"] for row in load_dialogues() for m in row["messages"] if m["content"]]
        if texts:
            return texts
    except Exception as exc:  # the data loader is optional here: fall back to the raw chat.jsonl
        warnings.warn(f"load_dialogues() failed ({exc}); training the tiny tokenizer on chat.jsonl", stacklevel=2)
    texts = []
    for path in sorted(SAMPLE_DIR.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.extend(m["content"] for m in json.loads(line).get("messages", []) if m.get("content"))
    if not texts:
        texts = [t for pair in FALLBACK_DIALOGUES for t in pair]
    return texts


def sample_dialogues() -> list[list[dict[str, str]]]:
    """Message lists from the embedded ``chat.jsonl`` (or the built-in fallback)."""
    path = SAMPLE_DIR / "chat.jsonl"
    if path.exists():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if rows:
            return [r["messages"] for r in rows]
    return [[{"role": "user", "content": u}, {"role": "assistant", "content": a}] for u, a in FALLBACK_DIALOGUES]


def make_tiny_model_dir(path: str | Path, *, vocab_size: int = 2000, seed: int = 0, **config_overrides: Any) -> Path:
    """Save a tiny GPT-2 chat model (2 layers, 64 dims, 256 positions) with a locally trained tokenizer.

    The directory holds the model (safetensors), the tokenizer with the chat template, a generation config from
    ``chat_generation_config`` and ``chat_window.json``; it loads with ``pipeline("text-generation", model=DIR)``.
    """
    from chathuman_hf.core.window import ChatWindow
    from chathuman_hf.models.build import build_model
    from chathuman_hf.tokens.tokenizer import chat_generation_config
    from chathuman_hf.tokens.tokenizer_training import train_tokenizer

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(sample_texts(), vocab_size=vocab_size, min_frequency=1)
    config = {"n_layer": 2, "n_embd": 64, "n_head": 2, "n_positions": 256}
    config.update(config_overrides)
    tokenizer.model_max_length = int(config["n_positions"])
    torch.manual_seed(seed)
    model = build_model(model_type="gpt2", config_overrides=config, tokenizer=tokenizer)
    model.generation_config = chat_generation_config(tokenizer)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    ChatWindow(max_turns=3, max_length=int(config["n_positions"])).save_pretrained(path)
    return path


# A hand-checked 3-turn dialogue and its ids under ``make_word_tokenizer(THREE_TURN_WORDS)``:
# </s> <usr> 안녕 <sys> 안녕 반가워 </s> <usr> 밥 먹었어 <sys> 응 먹었어 </s> <usr> 뭐 먹었어 <sys> 김밥 먹었어 </s>
THREE_TURN_WORDS = ["안녕", "반가워", "밥", "먹었어", "응", "뭐", "김밥"]
THREE_TURNS = [
    {"role": "user", "content": "안녕"},
    {"role": "assistant", "content": "안녕 반가워"},
    {"role": "user", "content": "밥 먹었어"},
    {"role": "assistant", "content": "응 먹었어"},
    {"role": "user", "content": "뭐 먹었어"},
    {"role": "assistant", "content": "김밥 먹었어"},
]
THREE_TURN_IDS = [2, 3, 5, 4, 5, 6, 2, 3, 7, 8, 4, 9, 8, 2, 3, 10, 8, 4, 11, 8, 2]


def make_word_tokenizer(words: list[str], *, kogpt2_like: bool = False, prepare: bool = True) -> Any:
    """A whitespace word-level fast tokenizer with predictable ids (for hand-checked label tests).

    Ids: ``<pad>`` 0, ``<unk>`` 1, ``</s>`` 2, ``<usr>`` 3, ``<sys>`` 4, then ``words`` in order. With
    ``kogpt2_like`` the vocabulary also holds ``<mask>`` and ``<unused0..9>`` and no special token is declared,
    like loading KoGPT2 without passing its specials.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from chathuman_hf.tokens.tokenizer import prepare_tokenizer

    base = ["<pad>", "<unk>", "</s>", "<usr>", "<sys>"]
    extra = ["<mask>"] + [f"<unused{i}>" for i in range(10)] if kogpt2_like else []
    vocab = {tok: i for i, tok in enumerate(base + extra + list(words))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if kogpt2_like:
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False)
    else:
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>", bos_token="</s>",
            clean_up_tokenization_spaces=False,
        )
    return prepare_tokenizer(fast) if prepare else fast


KOGPT2_SPECIALS = ["<s>", "</s>", "<usr>", "<pad>", "<sys>", "<unk>", "<mask>", "<d>", "</d>"] + [
    f"<unused{i}>" for i in range(10)
]


def make_kogpt2_like_dir(path: str | Path, *, vocab_size: int = 1000, **config_overrides: Any) -> Path:
    """A local stand-in for ``skt/kogpt2-base-v2``: a SentencePiece-style BPE ``tokenizer.json`` (KoGPT2's special
    tokens and ``<unused*>`` in the vocabulary, none declared, no tokenizer_config) and a tiny ``gpt2`` model."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=KOGPT2_SPECIALS, show_progress=False)
    tok.train_from_iterator(sample_texts(), trainer=trainer)
    tok.save(str(path / "tokenizer.json"))
    config = {"n_layer": 1, "n_embd": 32, "n_head": 2, "n_positions": 128, "vocab_size": tok.get_vocab_size()}
    config.update(config_overrides)
    GPT2LMHeadModel(GPT2Config(**config)).save_pretrained(path)
    return path


def make_tiny_llama_dir(path: str | Path, *, role_tokens: bool = True, vocab_size: int = 600, seed: int = 0,
                        tie_word_embeddings: bool = False) -> Path:
    """A tiny pretrained-style Llama base (2 layers x 64, untied head) with a BPE tokenizer trained on the sample.

    ``role_tokens=True``: ``<usr>``/``<sys>`` are in the base vocabulary (preparing the tokenizer adds nothing, like a
    base used with its own template); ``False``: the vocabulary has only ``<pad>``, ``<unk>``, ``</s>``, so our
    template adds two tokens. With role tokens the base tokenizer also carries the chat template, as a base with its
    own template does.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    from chathuman_hf.tokens.tokenizer import CHAT_TEMPLATE

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    specials = ["<pad>", "<unk>", "</s>"] + (["<usr>", "<sys>"] if role_tokens else [])
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(sample_texts(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>", bos_token="</s>",
        extra_special_tokens=specials[3:], clean_up_tokenization_spaces=False, model_max_length=256,
    )
    if role_tokens:
        tokenizer.chat_template = CHAT_TEMPLATE
    config = AutoConfig.for_model(
        "llama", vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256, pad_token_id=0, bos_token_id=2,
        eos_token_id=2, tie_word_embeddings=tie_word_embeddings,
    )
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
