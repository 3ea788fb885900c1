"""Bad input: every case is either a counted drop with a named reason or one clear error line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chathuman_hf.core.cli import UsageError
from chathuman_hf.data import DataFormatError, DataReport, load_dialogues

GOOD_JSONL = '{"messages": [{"role": "user", "content": "안녕"}, {"role": "assistant", "content": "반가워"}]}\n'


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def load_with_good(tmp_path: Path, bad: Path, good: Path | None = None, **options) -> DataReport:
    """Load the bad file next to a good one (so something loads) and return the report."""
    good = good or write(tmp_path, "good.jsonl", GOOD_JSONL)
    report = DataReport()
    dataset = load_dialogues([good, bad], report=report, **options)
    assert dataset["source"] == [str(good)]
    return report


def examples(report: DataReport, reason: str) -> str:
    return " | ".join(report.examples.get(reason, []))


def test_truncated_json_counted(tmp_path: Path) -> None:
    bad = write(tmp_path, "cut.json", '{"numberOfItems": 1, "data": [{"header": {"dialogueInfo": ')
    report = load_with_good(tmp_path, bad)
    assert report.dropped == {"malformed_json": 1}
    assert examples(report, "malformed_json").startswith(f"{bad}: invalid JSON at line 1")


def test_empty_file_counted(tmp_path: Path) -> None:
    bad = write(tmp_path, "empty.csv", "  \n")
    report = load_with_good(tmp_path, bad)
    assert report.dropped == {"empty_file": 1}
    assert examples(report, "empty_file") == f"{bad}: empty file"


def test_undecodable_bytes_counted(tmp_path: Path) -> None:
    bad = write(tmp_path, "binary.txt", b"\xff\xfe\x00\x81\x82\xff" * 10)
    report = load_with_good(tmp_path, bad)
    assert report.dropped == {"undecodable_file": 1}
    assert "expected UTF-8, UTF-8 with BOM or CP949" in examples(report, "undecodable_file")


def test_wrong_explicit_encoding(tmp_path: Path) -> None:
    bad = write(tmp_path, "win.csv", "Q,A\n안녕,반가워\n".encode("cp949"))
    report = load_with_good(tmp_path, bad, encoding="utf-8")
    assert report.dropped == {"undecodable_file": 1}
    assert "cannot decode as utf-8" in examples(report, "undecodable_file")


def test_jsonl_record_missing_messages(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.jsonl", GOOD_JSONL + '{"text": "안녕"}\n')
    report = DataReport()
    dataset = load_dialogues(bad, report=report)
    assert len(dataset) == 1
    assert report.dropped == {"malformed_record": 1}
    assert examples(report, "malformed_record").startswith(f'{bad}: line 2: expected an object with "messages"')


def test_jsonl_wrong_content_type(tmp_path: Path) -> None:
    bad = write(tmp_path, "types.jsonl", '{"messages": [{"role": "user", "content": 3}]}\n' + GOOD_JSONL)
    report = DataReport()
    load_dialogues(bad, report=report)
    assert examples(report, "malformed_record") == f"{bad}: line 1: messages[0].content is int, expected a string"


def test_jsonl_unknown_role(tmp_path: Path) -> None:
    bad = write(tmp_path, "roles.jsonl", GOOD_JSONL + '{"messages": [{"role": "bot", "content": "x"}]}\n')
    report = DataReport()
    load_dialogues(bad, report=report)
    assert "line 2: messages[0].role is 'bot', expected one of ['assistant', 'system', 'user']" in examples(
        report, "malformed_record"
    )


def test_jsonl_invalid_line(tmp_path: Path) -> None:
    bad = write(tmp_path, "lines.jsonl", GOOD_JSONL + '{"messages": [\n' + GOOD_JSONL)
    report = DataReport()
    assert len(load_dialogues(bad, report=report)) == 2
    assert report.dropped == {"malformed_record": 1}
    assert examples(report, "malformed_record").startswith(f"{bad}: line 2: invalid JSON")


def test_csv_without_recognisable_columns(tmp_path: Path) -> None:
    bad = write(tmp_path, "cols.csv", "foo,bar\n1,2\n")
    report = load_with_good(tmp_path, bad)
    assert report.dropped == {"unrecognised_columns": 1}
    assert "no recognisable columns in header" in examples(report, "unrecognised_columns")


def test_column_override_not_found(tmp_path: Path) -> None:
    bad = write(tmp_path, "qa.csv", "Q,A\n안녕,반가워\n")
    good = write(tmp_path, "good.csv", "질문,답변\n안녕,반가워\n")
    report = load_with_good(tmp_path, bad, good, format="qa_table", question_column="질문", answer_column="답변")
    assert "question/answer columns '질문'/'답변' not found (columns are ['Q', 'A'])" in examples(
        report, "unrecognised_columns"
    )


def test_csv_short_row_and_empty_answer(tmp_path: Path) -> None:
    bad = write(tmp_path, "rows.csv", "Q,A\n안녕,반가워\n혼자\n배고파,\n")
    report = DataReport()
    assert len(load_dialogues(bad, report=report)) == 1
    assert report.dropped == {"malformed_record": 1, "empty_field": 1}
    assert examples(report, "malformed_record") == f"{bad}: line 3: expected 2 fields, got 1"
    assert examples(report, "empty_field") == f"{bad}: line 4: column 'A' is empty, expected text"


def test_kakao_file_without_messages(tmp_path: Path) -> None:
    bad = write(tmp_path, "kakao.txt", "홍길동 님과 카카오톡 대화\n저장한 날짜 : 2024-03-02 10:11:12\n")
    good = write(tmp_path, "good.txt", "[민지] [오후 1:00] 점심 뭐 먹지\n[이랑] [오후 1:02] 국밥 어때\n")
    report = load_with_good(tmp_path, bad, good, format="kakao", assistant="이랑")
    assert report.dropped == {"kakao_no_messages": 1}
    assert "no KakaoTalk messages found" in examples(report, "kakao_no_messages")


def test_aihub_utterance_missing_text(tmp_path: Path) -> None:
    doc = {
        "data": [{"header": {"dialogueInfo": {"dialogueID": "x"}}, "body": {"dialogue": [{"participantID": "P01"}]}}]
    }
    bad = write(tmp_path, "sum.json", json.dumps(doc))
    report = load_with_good(tmp_path, bad)
    assert examples(report, "malformed_record") == (
        f'{bad}: data[0].body.dialogue, utterance 0: expected {{"participantID": ..., "utterance": str}}'
    )


def test_aihub_topic_without_lines(tmp_path: Path) -> None:
    bad = write(tmp_path, "topic.json", json.dumps({"info": [{"id": "t", "annotations": {"subject": "x"}}]}))
    report = load_with_good(tmp_path, bad)
    assert examples(report, "malformed_record") == f'{bad}: info[0]: expected "annotations": {{"lines": [...]}}'


def test_json_of_unknown_shape(tmp_path: Path) -> None:
    bad = write(tmp_path, "other.json", json.dumps({"rows": [1, 2]}))
    report = load_with_good(tmp_path, bad)
    assert report.dropped == {"unknown_format": 1}
    assert "JSON of unknown shape (top level: ['rows'])" in examples(report, "unknown_format")


def test_forced_wrong_format(tmp_path: Path) -> None:
    bad = write(tmp_path, "qa.csv", "Q,A\n안녕,반가워\n")
    with pytest.raises(DataFormatError, match=r"qa\.csv: invalid JSON at line 1"):
        load_dialogues(bad, format="chat_json")


def test_unknown_format_name(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown format 'xml'; use 'auto' or one of: aihub_summary"):
        load_dialogues(write(tmp_path, "a.jsonl", GOOD_JSONL), format="xml")


def test_nonexistent_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(DataFormatError, match="nope.jsonl: no such file or folder"):
        load_dialogues(missing)


def test_glob_matching_nothing(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"\*\.json: no file matches this pattern"):
        load_dialogues(str(tmp_path / "*.json"))


def test_strict_fails_on_first_bad_record(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.jsonl", GOOD_JSONL + '{"text": "안녕"}\n')
    with pytest.raises(DataFormatError, match=r"bad\.jsonl: line 2: expected an object with \"messages\""):
        load_dialogues(bad, strict=True)


def test_nothing_loads_is_an_error(tmp_path: Path) -> None:
    bad = write(tmp_path, "only_bad.jsonl", '{"text": "안녕"}\n')
    with pytest.raises(DataFormatError, match=r"no dialogues loaded .*only_bad\.jsonl: line 1: expected an object"):
        load_dialogues(bad, format="chat_json")
    with pytest.raises(DataFormatError, match=r"only_bad\.jsonl: JSON of unknown shape \(top level: \['text'\]\)"):
        load_dialogues(bad)


def test_only_user_turns_is_an_error_with_counts(tmp_path: Path) -> None:
    bad = write(tmp_path, "mono.jsonl", '{"messages": [{"role": "user", "content": "혼잣말"}]}\n')
    with pytest.raises(DataFormatError, match="no_user_assistant_pair"):
        load_dialogues(bad)


def test_non_data_file_in_folder_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "a.jsonl", GOOD_JSONL)
    write(tmp_path, "notes.md", "# 메모")
    report = DataReport()
    assert len(load_dialogues(tmp_path, report=report)) == 1
    assert report.skipped == {
        str(tmp_path / "notes.md"): "not a data file (expected .json, .jsonl, .csv, .tsv, .txt, .parquet)"
    }


def test_manifest_with_unknown_option(tmp_path: Path) -> None:
    write(tmp_path, "a.jsonl", GOOD_JSONL)
    write(tmp_path, "manifest.json", json.dumps({"files": {"a.jsonl": {"speaker": "x"}}}))
    with pytest.raises(DataFormatError, match=r"manifest\.json: unknown per-file options \['speaker'\]"):
        load_dialogues(tmp_path)


@pytest.mark.parametrize("manifest", [{"files": ["a.jsonl"]}, {"files": {"a.jsonl": "chat_json"}}, [1]])
def test_manifest_of_the_wrong_shape(tmp_path: Path, manifest: object) -> None:
    write(tmp_path, "a.jsonl", GOOD_JSONL)
    write(tmp_path, "manifest.json", json.dumps(manifest))
    with pytest.raises(
        DataFormatError, match=r'manifest\.json: expected \{"files": \{name: \{option: value\}\}\}; got'
    ):
        load_dialogues(tmp_path)
