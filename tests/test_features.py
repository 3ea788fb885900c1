"""tokenize_dialogues: template-identical ids, per-token roles, truncation, max_turns, expand_turns, drops."""

from __future__ import annotations

from collections import Counter

import pytest
from datasets import Dataset, load_from_disk
from transformers import AutoTokenizer

from chathuman_hf.tokens.features import (
    ASSISTANT,
    FRAME,
    SYSTEM,
    USER,
    _encode_exact,
    _fast_plan,
    encode_dialogues,
    tokenize_dialogues,
)
from tests.helpers.tiny_models import (
    THREE_TURN_IDS,
    THREE_TURN_WORDS,
    THREE_TURNS,
    make_word_tokenizer,
    sample_dialogues,
)

WORDS = [*THREE_TURN_WORDS, "너는", "친절한", "친구"]


class Report:
    def __init__(self) -> None:
        self.drops: Counter[str] = Counter()

    def drop(self, reason: str, count: int = 1, where: str | None = None) -> None:
        self.drops[reason] += count


@pytest.fixture(scope="module")
def word_tok():
    return make_word_tokenizer(WORDS)


@pytest.fixture(scope="module")
def tiny_tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_three_turn_roles_and_last_turn(word_tok):
    row = tokenize_dialogues([THREE_TURNS], word_tok)[0]
    assert row["input_ids"] == THREE_TURN_IDS
    F, U, A = FRAME, USER, ASSISTANT
    assert row["roles"] == [F, F, U, F, A, A, A, F, U, U, F, A, A, A, F, U, U, F, A, A, A]
    assert row["last_turn"] == [0] * 18 + [1, 1, 1]
    assert row["length"] == 21


def test_system_message_rendered_after_bos(word_tok):
    msgs = [{"role": "system", "content": "너는 친절한 친구"}, *THREE_TURNS[:2]]
    row = tokenize_dialogues([msgs], word_tok)[0]
    assert word_tok.apply_chat_template(msgs, tokenize=False) == "</s>너는 친절한 친구<usr>안녕<sys>안녕 반가워</s>"
    assert row["input_ids"] == [2, 12, 13, 14, 3, 5, 4, 5, 6, 2]
    assert row["roles"] == [FRAME, SYSTEM, SYSTEM, SYSTEM, FRAME, USER, FRAME, ASSISTANT, ASSISTANT, ASSISTANT]


def test_ids_identical_to_apply_chat_template_on_sample(tiny_tok):
    dialogues = sample_dialogues()
    dialogues.append([{"role": "system", "content": "다정하게 대답해."}, *dialogues[0]])
    ds = tokenize_dialogues(dialogues, tiny_tok, max_length=10_000)
    assert len(ds) == len(dialogues)
    for row, msgs in zip(ds, dialogues, strict=True):
        assert row["input_ids"] == tiny_tok.apply_chat_template(msgs)["input_ids"]
        # every assistant turn ends with eos carrying the assistant role
        eos_positions = [i for i, t in enumerate(row["input_ids"]) if t == tiny_tok.eos_token_id][1:]
        assert all(row["roles"][i] == ASSISTANT for i in eos_positions)
        assert row["input_ids"][-1] == tiny_tok.eos_token_id and row["last_turn"][-1] == 1


def test_truncation_drops_oldest_whole_exchanges(word_tok):
    report = Report()
    row = tokenize_dialogues([THREE_TURNS], word_tok, max_length=14, report=report)[0]
    # only the last exchange fits in 14 tokens together with bos; it is kept whole, eos included
    assert row["input_ids"] == word_tok.apply_chat_template(THREE_TURNS[4:])["input_ids"] == [2, 3, 10, 8, 4, 11, 8, 2]
    assert report.drops == {"oldest_exchanges_truncated": 2}
    row = tokenize_dialogues([THREE_TURNS], word_tok, max_length=15)[0]
    assert row["input_ids"] == word_tok.apply_chat_template(THREE_TURNS[2:])["input_ids"]


def test_single_too_long_exchange_cuts_the_user_turn_from_the_left(word_tok):
    report = Report()
    long = [{"role": "user", "content": " ".join(["밥"] * 30 + ["뭐"])}, {"role": "assistant", "content": "응 먹었어"}]
    ds = tokenize_dialogues([long], word_tok, max_length=12, report=report)
    # </s> <usr> 밥 밥 밥 밥 밥 뭐 <sys> 응 먹었어 </s>: the answer and the end of the question survive
    assert ds[0]["input_ids"] == [2, 3, 7, 7, 7, 7, 7, 10, 4, 9, 8, 2]
    assert ds[0]["roles"][-3:] == [ASSISTANT] * 3
    assert report.drops == {"long_user_turn_cut_from_the_left": 1}


def test_exchange_whose_answer_cannot_fit_is_dropped_and_counted(word_tok):
    report = Report()
    long = [{"role": "user", "content": "밥"}, {"role": "assistant", "content": " ".join(["응"] * 30)}]
    ds = tokenize_dialogues([long, THREE_TURNS[:2]], word_tok, max_length=16, report=report)
    assert len(ds) == 1 and ds[0]["input_ids"] == [2, 3, 5, 4, 5, 6, 2]
    assert report.drops == {"too_long_single_exchange": 1}


