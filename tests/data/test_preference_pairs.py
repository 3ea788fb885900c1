"""``--rejected other|other-similar``: pairs from dialogue data, seeded and deterministic."""

from __future__ import annotations

from pathlib import Path

import pytest

from chathuman_hf.core.cli import UsageError
from chathuman_hf.data import DataArguments, DataFormatError, DataReport
from chathuman_hf.data.pairs import bigrams, reply_slots
from chathuman_hf.data.preferences import load_preferences

QA = "question\tanswer\n배고파\t뭐라도 좀 드세요.\n배고프다\t밥 먹으러 가요.\n심심해\t산책 어때요?\n" \
     "너무 심심하다\t영화 한 편 봐요.\n졸려\t일찍 자요.\n"  # fmt: skip


@pytest.fixture
def qa_folder(tmp_path: Path) -> Path:
    (tmp_path / "qa.tsv").write_text(QA, encoding="utf-8")
    return tmp_path


def rejected_of(folder: Path, mode: str, seed: int = 42) -> list[tuple[str, str, str]]:
    data = load_preferences(DataArguments(data=[str(folder)], rejected=mode, rejected_seed=seed))
    return [(r["prompt"][-1]["content"], r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in data.pairs]


def test_other_is_seeded(qa_folder: Path) -> None:
    expected = [
        ("배고파", "뭐라도 좀 드세요.", "산책 어때요?"),
        ("배고프다", "밥 먹으러 가요.", "뭐라도 좀 드세요."),
        ("심심해", "산책 어때요?", "일찍 자요."),
        ("너무 심심하다", "영화 한 편 봐요.", "뭐라도 좀 드세요."),
        ("졸려", "일찍 자요.", "영화 한 편 봐요."),
    ]
    assert rejected_of(qa_folder, "other") == expected
    assert rejected_of(qa_folder, "other") == expected  # the same seed, the same pairs
    assert [r for _, _, r in rejected_of(qa_folder, "other", seed=7)] == [
        "산책 어때요?", "영화 한 편 봐요.", "뭐라도 좀 드세요.", "뭐라도 좀 드세요.", "뭐라도 좀 드세요."
    ]  # fmt: skip


def test_other_similar_takes_the_nearest_question(qa_folder: Path) -> None:
    # 배고파/배고프다 share the bigram 배고, 심심해/너무 심심하다 share 심심; 졸려 shares nothing: a seeded draw
    assert rejected_of(qa_folder, "other-similar") == [
        ("배고파", "뭐라도 좀 드세요.", "밥 먹으러 가요."),
        ("배고프다", "밥 먹으러 가요.", "뭐라도 좀 드세요."),
        ("심심해", "산책 어때요?", "영화 한 편 봐요."),
        ("너무 심심하다", "영화 한 편 봐요.", "산책 어때요?"),
        ("졸려", "일찍 자요.", "밥 먹으러 가요."),
    ]
    assert bigrams("너무 심심하다") == frozenset({"너무", "무심", "심심", "심하", "하다"})


def test_every_reply_of_a_dialogue_in_its_context_and_the_report(tmp_path: Path) -> None:
    lines = [
        '{"messages": [{"role": "user", "content": "안녕"}, {"role": "assistant", "content": "반가워"}, '
        '{"role": "user", "content": "뭐 해?"}, {"role": "assistant", "content": "책 읽어"}]}',
        '{"messages": [{"role": "user", "content": "잘 자"}, {"role": "assistant", "content": "반가워"}]}',
    ]
    (tmp_path / "chat.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    slots = reply_slots([{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
                          "source": "s", "dialogue_id": "d"}])  # fmt: skip
    assert [(s.prompt, s.reply, s.where) for s in slots] == [([{"role": "user", "content": "a"}], "b", "s: d#1")]
    report = DataReport()
    data = load_preferences(DataArguments(data=[str(tmp_path)], rejected="other"), report)
    assert [(len(r["prompt"]), r["chosen"][0]["content"]) for r in data.pairs] == [
        (1, "반가워"), (3, "책 읽어"), (1, "반가워")
    ]  # fmt: skip
    assert report.stats["preferences"]["from_dialogues"] == {
        "rejected": "other", "seed": 42, "replies": 3, "pairs": 3, "dropped": {}
    }  # fmt: skip
    assert report.records_summary() == {"read": 2, "kept": 2, "dropped": {}}  # the dialogues: both kept


def test_no_other_reply_is_a_counted_drop(tmp_path: Path) -> None:
    (tmp_path / "qa.tsv").write_text("question\tanswer\n안녕\t응\n잘 자\t응\n", encoding="utf-8")
    report = DataReport()
    with pytest.raises(DataFormatError, match="no preference pairs or ratings loaded"):
        load_preferences(DataArguments(data=[str(tmp_path)], rejected="other"), report)
    assert report.dropped["no_other_reply"] == 2
    assert report.examples["no_other_reply"][0].endswith("#1: no reply different from this one was found")


def test_dialogues_without_rejected_say_how(tmp_path: Path) -> None:
    (tmp_path / "qa.tsv").write_text(QA, encoding="utf-8")
    with pytest.raises(DataFormatError, match="the data holds dialogues only: --rejected other"):
        load_preferences(DataArguments(data=[str(tmp_path)]))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rejected": "random"}, "rejected must be one of other, other-similar, self, got 'random'"),
        ({"rejected": "self"}, "--rejected self needs --rejected_model DIR"),
        ({"rejected_model": "out/sft"}, "--rejected self needs --rejected_model DIR"),
    ],
)
def test_rejected_options_are_checked(options: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        DataArguments(**options)


def test_self_without_a_sampler_says_where_to_sample(qa_folder: Path) -> None:
    args = DataArguments(data=[str(qa_folder)], rejected="self", rejected_model="out/sft")
    with pytest.raises(UsageError, match="^--rejected self: this loader has no model to sample; run recipes/prepare"):
        load_preferences(args)
