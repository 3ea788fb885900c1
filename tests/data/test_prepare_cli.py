"""recipes/prepare.py as a subprocess: outputs, per-source counts, error lines, exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures" / "every_format"


def prepare(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(REPO / "recipes" / "prepare.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=120)


def test_every_format_folder(tmp_path: Path) -> None:
    folder = tmp_path / "inputs"
    shutil.copytree(FIXTURES, folder)
    (folder / "windows_qa.csv").write_bytes("Q,A\n점심 뭐 먹지,김치찌개 어때요\n".encode("cp949"))
    result = prepare("--data", str(folder), "--format", "auto", "--output", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    expected = {
        "aihub_sns.json": 1,
        "aihub_summary.json": 2,
        "aihub_topic/topic-1.json": 1,
        "aihub_topic/topic-2.json": 1,
        "chat.jsonl": 2,
        "conversation.csv": 2,
        "kakao_android.txt": 1,
        "kakao_ios.txt": 1,
        "kakao_pc.txt": 2,
        "qa.tsv": 2,
        "sharegpt.json": 1,
        "windows_qa.csv": 1,
    }
    assert report["sources"] == {str(folder / name): n for name, n in expected.items()}
    assert report["dialogues"] == 17
    assert report["files"][str(folder / "windows_qa.csv")] == {"format": "qa_table", "encoding": "cp949", "records": 1}
    assert report["files"][str(folder / "aihub_summary.json")]["encoding"] == "utf-8-sig"
    assert report["dropped"] == {
        "empty_after_cleaning": 1,
        "kakao_system_line": 4,
        "photo_utterance": 1,
        "trailing_user_turn": 4,
    }
    assert report["turns"]["min"] == 2 and report["turns"]["max"] == 4
    assert set(report["chars"]) == {"min", "mean", "median", "max"}
    lines = (tmp_path / "out" / "dialogues.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 17
    assert set(json.loads(lines[0])) == {"messages", "source", "dialogue_id"}
    assert "kept dialogues per source" in result.stdout and "kakao_system_line" in result.stdout


def test_default_is_embedded_sample_with_config(tmp_path: Path) -> None:
    config = tmp_path / "data.yaml"
    config.write_text("role_swap: false\nname_seed: 7\n", encoding="utf-8")
    result = prepare("--config", str(config), "--output", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["dialogues"] >= 150
    assert all(source.startswith("sample_data/") for source in report["sources"])


def test_config_unknown_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("learning_rate: 2.0e-05\n", encoding="utf-8")
    result = prepare("--config", str(config), "--output", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {config}: unknown key 'learning_rate'")


def test_strict_exits_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "chat.jsonl"
    good = '{"messages": [{"role": "user", "content": "안녕"}, {"role": "assistant", "content": "반가워"}]}\n'
    data.write_text(good + '{"messages": [{"role": "user"}]}\n', encoding="utf-8")
    strict = prepare("--data", str(data), "--strict", "--output", str(tmp_path / "strict"))
    assert strict.returncode == 1  # bad data: 1, as in every recipe (chathuman_hf.core.cli)
    errors = [line for line in strict.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {data}: line 2: messages[0].content is NoneType, expected a string (strict mode; 1 problem(s) in all)"
    ]
    assert "Traceback" not in strict.stderr
    assert not (tmp_path / "strict").exists()


def test_nothing_loads_exits_nonzero(tmp_path: Path) -> None:
    data = tmp_path / "broken.json"
    data.write_text('{"data": [', encoding="utf-8")
    result = prepare("--data", str(data), "--output", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"first problem: {data}: invalid JSON at line 1" in result.stderr


def test_missing_path_and_unknown_format(tmp_path: Path) -> None:
    missing = prepare("--data", str(tmp_path / "nothing_here"), "--output", str(tmp_path / "out"))
    assert missing.returncode == 1
    assert (
        missing.stderr.strip()
        == f"error: {tmp_path / 'nothing_here'}: no such file or folder (expected a file, a folder or a glob)"
    )
    unknown = prepare("--data", str(FIXTURES / "chat.jsonl"), "--format", "yaml", "--output", str(tmp_path / "o"))
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("error: unknown format 'yaml'")


def test_output_is_required(tmp_path: Path) -> None:
    result = prepare("--data", str(FIXTURES / "chat.jsonl"))
    assert result.returncode == 2
    assert "--output DIR is required" in result.stderr
