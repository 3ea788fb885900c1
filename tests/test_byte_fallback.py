"""Any text a user can type round-trips through the trained tokenizers (byte fallback), and streaming never shows a
half-decoded character."""

from __future__ import annotations

import random

import pytest

from chathuman_hf.tokenizer_training import LIBRARIES, MODEL_TYPES, train_tokenizer

TRAINERS = [(library, model_type) for library in LIBRARIES for model_type in MODEL_TYPES]
EMOJI = ["😀", "🎉", "👍", "🙏", "🔥", "❤️", "🇰🇷", "👨‍👩‍👧"]


def random_texts(count: int, seed: int = 0) -> list[str]:
    """Strings of 1-16 characters mixing Hangul syllables, uppercase Latin, digits, emoji, Hanja and spaces."""
    rng = random.Random(seed)
    pools = [lambda: chr(rng.randint(0xAC00, 0xD7A3)), lambda: chr(rng.randint(ord("A"), ord("Z"))),
             lambda: chr(rng.randint(ord("0"), ord("9"))), lambda: rng.choice(EMOJI),
             lambda: chr(rng.randint(0x4E00, 0x9FFF)), lambda: " "]
    return ["".join(rng.choice(pools)() for _ in range(rng.randint(1, 16))) for _ in range(count)]


@pytest.fixture(scope="module")
def lowercased_sample():
    """Training text as the cleaning leaves it: lowercase, no emoji, no Hanja (the case that produced <unk>)."""
    from chathuman_hf.data import load_dialogues

    return load_dialogues()


@pytest.mark.parametrize(("library", "model_type"), TRAINERS, ids=["-".join(t) for t in TRAINERS])
def test_ten_thousand_random_strings_round_trip(lowercased_sample, library, model_type):
    tok = train_tokenizer(lowercased_sample, vocab_size=1500, model_type=model_type, library=library)
    assert len(tok) <= 1500
    texts = random_texts(10_000) + ["SD카드 샀어", "PPL이 뭐야", "SNS 끊었어", " 앞뒤 공백 ", "두  칸\n줄바꿈"]
    ids = tok(texts, add_special_tokens=False)["input_ids"]
    assert [t for t, d in zip(texts, tok.batch_decode(ids), strict=True) if t != d] == []
    assert not any(tok.unk_token_id in x for x in ids)
    assert tok.convert_ids_to_tokens(tok.encode("A", add_special_tokens=False))[-1] == "<0x41>"  # A is not learned


@pytest.mark.parametrize("cut", [False, True], ids=["whole", "cut-mid-emoji"])
def test_streaming_never_emits_a_replacement_character(tiny_model_dir, cut):
    """Force the real model to write emoji and Hanja (byte tokens, 3-4 per character) and stream it, whole or cut by
    max_new_tokens inside the last emoji."""
    from chathuman_hf.chat import ChatEngine, get_preset

    engine = ChatEngine.from_pretrained(tiny_model_dir)
    reply = "밥 😀 먹었어 漢字 좋아👍🇰🇷"
    script = engine.tokenizer.encode(reply, add_special_tokens=False) + [engine.tokenizer.eos_token_id]
    assert sum(t.startswith("<0x") for t in engine.tokenizer.convert_ids_to_tokens(script)) >= 20
    step = [0]
    limit = len(script) - 3 if cut else len(script) + 1  # cut: 🇰🇷's last byte tokens are never generated

    def follow_script(_module, _inputs, output):  # the next token is the script's, whatever the model thinks
        output[..., -1, :] = -1.0e4
        output[..., -1, script[min(step[0], len(script) - 1)]] = 1.0e4
        step[0] += 1
        return output

    handle = engine.model.lm_head.register_forward_hook(follow_script)
    try:
        stream = engine.stream([{"role": "user", "content": "안녕"}], get_preset(
            "greedy", max_new_tokens=limit, no_repeat_ngram_size=0))  # 🇰🇷 repeats the bytes F0 9F 87
        pieces = []
        while True:
            try:
                pieces.append(next(stream))
            except StopIteration as stop:
                result = stop.value
                break
    finally:
        handle.remove()
    assert len(pieces) > 1 and not any("\ufffd" in p for p in pieces), "|".join(pieces)
    assert "".join(pieces) == result.text == (reply[:-1] if cut else reply)  # cut: 🇰 done, 🇷 dropped
