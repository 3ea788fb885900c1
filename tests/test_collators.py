"""ChatCollator: exact label vectors per mode on a hand-checked 3-turn dialogue, padding, guards."""

from __future__ import annotations

import pytest
import torch

from chathuman_hf.tokens.collators import ChatCollator, LabelMode
from chathuman_hf.tokens.features import tokenize_dialogues
from tests.helpers.tiny_models import THREE_TURN_IDS, THREE_TURN_WORDS, THREE_TURNS, make_word_tokenizer

# pos:  0    1     2    3     4    5     6    7     8  9     10
#      </s> <usr> 안녕 <sys> 안녕 반가워 </s> <usr> 밥 먹었어 <sys>
# pos: 11 12     13   14    15 16     17    18  19     20
#       응 먹었어 </s> <usr> 뭐 먹었어 <sys> 김밥 먹었어 </s>
X = -100
EXPECTED = {
    # every token is a target except the first (nothing precedes it)
    "input": [X, 3, 5, 4, 5, 6, 2, 3, 7, 8, 4, 9, 8, 2, 3, 10, 8, 4, 11, 8, 2],
    # only the last assistant turn: content + its eos
    "-100": [X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, 11, 8, 2],
    # every assistant turn: content + eos; user text, markers and bos are -100
    "-100+sys": [X, X, X, X, 5, 6, 2, X, X, X, X, 9, 8, 2, X, X, X, X, 11, 8, 2],
    # pre-shifted: label[t] = token[t+1]
    "shift": [3, 5, 4, 5, 6, 2, 3, 7, 8, 4, 9, 8, 2, 3, 10, 8, 4, 11, 8, 2, X],
}


@pytest.fixture(scope="module")
def rows():
    tok = make_word_tokenizer(THREE_TURN_WORDS)
    ds = tokenize_dialogues([THREE_TURNS, THREE_TURNS[:2]], tok)
    return tok, [ds[0], ds[1]]


@pytest.mark.parametrize("mode", list(EXPECTED))
def test_exact_labels_per_mode(rows, mode):
    tok, (row, short) = rows
    assert row["input_ids"] == THREE_TURN_IDS
    batch = ChatCollator(tok.pad_token_id, mode)([row, short])
    assert batch["input_ids"][0].tolist() == THREE_TURN_IDS
    assert batch["labels"][0].tolist() == EXPECTED[mode]
    # the short row is right-padded with pad id / -100 / attention 0
    assert batch["input_ids"][1].tolist() == [2, 3, 5, 4, 5, 6, 2] + [0] * 14
    assert batch["attention_mask"][1].tolist() == [1] * 7 + [0] * 14
    assert batch["labels"][1, 7:].tolist() == [X] * 14


def test_aliases_parse_to_the_same_modes():
    assert LabelMode.parse("-100") is LabelMode.parse("last_sys") is LabelMode.LAST_SYS
    assert LabelMode.parse("-100+sys") is LabelMode.parse("ALL_SYS") is LabelMode.ALL_SYS
    assert LabelMode.parse("Input") is LabelMode.INPUT
    with pytest.raises(ValueError, match="Unknown label mode 'sys'"):
        LabelMode.parse("sys")


def test_shift_mode_also_sends_shift_labels(rows):
    tok, (row, _) = rows
    batch = ChatCollator(tok.pad_token_id, "shift")([row])
    assert torch.equal(batch["shift_labels"], batch["labels"])
    assert "shift_labels" not in ChatCollator(tok.pad_token_id, "input")([row])


def test_pad_to_multiple_of(rows):
    tok, (row, short) = rows
    batch = ChatCollator(tok.pad_token_id, "input", pad_to_multiple_of=8)([short])
    assert batch["input_ids"].shape == (1, 8)
    batch = ChatCollator(tok.pad_token_id, "input", pad_to_multiple_of=8)([row, short])
    assert batch["input_ids"].shape == (2, 24)


def test_assistant_labels_are_all_sys_labels(rows):
    tok, (row, short) = rows
    batch = ChatCollator(tok.pad_token_id, "input", with_assistant_labels=True)([row, short])
    assert batch["assistant_labels"][0].tolist() == EXPECTED["-100+sys"]
    assert batch["labels"][0].tolist() == EXPECTED["input"]


def test_batch_without_label_tokens_never_reaches_the_loss(rows):
    tok, _ = rows
    no_target = {"input_ids": [2, 3, 5], "roles": [0, 0, 1], "last_turn": [0, 0, 0]}
    with pytest.raises(ValueError, match="no label-carrying token under label mode 'last_sys'"):
        ChatCollator(tok.pad_token_id, "-100")([no_target])


def test_packed_row_gets_restarting_positions_and_no_mask(rows):
    tok, (row, short) = rows
    packed = {k: short[k] + short[k] for k in ("input_ids", "roles", "last_turn")}
    packed["seq_lengths"] = [7, 7]
    batch = ChatCollator(tok.pad_token_id, "-100")([packed, {**short, "seq_lengths": [7]}])
    # transformers' packed-sequence format: position ids restart per dialogue (each pad is its own sequence)
    assert batch["position_ids"].tolist() == [list(range(7)) * 2, list(range(7)) + [0] * 7]
    assert "attention_mask" not in batch
    assert batch["labels"][0].tolist() == [X, X, X, X, 5, 6, 2] * 2


def test_columns_removed_by_trainer_name_the_fix(rows):
    tok, (row, _) = rows
    with pytest.raises(ValueError, match=r"missing \['roles', 'last_turn'\].*remove_unused_columns=False"):
        ChatCollator(tok.pad_token_id, "input")([{"input_ids": row["input_ids"]}])
