"""PII scrubbing sees the text as cleaning and merging will make it: digit groups split by separators that cleaning
turns into spaces (U+00A0, U+2009, U+200B, emoji, newlines, runs of spaces), and values typed over three or more
consecutive messages that merging joins (issue 34, items 21-22)."""

from __future__ import annotations

from collections import Counter

import pytest

from chathuman_hf.data import DataReport, load_dialogues
from chathuman_hf.data.clean import CleaningOptions, clean_utterance
from chathuman_hf.data.names import FakeNamer
from chathuman_hf.data.pii import PLACEHOLDERS, find_pii, scrub_text
from chathuman_hf.data.scrub import scrub_dialogue

from .pii_cases import ORDINARY

SEPARATORS = ["\u00a0", "\u2009", "\u200b", "\u202f", "\u2060", "\ufeff", "  ", "\n", "\t", " \u200b ", "😀", "\u318d"]
VALUES = [  # (groups, kind): the digit groups of one value
    (["010", "4321", "8765"], "phone"),
    (["02", "345", "6789"], "phone"),
    (["4111", "1111", "1111", "1111"], "card"),
    (["950312", "-", "1045678"], "resident_id"),
    (["9503121045678"], "resident_id"),
]


@pytest.mark.parametrize("separator", SEPARATORS, ids=[f"U+{ord(s[-1]):04X}x{len(s)}" for s in SEPARATORS])
@pytest.mark.parametrize("groups, kind", VALUES, ids=[kind for _, kind in VALUES])
def test_digit_groups_split_by_what_cleaning_turns_into_spaces_are_scrubbed(separator, groups, kind):
    text = "번호는" + separator + separator.join(groups) + separator + "이야"
    counts: Counter[str] = Counter()
    out = scrub_text(text, counts=counts)
    assert counts == Counter({kind: 1}) and PLACEHOLDERS[kind] in out, (text, out, counts)
    cleaned, _ = clean_utterance(out, CleaningOptions())
    assert not any(c.isdigit() for c in cleaned) and find_pii(cleaned) == [], cleaned


def test_only_the_value_changes_the_other_separators_stay():
    text = "안녕\u00a0하세요\u2009오늘\n010\u00a04321\u200b8765 로\u00a0연락해 😀"
    assert scrub_text(text) == "안녕\u00a0하세요\u2009오늘\n[전화번호] 로\u00a0연락해 😀"
    assert find_pii(text) == [("phone", "010\u00a04321\u200b8765")]


def test_ordinary_sentences_with_odd_spaces_stay_as_they_would_with_plain_spaces():
    for odd in ("\u00a0", "\u200b", "  ", "\n"):
        changed = [s for s in ORDINARY if scrub_text(s.replace(" ", odd)).replace(odd, " ") != scrub_text(s)]
        assert changed == [], (odd, changed)


def test_a_number_with_odd_spaces_in_a_kakao_export_never_reaches_the_dialogues(tmp_path):
    (tmp_path / "chat.txt").write_text(
        "--------------- 2024년 3월 1일 금요일 ---------------\n"
        "[김민준] [오후 9:15] 내 번호 010\u00a04321\u00a08765 이고 카드는 4111\u20091111\u20091111\u20091111\n"
        "[이서연] [오후 9:16] 알았어 저장할게 010\u200b9876\u200b5432 는 내꺼\n", encoding="utf-8")
    report = DataReport()
    dataset = load_dialogues(tmp_path / "chat.txt", report=report, assistant="이서연",
                             data_cache_dir=str(tmp_path / "cache"))
    text = " ".join(m["content"] for row in dataset for m in row["messages"])
    assert not any(c.isdigit() for c in text) and text.count("[전화번호]") == 2 and "[카드번호]" in text, text
    assert report.pii["total"] == {"card": 1, "phone": 2}, report.pii


RUNS = [
    (["번호 010", "4321", "8765 야"], "phone"),
    (["번호 010-", "4321-", "8765"], "phone"),
    (["번호 010", "4321", "8765"], "phone"),
    (["010", "-", "4321", "-", "8765 저장해"], "phone"),
    (["번호 010", "😀", "4321", "8765 야"], "phone"),  # the emoji message is emptied by cleaning, then merged
    (["번호 010\u00a0", "\u200b4321", "8765 야"], "phone"),
    (["카드 4111", "1111", "1111", "1111 이야"], "card"),
    (["카드 4111 ", " 1111 ", " 1111", "1111"], "card"),
    (["주민번호 950312", "-", "1045678 이야"], "resident_id"),
    (["계좌 3333", "-01-", "7654321 로 보내"], "bank_account"),
]


@pytest.mark.parametrize("texts, kind", RUNS, ids=[f"{kind}-{len(t)}" for t, kind in RUNS])
def test_a_value_typed_over_three_or_more_messages_is_scrubbed(texts, kind):
    speakers = ["김민준"] * len(texts)
    _, out, counts = scrub_dialogue(speakers, texts, FakeNamer(1, "d"), "placeholder")
    assert counts == Counter({kind: 1}), (out, counts)
    assert out[0].rstrip().endswith(PLACEHOLDERS[kind]), out
    assert not any(c.isdigit() for text in out for c in text), out
    merged = " ".join(clean_utterance(t, CleaningOptions())[0] for t in out)
    assert find_pii(merged) == [] and find_pii(merged.replace(" ", "")) == [], merged
    _, fake, counts = scrub_dialogue(speakers, texts, FakeNamer(1, "d"), "fake")
    assert [k for k, _ in find_pii("".join(fake))] == [kind] and counts == Counter({kind: 1}), fake


@pytest.mark.parametrize("texts", [
    ["1", "2", "3", "4"],
    ["3시에", "2번", "출구", "10분"],
    ["010", "이야?", "4321", "8765"],  # a word between: merging gives "010 이야? 4321 8765", no number
    ["2024", "3", "1", "금요일"],
    ["12", "34", "56", "78"],
])
def test_runs_of_ordinary_short_numbers_stay(texts):
    _, out, counts = scrub_dialogue(["김민준"] * len(texts), texts, FakeNamer(1, "d"))
    assert out == texts and not counts


def test_numbers_over_three_and_four_kakao_messages_never_reach_the_dialogues(tmp_path):
    lines = ["번호 010", "4321", "8765 야", "카드 4111", "1111", "1111", "1111 이고"]
    (tmp_path / "chat.txt").write_text(
        "--------------- 2024년 3월 1일 금요일 ---------------\n"
        + "".join(f"[김민준] [오후 9:15] {line}\n" for line in lines)
        + "[이서연] [오후 9:16] 알았어 저장할게\n", encoding="utf-8")
    report = DataReport()
    dataset = load_dialogues(tmp_path / "chat.txt", report=report, assistant="이서연",
                             data_cache_dir=str(tmp_path / "cache"))
    text = " ".join(m["content"] for row in dataset for m in row["messages"])
    assert not any(c.isdigit() for c in text), text
    assert "[전화번호]" in text and "[카드번호]" in text, text
    assert report.pii["total"] == {"card": 1, "phone": 1}, report.pii
