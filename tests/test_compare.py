"""recipes/compare.py: every label mode under the same budget, one fair leaderboard and a PNG of eval curves."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from chathuman_hf.evaluation.leaderboard import RunSummary, render_leaderboard

TINY = ["--model_type", "gpt2", "--config_overrides", "n_layer=2,n_embd=32,n_head=2,n_positions=128",
        "--vocab-size", "800", "--max-length", "96", "--per_device_train_batch_size", "16",
        "--generation_prompts", "2", "--disable_tqdm", "true"]


def run_compare(repo_root, out, *extra, timeout):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(repo_root / "recipes/compare.py"), "--config",
           str(repo_root / "recipes/configs/quickstart.yaml"), "--output_dir", str(out), *extra]
    proc = subprocess.run(cmd, env=env, cwd=repo_root, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))


def test_leaderboard_ranks_by_assistant_perplexity():
    runs = [
        RunSummary("input", [2.5, 2.0], 1.9, 30.0, 0.0, 1.0, 61.0, 40, ["응 좋아", ""]),
        RunSummary("-100", [3.9, 3.7], 3.6, 25.0, 0.5, 0.5, 58.4, 40, ["", "몰라"]),
    ]
    text = render_leaderboard(runs, prompts=("안녕", "뭐 해?"))
    rows = [line for line in text.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")]
    assert rows == [
        "| 1 | `-100` | 3.900 → 3.700 | 3.600 | 25.00 | 50% | 50% | 40 | 58 s |",
        "| 2 | `input` | 2.500 → 2.000 | 1.900 | 30.00 | 0% | 100% | 40 | 61 s |",
    ]
    assert "- `-100`: (empty)" in text and "- `input`: 응 좋아" in text


def test_compare_two_modes_tiny(tmp_path, repo_root):
    out = tmp_path / "compare"
    runs = run_compare(repo_root, out, "--modes", "input", "shift", *TINY, "--num_train_epochs", "1",
                       "--conversation_metrics", "false", timeout=300)  # their columns: test_conversation_metrics.py
    assert [r["mode"] for r in runs] == ["input", "shift"]
    assert (out / "eval_curves.png").read_bytes()[:4] == b"\x89PNG"
    board = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert "| `input` |" in board and "| `shift` |" in board
    for r in runs:
        assert len(r["train_loss_per_epoch"]) == 1 and len(r["eval_history"]) == 1
    # shift done right is the input objective: same init, data and budget give the same model
    assert runs[0]["eval_assistant_perplexity"] == pytest.approx(runs[1]["eval_assistant_perplexity"], rel=1e-4)
    assert runs[0]["samples"] == runs[1]["samples"]


@pytest.mark.slow
def test_compare_all_modes_on_the_quickstart_config(tmp_path, repo_root):
    out = tmp_path / "compare"
    runs = run_compare(repo_root, out, "--disable_tqdm", "true", timeout=1500)
    assert sorted(r["mode"] for r in runs) == sorted(["input", "-100", "-100+sys", "shift"])
    assert all(r["eval_assistant_perplexity"] > 1 for r in runs)


@pytest.mark.slow
def test_compare_with_speech_control_adds_a_control_run(tmp_path, repo_root):
    pytest.importorskip("kiwipiepy")
    out = tmp_path / "compare"
    runs = run_compare(repo_root, out, "--modes=-100+sys", "--speech_control", *TINY, "--num_train_epochs", "1",
                       "--selection_contexts", "10", timeout=900)
    assert [r["mode"] for r in runs] == ["-100+sys", "-100+sys+control"]
    base, control = runs
    assert "eval_speech_control_plain" not in base["conversation"]
    for level in ("plain", "polite"):  # nan when a 1-epoch tiny model gives no reply with a determined level
        share = control["conversation"][f"eval_speech_control_{level}"]
        assert share != share or 0 <= share <= 1
    evals = json.loads((out / "m100_plus_sys_plus_control" / "eval_results.json").read_text(encoding="utf-8"))
    assert evals["eval_speech_control_prompts"] > 0 and 0 <= evals["eval_speech_control_plain_undetermined"] <= 1
    report = json.loads((out / "m100_plus_sys_plus_control" / "report.json").read_text(encoding="utf-8"))
    assert report["speech_level_balance"]["added"] > 0 and "speech_levels" in report
    assert "반말 when asked" in (out / "leaderboard.md").read_text(encoding="utf-8")
    # evaluate.py on the control run: held-out replies get their instruction again, the metric is computed
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(repo_root / "recipes/evaluate_model.py"), "--model",
           str(out / "m100_plus_sys_plus_control"),
           "--selection_contexts", "5", "--speech_control_prompts", "3", "--output", str(tmp_path / "m.json")]
    proc = subprocess.run(cmd, env=env, cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    assert metrics["eval_speech_control_prompts"] == 3 and "eval_speech_control_polite_undetermined" in metrics
