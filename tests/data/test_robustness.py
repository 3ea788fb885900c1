"""Attacks on the loaders (issue 10, items 1-5): nothing lost, nothing read twice, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from chathuman_hf.core.cli import UsageError
from chathuman_hf.data import DataArguments, DataFormatError, DataReport, load_dialogues
from chathuman_hf.data.clean import collapse_whitespace, remove_parentheses

REPO = Path(__file__).resolve().parents[2]


def chat_line(user: str, reply: str, **extra: str) -> str:
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
    return json.dumps({**extra, "messages": messages}, ensure_ascii=False) + "\n"


GOOD = chat_line("안녕", "반가워")
# json.dumps escapes a lone surrogate as \ud800, which json.loads turns back into an unencodable str
SURROGATE = json.dumps(json.loads(chat_line("깨진 \ud800 글자", "응"))) + "\n"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def load(paths: list[Path] | Path, **options) -> tuple[list[str], DataReport]:
    report = DataReport()
    dataset = load_dialogues(paths, report=report, **options)
    return [m[0]["content"] for m in dataset["messages"]], report


def prepare(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(REPO / "recipes" / "prepare.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# ---------------------------------------------------------------- 1. lone surrogates


def test_lone_surrogate_costs_one_record_and_no_other_file(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.jsonl", GOOD + SURROGATE + chat_line("또 봐", "잘 가"))
    other = write(tmp_path / "other.jsonl", chat_line("뭐해", "쉬어"))
    odd_id = write(tmp_path / "odd_id.json", json.dumps([json.loads(chat_line("a", "b", id="x\ud800"))]))
    firsts, report = load([bad, other, odd_id])
    assert firsts == ["안녕", "또 봐", "뭐해"]
    assert report.dropped == {"invalid_text": 2}
    assert report.examples["invalid_text"][0].startswith(f"{bad}: bad:2: a lone surrogate")
    assert report.to_dict()["records"] == {"read": 5, "kept": 3, "dropped": {"invalid_text": 2}}


def test_lone_surrogate_with_strict_is_one_line(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.jsonl", GOOD + SURROGATE)
    with pytest.raises(DataFormatError) as caught:
        load_dialogues(bad, strict=True)
    assert str(caught.value) == (
        f"{bad}: bad:2: a lone surrogate (U+D800) in the text, not valid Unicode; fix or remove the "
        "\\ud800 escape (strict mode; 1 problem(s) in all)"
    )


@pytest.mark.slow  # ~20 s: train.py imports and builds before it reads the data
def test_train_recipe_with_only_a_surrogate_record_ends_in_one_line(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.jsonl", SURROGATE)
    command = [sys.executable, str(REPO / "recipes/train.py"),
               "--config", str(REPO / "recipes/configs/quickstart.yaml"),
               "--data", str(bad), "--output_dir", str(tmp_path / "out")]  # fmt: skip
    result = subprocess.run(command, env=dict(os.environ, HF_HUB_OFFLINE="1"), capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no dialogues loaded (dropped: {'invalid_text': 1})")
    assert f"{bad}: bad:1: a lone surrogate" in last


# ---------------------------------------------------------------- 2. records after a bad one are kept


def test_deeply_nested_jsonl_line_costs_one_record(tmp_path: Path) -> None:
    nested = '{"messages": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
    lines = [chat_line(f"질문{i}", "답") for i in range(1, 4)] + [nested]
    lines += [chat_line(f"질문{i}", "답") for i in range(4, 7)]
    data = write(tmp_path / "nested.jsonl", "".join(lines))
    firsts, report = load(data)
    assert firsts == ["질문1", "질문2", "질문3", "질문4", "질문5", "질문6"]
    assert report.dropped == {"malformed_record": 1}
    assert report.examples["malformed_record"] == [f"{data}: line 4: nested too deeply to read (expected a dialogue)"]
    # a bad first line no longer hides the format of the rest of the file
    first_bad = write(tmp_path / "first_bad.json", nested + '{"messages": [\n' + GOOD)
    firsts, report = load(first_bad)
    assert firsts == ["안녕"]
    assert report.examples["malformed_record"] == [
        f"{first_bad}: line 1: nested too deeply to read (expected a dialogue)",
        f"{first_bad}: line 2: invalid JSON (Expecting value at column 15)",
    ]


def test_csv_field_over_the_csv_module_limit_keeps_the_following_rows(tmp_path: Path) -> None:
    long_answer = "가" * 140_000  # csv.field_size_limit() is 131,072 by default
    data = write(tmp_path / "qa.csv", f"Q,A\n하나,일\n둘,{long_answer}\n셋,삼\n넷,사\n")
    firsts, report = load(data)
    assert firsts == ["하나", "둘", "셋", "넷"]
    assert report.dropped == {}


def test_aihub_record_with_a_wrong_shaped_header_keeps_the_other_dialogues(tmp_path: Path) -> None:
    def item(header: object, text: str) -> dict:
        utterances = [{"participantID": "P01", "utterance": text}, {"participantID": "P02", "utterance": "응"}]
        return {"header": header, "body": {"dialogue": utterances}}

    ok = {"dialogueInfo": {"dialogueID": "d"}}
    document = {"data": [item(ok, "첫째"), item(["not", "an", "object"], "둘째"), item(ok, "셋째"),
                         item({"dialogueInfo": "text"}, "넷째"), item(ok, "다섯째")]}  # fmt: skip
    data = write(tmp_path / "summary.json", json.dumps(document, ensure_ascii=False))
    firsts, report = load(data)
    assert firsts == ["첫째", "셋째", "다섯째"]
    assert report.dropped == {"malformed_record": 2}
    assert report.examples["malformed_record"] == [
        f'{data}: data[1].header: expected an object with "dialogueInfo", got list',
        f'{data}: data[3].header.dialogueInfo: expected an object with "dialogueID", got str',
    ]


# ---------------------------------------------------------------- 3. counted, read once


def test_empty_messages_are_counted(tmp_path: Path) -> None:
    data = write(tmp_path / "chat.jsonl", GOOD + '{"messages": []}\n' + '{"conversations": []}\n')
    firsts, report = load(data)
    assert firsts == ["안녕"]
    assert report.dropped == {"empty_dialogue": 1, "malformed_record": 1}
    assert report.examples["empty_dialogue"] == [f"{data}: line 2: no messages"]


def test_glob_through_a_symlink_loop_reads_each_file_once(tmp_path: Path) -> None:
    write(tmp_path / "dir" / "a.jsonl", GOOD)
    write(tmp_path / "dir" / "sub" / "b.jsonl", chat_line("뭐해", "쉬어"))
    (tmp_path / "dir" / "self").symlink_to(".")
    report = DataReport()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = load_dialogues(f"{tmp_path}/dir/**/*.jsonl", report=report)
    assert sorted(dataset["source"]) == [f"{tmp_path}/dir/a.jsonl", f"{tmp_path}/dir/sub/b.jsonl"]
    assert sorted(report.files) == [f"{tmp_path}/dir/a.jsonl", f"{tmp_path}/dir/sub/b.jsonl"]
    assert report.skipped[f"{tmp_path}/dir/self/a.jsonl"] == f"the same file as {tmp_path}/dir/a.jsonl (read once)"
    assert report.to_dict()["records"] == {"read": 2, "kept": 2, "dropped": {}}
    assert any("each file is read once" in str(w.message) for w in caught)
    # a folder walk does not follow the loop either
    assert sorted(load_dialogues(tmp_path / "dir")["source"]) == [
        f"{tmp_path}/dir/a.jsonl", f"{tmp_path}/dir/sub/b.jsonl"
    ]


def test_the_same_file_given_twice_is_read_once_and_said_so(tmp_path: Path) -> None:
    data = write(tmp_path / "chat.jsonl", GOOD)
    (tmp_path / "link.jsonl").symlink_to(data)
    report = DataReport()
    with pytest.warns(UserWarning, match=r"2 path\(s\) name a file already given .*each file is read once"):
        dataset = load_dialogues([data, tmp_path / "link.jsonl", data], report=report)
    assert dataset["source"] == [str(data)]
    assert report.sources == {str(data): 1}
    assert report.skipped == {str(tmp_path / "link.jsonl"): f"the same file as {data} (read once)"}
    assert report.warnings and "each file is read once" in report.warnings[0]


def test_kept_plus_dropped_equals_records_read(tmp_path: Path) -> None:
    """Every record of every file is either a kept dialogue or one counted drop; each file is read once."""
    folder = tmp_path / "in"
    write(folder / "chat.jsonl", GOOD + SURROGATE + '{"messages": []}\n' + "{not json\n" + GOOD
          + chat_line("혼자", "말") .replace('"assistant"', '"user"'))  # fmt: skip
    write(folder / "qa.csv", "Q,A\n하나,일\n둘,\n셋,삼\n")
    write(folder / "broken.json", '{"data": [')
    write(folder / "notes.md", "not data")
    (folder / "again").symlink_to(".")
    result = prepare("--data", str(folder), f"{folder}/again/*.csv", "--output", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    lines = (tmp_path / "out" / "dialogues.jsonl").read_text(encoding="utf-8").splitlines()
    # read: 6 JSONL lines + 3 CSV rows + 1 unreadable file
    assert report["records"] == {
        "read": 10,
        "kept": 4,
        "dropped": {
            "empty_dialogue": 1,
            "empty_field": 1,
            "invalid_text": 1,
            "malformed_json": 1,
            "malformed_record": 1,
            "no_user_assistant_pair": 1,
        },
    }
    assert report["records"]["kept"] + sum(report["records"]["dropped"].values()) == report["records"]["read"]
    assert len(lines) == report["dialogues"] == 4
    assert {Path(name).name: info["records"] for name, info in report["files"].items()} == {
        "broken.json": 1,
        "chat.jsonl": 6,
        "qa.csv": 3,
    }
    assert sorted(report["files"]) == [f"{folder}/broken.json", f"{folder}/chat.jsonl", f"{folder}/qa.csv"]
    assert report["skipped_files"] == {
        f"{folder}/again/qa.csv": f"the same file as {folder}/qa.csv (read once)",
        f"{folder}/notes.md": "not a data file (expected .json, .jsonl, .csv, .tsv, .txt, .parquet)",
    }


# ---------------------------------------------------------------- 4. manifest encoding


def test_manifest_that_is_not_utf8_is_one_line_naming_it(tmp_path: Path) -> None:
    write(tmp_path / "chat.jsonl", GOOD)
    manifest = write(tmp_path / "manifest.json", '{"files": {"chat.jsonl": {"assistant": "이랑"}}}'.encode("cp949"))
    with pytest.raises(DataFormatError) as caught:
        load_dialogues(tmp_path)
    assert str(caught.value) == f"{manifest}: not UTF-8 (invalid byte at position 40); save it as UTF-8"


# ---------------------------------------------------------------- 5. parentheses, Kakao times, options, FIFOs


def test_remove_parentheses_nested_and_unbalanced() -> None:
    cases = [
        "a (b) c",
        "a (b (c) d) e",
        "a (b c",
        "a ) b ( c",
        "(a (b) c",
        "a (b) c) d",
        "((a)) (b)",
        "x(()",
        ")(",
        "(가(나)다(라(마)))바",
    ]
    assert [collapse_whitespace(remove_parentheses(case)) for case in cases] == [
        "a c",
        "a e",
        "a (b c",
        "a ) b ( c",
        "(a c",
        "a c) d",
        "",
        "x(",
        ")(",
        "바",
    ]


def test_remove_parentheses_is_linear_on_80kb() -> None:
    """The old repeated-regex removal took ~12 s on this input; a linear scan takes milliseconds (bound: 60x)."""
    depth = 20_000
    text = "말 " + "(" * depth + "속" + ")" * depth + " 끝 (" + "열린 " * 13_400  # 80,207 characters
    start = time.perf_counter()
    result = remove_parentheses(text)
    elapsed = time.perf_counter() - start
    assert collapse_whitespace(result) == "말 끝 (" + " ".join(["열린"] * 13_400)
    assert elapsed < 2.0, f"{elapsed:.1f} s for {len(text):,} characters"


KAKAO = """--------------- 2024년 2월 17일 토요일 ---------------
[민지] [오후 9:15] 안녕
[이랑] [오후 25:99] 반가워
[민지] [오전 9:61] 뭐해
[이랑] [오후 9:21] 그냥 있어
"""


def test_kakao_impossible_time_is_rejected(tmp_path: Path) -> None:
    data = write(tmp_path / "talk.txt", KAKAO)
    dataset = load_dialogues(data, assistant="이랑", report=(report := DataReport()))
    assert dataset["messages"] == [
        [{"role": "user", "content": "안녕"}, {"role": "assistant", "content": "그냥 있어"}]
    ]
    assert report.dropped == {"malformed_record": 2}
    assert report.examples["malformed_record"][0] == (
        f"{data}: line 3: impossible KakaoTalk time '오후 25:99' (expected 오전/오후 0-12:00-59)"
    )


def test_negative_silence_minutes_refused_at_parse_time(tmp_path: Path) -> None:
    for value in (-5.0, float("nan"), float("inf")):
        with pytest.raises(UsageError, match=r"^silence_minutes must be a number >= 0 \(0 = never split\)"):
            DataArguments(silence_minutes=value)  # an option: exit 2; in a manifest it is the data's problem: exit 1
    manifest = write(tmp_path / "manifest.json", '{"files": {"talk.txt": {"silence_minutes": -1}}}')
    write(tmp_path / "talk.txt", KAKAO)
    with pytest.raises(DataFormatError, match=f"^{manifest}: silence_minutes must be a number >= 0"):
        load_dialogues(tmp_path)
    assert prepare("--data", str(tmp_path), "--output", str(tmp_path / "out")).returncode == 1
    result = prepare("--silence_minutes", "-5", "--output", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert error_lines(result.stderr) == ["error: silence_minutes must be a number >= 0 (0 = never split), got -5.0"]
    assert not (tmp_path / "out").exists()


def test_fifo_is_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(DataFormatError) as caught:
        load_dialogues(fifo)
    assert str(caught.value) == f"{fifo}: not a regular file (a FIFO); pass a file, a folder or a glob"
    # in a walked folder it is listed as skipped, never opened (opening a FIFO would block)
    write(tmp_path / "chat.jsonl", GOOD)
    (tmp_path / "gone.jsonl").symlink_to(tmp_path / "missing.jsonl")
    report = DataReport()
    assert load_dialogues(tmp_path, report=report)["source"] == [str(tmp_path / "chat.jsonl")]
    assert report.skipped == {
        str(tmp_path / "gone.jsonl"): "a broken symbolic link; point it at a file or folder",
        str(fifo): "not a regular file (a FIFO); pass a file, a folder or a glob",
    }