def test_max_turns_keeps_last_exchanges(word_tok):
    row = tokenize_dialogues([THREE_TURNS], word_tok, max_turns=2)[0]
    assert row["input_ids"] == word_tok.apply_chat_template(THREE_TURNS[2:])["input_ids"]


def test_expand_turns_gives_every_prefix_ending_on_assistant(word_tok):
    ds = tokenize_dialogues([THREE_TURNS], word_tok, expand_turns=True)
    assert [r["input_ids"] for r in ds] == [
        word_tok.apply_chat_template(THREE_TURNS[:k])["input_ids"] for k in (2, 4, 6)
    ]
    assert [sum(r["last_turn"]) for r in ds] == [3, 3, 3]
    assert ds[2]["input_ids"] == THREE_TURN_IDS


def test_expand_turns_with_max_turns_windows_each_prefix(word_tok):
    ds = tokenize_dialogues([THREE_TURNS], word_tok, expand_turns=True, max_turns=1)
    assert [r["input_ids"] for r in ds] == [
        word_tok.apply_chat_template(THREE_TURNS[k - 2 : k])["input_ids"] for k in (2, 4, 6)
    ]


def test_empty_target_dropped_and_counted_on_the_data_report(word_tok):
    from chathuman_hf.data.report import DataReport

    report = DataReport()
    empty = [{"role": "user", "content": "안녕"}, {"role": "assistant", "content": ""}]
    user_only = [{"role": "user", "content": "안녕"}]
    ds = tokenize_dialogues([empty, user_only, THREE_TURNS], word_tok, label_mode="-100", report=report)
    # an empty assistant content still has its eos as a target; a dialogue without an assistant turn has none
    assert [r["roles"] for r in ds][0] == [FRAME, FRAME, USER, FRAME, ASSISTANT]
    assert len(ds) == 2 and ds[1]["input_ids"] == THREE_TURN_IDS
    assert report.to_dict()["dropped"] == {"empty_target:last_sys": 1}
    # under "input" the user-only dialogue still has targets and is kept
    assert len(tokenize_dialogues([user_only], word_tok, label_mode="input")) == 1


def test_num_proc_gives_the_same_rows(word_tok):
    dialogues = [THREE_TURNS[: 2 * (i % 3 + 1)] for i in range(12)]
    single = tokenize_dialogues(dialogues, word_tok)
    multi = tokenize_dialogues(dialogues, word_tok, num_proc=2)
    assert multi["input_ids"] == single["input_ids"] and multi["roles"] == single["roles"]


def test_no_eos_after_assistant_is_an_error(word_tok):
    tok = make_word_tokenizer(WORDS)
    tok.chat_template = "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
    with pytest.raises(ValueError, match="closes assistant turn 2 with no end-of-turn text"):
        tokenize_dialogues([THREE_TURNS[:2]], tok)


def test_template_that_changes_content_is_refused(word_tok):
    tok = make_word_tokenizer(WORDS)
    tok.chat_template = "{{ bos_token }}{% for m in messages %}{{ m['content'] | upper }}{{ eos_token }}{% endfor %}"
    with pytest.raises(ValueError, match="changes the contents of conversation 0"):
        tokenize_dialogues([[{"role": "user", "content": "abc"}, {"role": "assistant", "content": "d"}]], tok)


def test_second_run_uses_datasets_cache(word_tok, tmp_path):
    Dataset.from_list([{"messages": THREE_TURNS}] * 3).save_to_disk(tmp_path / "d")
    ds = load_from_disk(str(tmp_path / "d"))
    first = tokenize_dialogues(ds, word_tok)
    second = tokenize_dialogues(ds, word_tok)
    assert first.cache_files and first.cache_files == second.cache_files
    assert second["input_ids"] == [THREE_TURN_IDS] * 3


def test_missing_messages_column_names_the_fix(word_tok):
    with pytest.raises(ValueError, match="expected a 'messages' column"):
        tokenize_dialogues(Dataset.from_list([{"text": "x"}]), word_tok)


def _tricky_dialogues() -> list[list[dict]]:
    dialogues = sample_dialogues()[:20]
    dialogues.append([{"role": "system", "content": " 다정하게\n대답해. "}, *dialogues[0]])
    dialogues.append(
        [{"role": "user", "content": "  앞뒤 공백  "}, {"role": "assistant", "content": "<usr> 마커 </s> 글자"}]
    )
    return dialogues


def test_segment_fast_path_equals_the_exact_path(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert _fast_plan(tok) is not None  # the prepared template renders bos/markers/eos as special tokens only
    dialogues = _tricky_dialogues()
    fast = encode_dialogues(dialogues, tok)
    assert fast == _encode_exact(dialogues, tok)
    assert [r["input_ids"] for r in fast] == [tok.apply_chat_template(m)["input_ids"] for m in dialogues]


def test_fast_path_refused_when_frames_merge_with_contents(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = (
        "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}Q:{{ m['content'] }}"
        "{% else %}A:{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
    )
    assert _fast_plan(tok) is None
    dialogues = _tricky_dialogues()[:-3]
    records = encode_dialogues(dialogues, tok)
    assert [r["input_ids"] for r in records] == [tok.apply_chat_template(m)["input_ids"] for m in dialogues]
