"""recipes/chat.py driven through a pipe (stdin not a terminal): one reply per message, skills, 초기화, quit."""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys

import pytest


def run_chat(repo_root, model_dir, stdin: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, str(repo_root / "recipes" / "chat.py"), "--model", str(model_dir), "--preset", "greedy",
           "--max-new-tokens", "6", "--disabled", "weather", "stock", *extra]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=180, env=env, cwd=repo_root)


def test_chat_through_a_pipe(repo_root, tiny_model_dir):
    result = run_chat(repo_root, tiny_model_dir,
                      "지금 몇 시야\n\n로또 번호 뽑아줘\n안녕\ndkssud\n초기화\nquit\n이 줄은 읽지 않아요\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 5, result.stdout
    assert lines[0].startswith("지금은 한국 시간으로 ") and lines[0].endswith("이에요.")
    numbers = [int(n) for n in lines[1].split(": ")[1].split(".")[0].split(", ")]
    assert len(set(numbers)) == 6 and numbers == sorted(numbers)
    assert lines[2].strip()  # the model's reply
    assert lines[3] == "한/영 전환이 안 된 것 같아요. 이렇게 쓰려던 거죠? “안녕”"
    assert lines[4] == "대화를 초기화했어요. 처음부터 다시 이야기해요!"
    assert "대화를 시작해요" in result.stderr  # the welcome goes to stderr when piped


def load_recipe(repo_root):
    spec = importlib.util.spec_from_file_location("chat_recipe", repo_root / "recipes" / "chat.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chat_ends_at_end_of_input_without_skills(repo_root, tiny_model_dir, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("지금 몇 시야\n초기화\n"))
    recipe = load_recipe(repo_root)
    assert recipe.main(["--model", str(tiny_model_dir), "--preset", "greedy", "--max-new-tokens", "4",
                        "--no-skills"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert not lines[0].startswith("지금은 한국 시간으로")  # the model answered, not the time skill
    assert lines[1] == "대화를 초기화했어요. 처음부터 다시 이야기해요!"  # 초기화 still works


def test_chat_reports_a_bad_model_dir(repo_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved model directory"):
        load_recipe(repo_root).main(["--model", str(tmp_path)])
