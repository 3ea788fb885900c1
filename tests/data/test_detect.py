"""Format auto-detection from content, and the encodings files come in."""

from __future__ import annotations

from pathlib import Path

import pytest

from chathuman_hf.data.detect import detect_format, normalize_format
from chathuman_hf.data.errors import DataFormatError
from chathuman_hf.data.io import decode_bytes, read_text

FIXTURES = Path(__file__).parent / "fixtures" / "every_format"


def test_every_fixture_detected() -> None:
    found = {}
    for path in sorted(FIXTURES.rglob("*")):
        if path.is_file() and path.name != "manifest.json":
            found[path.relative_to(FIXTURES).as_posix()] = detect_format(read_text(path)[0], str(path))
    assert found == {
        "aihub_sns.json": "aihub_sns",
        "aihub_summary.json": "aihub_summary",
        "aihub_topic/topic-1.json": "aihub_topic",
        "aihub_topic/topic-2.json": "aihub_topic",
        "chat.jsonl": "chat_json",
        "conversation.csv": "conversation_csv",
        "kakao_android.txt": "kakao",
        "kakao_ios.txt": "kakao",
        "kakao_pc.txt": "kakao",
        "qa.tsv": "qa_table",
        "sharegpt.json": "sharegpt",
    }


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        ("[민지] [오후 1:00] 점심 뭐 먹지\n", "a.txt", "kakao"),
        ("Q,A,label\n안녕,반가워,0\n", "data.txt", "qa_table"),
        ("질문\t답변\n안녕\t반가워\n", "x.dat", "qa_table"),
        ('[{"messages": []}]', "a.json", "chat_json"),
        ('{"data": [{"messages": []}]}', "a.json", "chat_json"),
        ('{"conversations": [{"from": "human", "value": "hi"}]}\n{"conversations": []}\n', "a.jsonl", "sharegpt"),
    ],
)
def test_detect_from_content(text: str, name: str, expected: str) -> None:
    assert detect_format(text, name) == expected


def test_large_json_detected_from_its_opening(monkeypatch: pytest.MonkeyPatch) -> None:
    from chathuman_hf.data import detect

    monkeypatch.setattr(detect, "LARGE_JSON_CHARS", 10)
    summary = (FIXTURES / "aihub_summary.json").read_text(encoding="utf-8-sig")
    assert detect_format(summary[: len(summary) // 2], "cut.json") == "aihub_summary"  # no full parse needed
    sns = (FIXTURES / "aihub_sns.json").read_text(encoding="utf-8")
    assert detect_format(sns, "sns.json") == "aihub_sns"


def test_undetectable_text() -> None:
    with pytest.raises(DataFormatError, match="notes.txt: could not detect the format"):
        detect_format("그냥 메모입니다\n두 번째 줄\n", "notes.txt")


def test_format_aliases() -> None:
    assert [normalize_format(n) for n in ("auto", "CSV", "jsonl", "kakaotalk", "aihub-topic")] == [
        "auto",
        "qa_table",
        "chat_json",
        "kakao",
        "aihub_topic",
    ]


def test_encodings() -> None:
    text = "오늘 날씨 좋다"
    assert decode_bytes(text.encode("utf-8")) == (text, "utf-8")
    assert decode_bytes(b"\xef\xbb\xbf" + text.encode("utf-8")) == (text, "utf-8-sig")
    assert decode_bytes(text.encode("cp949")) == (text, "cp949")
    assert decode_bytes(text.encode("cp949"), "cp949") == (text, "cp949")
