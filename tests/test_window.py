"""ChatWindow persistence and history trimming (oldest exchanges go first)."""

from __future__ import annotations

import json

import pytest

from chathuman_hf.core.window import WINDOW_FILE, ChatWindow, trim_history
from tests.helpers.tiny_models import make_word_tokenizer

HISTORY = [
    {"role": "system", "content": "친절"},
    {"role": "user", "content": "하나"},
    {"role": "assistant", "content": "둘"},
    {"role": "user", "content": "셋"},
    {"role": "assistant", "content": "넷"},
    {"role": "user", "content": "다섯"},
]


@pytest.fixture(scope="module")
def tok():
    return make_word_tokenizer(["친절", "하나", "둘", "셋", "넷", "다섯"])


def test_window_round_trip(tmp_path):
    path = ChatWindow(max_turns=2, max_length=128).save_pretrained(tmp_path)
    assert path.name == WINDOW_FILE
    assert json.loads(path.read_text()) == {"max_turns": 2, "max_length": 128}
    assert ChatWindow.from_pretrained(tmp_path) == ChatWindow(max_turns=2, max_length=128)


def test_window_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="chat_window.json not found"):
        ChatWindow.from_pretrained(tmp_path)
    (tmp_path / WINDOW_FILE).write_text('{"max_turns": 1, "max_len": 3}')
    with pytest.raises(ValueError, match=r"unknown keys \['max_len'\]"):
        ChatWindow.from_pretrained(tmp_path)


def test_trim_by_turns_keeps_system_and_newest(tok):
    assert trim_history(HISTORY, tok, max_turns=2, max_prompt_tokens=None) == [HISTORY[0], *HISTORY[3:]]
    assert trim_history(HISTORY, tok, max_turns=1, max_prompt_tokens=None) == [HISTORY[0], HISTORY[5]]
    assert trim_history(HISTORY, tok, max_turns=None, max_prompt_tokens=None) == HISTORY


def test_trim_by_tokens(tok):
    # full prompt: </s> 친절 <usr> 하나 <sys> 둘 </s> <usr> 셋 <sys> 넷 </s> <usr> 다섯 <sys> = 15 tokens
    assert trim_history(HISTORY, tok, max_turns=None, max_prompt_tokens=15) == HISTORY
    assert trim_history(HISTORY, tok, max_turns=None, max_prompt_tokens=14) == [HISTORY[0], *HISTORY[3:]]
    assert trim_history(HISTORY, tok, max_turns=None, max_prompt_tokens=9) == [HISTORY[0], HISTORY[5]]
    # the newest exchange stays even when it alone is too long
    assert trim_history(HISTORY, tok, max_turns=None, max_prompt_tokens=1) == [HISTORY[0], HISTORY[5]]


def test_fit_prompt_trims_history_then_keeps_bos_and_the_newest_tokens():
    """One rule for chat prompts and the training-time health replies."""
    from chathuman_hf.core.window import fit_prompt
    from tests.helpers.tiny_models import THREE_TURN_WORDS, THREE_TURNS

    words = make_word_tokenizer(THREE_TURN_WORDS)
    # </s> <usr> 안녕 <sys> 안녕 반가워 </s> <usr> 밥 먹었어 <sys> 응 먹었어 </s> <usr> 뭐 먹었어 <sys>
    asking = THREE_TURNS[:5]
    assert fit_prompt(asking, words, max_turns=None, max_prompt_tokens=None) == (
        [2, 3, 5, 4, 5, 6, 2, 3, 7, 8, 4, 9, 8, 2, 3, 10, 8, 4], 18)
    assert fit_prompt(asking, words, max_turns=2, max_prompt_tokens=None) == (
        [2, 3, 7, 8, 4, 9, 8, 2, 3, 10, 8, 4], 12)
    assert fit_prompt(asking, words, max_turns=None, max_prompt_tokens=6) == ([2, 3, 10, 8, 4], 5)
    assert fit_prompt(asking, words, max_turns=None, max_prompt_tokens=4) == ([2, 10, 8, 4], 5)
