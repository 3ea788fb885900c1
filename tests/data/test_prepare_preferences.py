"""recipes/prepare.py on preference data: the files it writes, the report, PII, mixed folders and one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from chathuman_hf.data import DataArguments, DataReport
from chathuman_hf.data.preferences import load_preferences

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


def prepare(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(REPO / "recipes" / "prepare.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120)


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def bot(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_mixed_folder(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    shutil.copytree(FIXTURES / "preference", folder)
    for name in ("chat.jsonl", "qa.tsv"):
        shutil.copy(FIXTURES / "every_format" / name, folder / name)
    (folder / "notes.md").write_text("not data\n", encoding="utf-8")
    result = prepare("--data", str(folder), "--output", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["dialogues.jsonl", "preferences.jsonl", "ratings.jsonl",
                                                      "report.json"]  # fmt: skip
    pairs, ratings = rows(out / "preferences.jsonl"), rows(out / "ratings.jsonl")
    assert {tuple(row) for row in pairs} == {("prompt", "chosen", "rejected")}
    assert {tuple(row) for row in ratings} == {("prompt", "completion", "label")}
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["dialogues"] == 4 and len(rows(out / "dialogues.jsonl")) == 4
    assert report["preferences"]["pairs"] == len(pairs) == 11  # 5 TRL + 4 LLaMA-Factory + 2 UltraFeedback
    assert report["preferences"]["ratings"] == len(ratings) == 7  # 4 TRL + 3 LLaMA-Factory KTO
    formats = {Path(source).name: info["format"] for source, info in report["files"].items()}
    assert formats == {
        "chat.jsonl": "chat_json", "qa.tsv": "qa_table", "llamafactory_alpaca.json": "llamafactory",
        "llamafactory_kto.json": "llamafactory", "llamafactory_sharegpt.json": "llamafactory",
        "trl_pairs.jsonl": "trl_preference", "trl_ratings.jsonl": "trl_unpaired",
        "ultrafeedback.jsonl": "ultrafeedback",
    }  # fmt: skip
    assert report["skipped_files"] == {str(folder / "notes.md"): "not a data file (expected .json, .jsonl, .csv, "
                                       ".tsv, .txt, .parquet)"}  # fmt: skip
    records = report["records"]
    assert records["read"] == 2 + 2 + 10 + 7 + 4 + 3 + 3 + 4
    assert records["kept"] + sum(records["dropped"].values()) == records["read"]
    assert records["kept"] == 4 + 11 + 7
    assert "kept preference pairs / ratings per source" in result.stdout


def test_personal_data_never_reaches_preferences_jsonl(tmp_path: Path) -> None:
    planted = {"phone": "010-2345-6789", "email": "minjun.kim@example.com", "resident_id": "900101-1234567",
               "card": "4111-1111-1111-1111", "account": "110-123-456789"}  # fmt: skip
    pair = {
        "prompt": [{"role": "user", "content": f"내 메일은 {planted['email']}야"}],
        "chosen": [{"role": "assistant", "content": f"알겠어, {planted['phone']}로도 연락할게"}],
        "rejected": [{"role": "assistant", "content": f"주민번호 {planted['resident_id']} 맞지? 카드 "
                                                      f"{planted['card']}"}],  # fmt: skip
    }
    rating = {"prompt": [{"role": "user", "content": "계좌 알려 줘"}],
              "completion": [{"role": "assistant", "content": f"{planted['account']}이야"}], "label": False}
    (tmp_path / "pairs.jsonl").write_text(json.dumps(pair, ensure_ascii=False) + "\n", encoding="utf-8")
    (tmp_path / "ratings.jsonl").write_text(json.dumps(rating, ensure_ascii=False) + "\n", encoding="utf-8")
    result = prepare("--data", str(tmp_path / "pairs.jsonl"), str(tmp_path / "ratings.jsonl"),
                     "--output", str(tmp_path / "out"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "out").iterdir()}
    assert sorted(written) == ["preferences.jsonl", "ratings.jsonl", "report.json"]
    for name, text in written.items():
        for value in planted.values():
            assert value not in text, (name, value)
    assert rows(tmp_path / "out" / "preferences.jsonl") == [{
        "prompt": [{"role": "user", "content": "내 메일은 [이메일]야"}],
        "chosen": [{"role": "assistant", "content": "알겠어, [전화번호]로도 연락할게"}],
        "rejected": [{"role": "assistant", "content": "주민번호 [주민등록번호] 맞지? 카드 [카드번호]"}],
    }]  # fmt: skip
    report = json.loads(written["report.json"])
    assert report["pii"]["total"] == {"bank_account": 1, "card": 1, "email": 1, "phone": 1, "resident_id": 1}


def test_rejected_other_through_prepare(tmp_path: Path) -> None:
    result = prepare("--data", str(FIXTURES / "every_format" / "qa.tsv"), "--rejected", "other",
                     "--output", str(tmp_path / "out"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    pairs = [(r["prompt"], r["chosen"], r["rejected"]) for r in rows(tmp_path / "out" / "preferences.jsonl")]
    assert pairs == [
        ([user("배고파")], [bot("뭐라도 좀 드세요.")], [bot("산책 어때요?")]),
        ([user("심심해")], [bot("산책 어때요?")], [bot("뭐라도 좀 드세요.")]),
    ]
    assert (tmp_path / "out" / "dialogues.jsonl").is_file()


def test_bad_preference_input_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "pairs.jsonl"
    good = {"prompt": [{"role": "user", "content": "안녕"}], "chosen": "안녕!", "rejected": "응"}
    bad = {"prompt": [{"role": "robot", "content": "안녕"}], "chosen": "안녕!", "rejected": "응"}
    data.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    strict = prepare("--data", str(data), "--strict", "--output", str(tmp_path / "strict"))
    assert strict.returncode == 1 and "Traceback" not in strict.stderr
    assert strict.stderr.strip().splitlines() == [
        f"error: {data}: line 2: prompt[0].role is 'robot', expected one of system, user, assistant (human, gpt) "
        "(strict mode)"
    ]
    report = DataReport()  # without --strict: a counted drop
    assert len(load_preferences(DataArguments(data=[str(data)]), report).pairs) == 1
    assert report.records_summary() == {"read": 2, "kept": 1, "dropped": {"malformed_record": 1}}
    only_bad = tmp_path / "bad.jsonl"
    only_bad.write_text(json.dumps(bad) + "\n", encoding="utf-8")
    nothing = prepare("--data", str(only_bad), "--output", str(tmp_path / "none"))
    assert nothing.returncode == 1 and "Traceback" not in nothing.stderr
    assert nothing.stderr.strip().startswith("error: no preference pairs or ratings loaded (dropped records: "
                                             "{'malformed_record': 1})")  # fmt: skip
    missing = prepare("--data", str(data), "--rejected", "self", "--output", str(tmp_path / "x"))
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("error: --rejected self needs --rejected_model DIR")
