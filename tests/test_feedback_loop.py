"""From the feedback log to a model: ``prepare.py`` on a log the real writer wrote, then ``train.py --stage kto`` on
what it wrote (subprocesses, a tiny model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from chathuman_hf.data.feedback_log import FeedbackLog
from tests.helpers.tiny_models import make_tiny_llama_dir

QUESTIONS = ["안녕하세요", "오늘 뭐 해?", "배고파", "잘 자", "심심해", "날씨 좋다", "피곤해", "커피 마실래?"]
GOOD = ["반가워요!", "같이 놀아요.", "밥 먹으러 가요.", "좋은 꿈 꾸세요.", "산책 어때요?", "그러게요, 나가요.",
        "푹 쉬세요.", "좋아요!"]


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _write_log(path: Path) -> None:
    page = FeedbackLog(path, model="chatbot", revision="r1", source="page")
    for i, question in enumerate(QUESTIONS[:6]):
        page.rating(_user(question), GOOD[i], 1, conversation=f"good-{i}", reply_id="1")
        if i % 2 == 0:  # a 👎 on another reply to the same question: one pair with the 👍
            page.rating(_user(question), "몰라", -1, conversation=f"bad-{i}", reply_id="1")
    page.pair(_user(QUESTIONS[6]), GOOD[6], "싫어", how="edit", conversation="edit", reply_id="1")
    page.rating(_user(QUESTIONS[7]), GOOD[7], -1, conversation="again", reply_id="1")
    page.rating(_user(QUESTIONS[7]), GOOD[7], 1, conversation="again", reply_id="1")  # changed their mind


def _run(repo_root: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    command = [sys.executable, str(repo_root / "recipes" / script), *args]
    return subprocess.run(command, env=env, cwd=repo_root, capture_output=True, text=True, timeout=300)


def test_log_to_prepare_to_kto_to_a_saved_model(repo_root: Path, tmp_path: Path) -> None:
    log = tmp_path / "feedback.jsonl"
    _write_log(log)
    prepared = tmp_path / "prepared"
    proc = _run(repo_root, "prepare.py", "--data", str(log), "--output", str(prepared))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((prepared / "report.json").read_text(encoding="utf-8"))
    assert report["records"] == {"read": 12, "kept": 11, "dropped": {"re_rated": 1}}
    assert report["preferences"]["pairs"] == 4 and report["preferences"]["ratings"] == 4  # 3 from opposite ratings

    base = make_tiny_llama_dir(tmp_path / "base")
    out = tmp_path / "kto"
    proc = _run(repo_root, "train.py", "--stage", "kto", "--model_name_or_path", str(base), "--data",
                str(prepared / "ratings.jsonl"), str(prepared / "preferences.jsonl"), "--output_dir", str(out),
                "--max-length", "64", "--report_to", "none", "--disable_tqdm", "true", "--eval_split", "0",
                "--per_device_train_batch_size", "4", "--max_steps", "2", "--eval_strategy", "no",
                "--load_best_model_at_end", "false", "--save_strategy", "no", "--learning_rate", "1e-3")  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    stats = json.loads((out / "report.json").read_text(encoding="utf-8"))["preference"]
    # 4 ratings (3 👍 left over, the 👍 given after a 👎) + 4 pairs unpaired: 8 👍, 4 👎
    assert (stats["stage"], stats["train_desirable"], stats["train_undesirable"]) == ("kto", 8, 4)
    from safetensors.torch import load_file

    before, after = load_file(base / "model.safetensors"), load_file(out / "model.safetensors")
    assert any(not after[name].equal(before[name]) for name in before)  # the saved model was trained
