"""``recipes/train.py --stage dpo|kto`` end to end on a tiny model (subprocess), and its one-line refusals."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.tiny_models import make_tiny_llama_dir
from tests.test_cli_errors import run_entry_point

QUESTIONS = ["안녕하세요", "오늘 뭐 해?", "배고파", "잘 자", "심심해", "날씨 좋다", "주말에 뭐 했어?", "피곤해",
             "영화 추천해 줘", "노래 들을래?", "운동 했어?", "커피 마실래?"]
GOOD = ["반가워요!", "같이 놀아요.", "밥 먹으러 가요.", "좋은 꿈 꾸세요.", "산책 어때요?", "그러게요, 나가요.",
        "영화 봤어요.", "푹 쉬세요.", "인터스텔라 어때요?", "좋아요, 틀어 줘요.", "네, 뛰었어요.", "좋아요!"]


def _turn(role: str, text: str) -> list[dict]:
    return [{"role": role, "content": text}]


@pytest.fixture(scope="module")
def stage_inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pref_stage")
    base = make_tiny_llama_dir(root / "base")
    pairs, ratings = root / "prefs.jsonl", root / "ratings.jsonl"
    with pairs.open("w", encoding="utf-8") as f:
        for i, q in enumerate(QUESTIONS):
            row = {"prompt": _turn("user", q), "chosen": _turn("assistant", GOOD[i]),
                   "rejected": _turn("assistant", "몰라" if i % 2 else "싫어" + "요" * i)}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    with ratings.open("w", encoding="utf-8") as f:  # 12 👍, 4 👎
        for i, q in enumerate(QUESTIONS):
            f.write(json.dumps({"prompt": _turn("user", q), "completion": _turn("assistant", GOOD[i]),
                                "label": True}, ensure_ascii=False) + "\n")
            if i % 3 == 0:
                f.write(json.dumps({"prompt": _turn("user", q), "completion": _turn("assistant", "몰라" + "요" * i),
                                    "label": False}, ensure_ascii=False) + "\n")
    return {"base": base, "pairs": pairs, "ratings": ratings}


def _run(repo_root: Path, args: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(repo_root / "recipes/train.py"), *args, "--max-length", "64", "--report_to", "none",
           "--disable_tqdm", "true", "--logging_steps", "1", "--per_device_train_batch_size", "4",
           "--eval_split", "0.25"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    return subprocess.run(cmd, env=env, cwd=repo_root, capture_output=True, text=True, timeout=300)


def test_dpo_stage_runs_and_says_what_it_did(stage_inputs, repo_root, tmp_path):
    out = tmp_path / "dpo"
    proc = _run(repo_root, ["--stage", "dpo", "--model_name_or_path", str(stage_inputs["base"]), "--data",
                            str(stage_inputs["pairs"]), "--output_dir", str(out), "--max_steps", "3",
                            "--eval_strategy", "steps", "--eval_steps", "3", "--save_strategy", "steps",
                            "--save_steps", "3", "--learning_rate", "1e-3", "--push_to_hub", "--hub_model_id",
                            "me/dpo-test"])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "DPO reference: a frozen copy of the starting model; it equals the starting policy" in proc.stdout
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert history[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)  # policy == reference at step 0
    evals = [h for h in history if "eval_rewards/accuracies" in h]
    assert evals and "eval_rewards/margins" in evals[0]
    report = json.loads((out / "report.json").read_text())
    assert report["preference"] == {"stage": "dpo", "train_pairs": 9, "eval_pairs": 3}
    card = (out / "README.md").read_text()
    for line in ("| stage | dpo |", "| beta | 0.1 |", "| loss_type | sigmoid |", "| train_pairs | 9 |", "- dpo"):
        assert line in card
    assert (out / "model.safetensors").is_file() and (out / "chat_window.json").is_file()
    assert (out / "checkpoint-3").is_dir()
    assert "ready to push to me/dpo-test; not uploading" in proc.stdout + proc.stderr  # HF_HUB_OFFLINE: prepared
    assert card.splitlines()[card.splitlines().index("---", 1) + 2] == "# dpo-test"


def test_stage_options_come_from_the_yaml_config_too(tmp_path):
    from chathuman_hf.training.parsing import parse_stage_args

    config = tmp_path / "dpo.yaml"
    config.write_text("stage: dpo\nbeta: 0.2\nloss_type: ipo\nsft_weight: 0.5\n", encoding="utf-8")
    *_, stage = parse_stage_args(["--config", str(config), "--output_dir", str(tmp_path / "o")])
    assert (stage.stage, stage.beta, stage.loss_type, stage.sft_weight) == ("dpo", 0.2, "ipo", 0.5)
    *_, stage = parse_stage_args(["--config", str(config), "--beta", "0.05", "--output_dir", str(tmp_path / "o")])
    assert stage.beta == 0.05  # the command line wins
    config.write_text("stage: dpo\nbetta: 0.2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown key 'betta'"):
        parse_stage_args(["--config", str(config)])


@pytest.mark.slow
def test_kto_stage_weights_the_rarer_label(stage_inputs, repo_root, tmp_path):
    out = tmp_path / "kto"
    proc = _run(repo_root, ["--stage", "kto", "--model_name_or_path", str(stage_inputs["base"]), "--data",
                            str(stage_inputs["ratings"]), "--output_dir", str(out), "--max_steps", "2",
                            "--eval_strategy", "no", "--load_best_model_at_end", "false", "--save_strategy", "no"])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    stats = json.loads((out / "report.json").read_text())["preference"]
    assert stats["stage"] == "kto" and stats["train_desirable"] + stats["train_undesirable"] == 12
    weight = stats["train_desirable"] / stats["train_undesirable"]
    assert f"desirable_weight 1, undesirable_weight {weight:.4g}" in proc.stdout
    assert f"| undesirable_weight | {round(weight, 4)} |" in (out / "README.md").read_text()


def test_preference_stage_mistakes_are_one_line(stage_inputs, repo_root, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    only_good = tmp_path / "good.jsonl"
    only_good.write_text("\n".join(json.dumps({"prompt": _turn("user", q), "completion": _turn("assistant", g),
                                               "label": True}, ensure_ascii=False)
                                   for q, g in zip(QUESTIONS, GOOD, strict=True)) + "\n", encoding="utf-8")
    long_prompts = tmp_path / "long.jsonl"
    long_rows = [{"prompt": _turn("user", f"{q} " * 40), "chosen": _turn("assistant", g),
                  "rejected": _turn("assistant", "몰라")} for q, g in zip(QUESTIONS[:3], GOOD, strict=False)]
    long_prompts.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in long_rows), encoding="utf-8")
    base = ["--max-length", "64", "--model_name_or_path", str(stage_inputs["base"]),
            "--output_dir", str(tmp_path / "o"), "--report_to", "none"]
    cases = {
        "--beta must be > 0, got 0.0": ["--stage", "dpo", "--beta", "0", *base, "--data", str(stage_inputs["pairs"])],
        "--sft_weight must be >= 0": ["--stage", "dpo", "--sft_weight", "-1", *base],
        "--packing belongs to --stage sft": ["--stage", "dpo", "--packing", *base, "--data",
                                             str(stage_inputs["pairs"])],
        "A preference stage starts from a trained model": [
            "--stage", "dpo", "--model_type", "gpt2", "--tokenizer_name", str(stage_inputs["base"]), "--data",
            str(stage_inputs["pairs"]), "--output_dir", str(tmp_path / "o"), "--report_to", "none"],
        "--stage dpo trains on preference pairs (prompt, chosen, rejected) and --data has none": [
            "--stage", "dpo", *base, "--data", str(stage_inputs["ratings"])],
        "--stage kto needs both 👍 and 👎 replies; the training data has": [
            "--stage", "kto", *base, "--data", str(only_good), "--eval_split", "0"],
        "No training row is left: every prompt of the 3 rows is at least --max-length 64 tokens long": [
            "--stage", "orpo", *base, "--data", str(long_prompts), "--eval_split", "0"],
    }
    for expected, argv in cases.items():
        code, err = run_entry_point(repo_root, "train", argv, capsys)
        assert code != 0, expected
        assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], (expected, err)
