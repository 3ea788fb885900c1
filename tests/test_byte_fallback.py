"""Byte fallback in a chat: streaming never shows a half-decoded character (the round trip of any text is tested in
test_tokenizer_training.py)."""

from __future__ import annotations

import pytest


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
