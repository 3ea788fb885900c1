"""``lm-eval --model local-completions`` scores a small local log-likelihood task against the server's
``/v1/completions`` (echo + logprobs) and gets what lm-eval's own ``hf`` model gets from the same weights."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from chathuman_hf.serving import create_app
from chathuman_hf.serving.runner import serve_in_thread

TASK = Path(__file__).parent / "data" / "lm_eval_task"
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def run_lm_eval(tmp_path: Path, name: str, model: str, model_args: str) -> dict:
    out = tmp_path / name
    command = [shutil.which("lm-eval"), "run", "--model", model, "--model_args", model_args, "--tasks",
               "ko_daily_reply", "--include_path", str(tmp_path / "task"), "--output_path", str(out),
               "--log_samples", "--batch_size", "1"]
    done = subprocess.run(command, cwd=tmp_path / "task", capture_output=True, text=True, timeout=600,
                          env={"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin",
                               "TOKENIZERS_PARALLELISM": "false"})
    assert done.returncode == 0, done.stderr[-3000:]
    (results,) = out.rglob("results_*.json")
    (samples,) = out.rglob("samples_ko_daily_reply_*.jsonl")
    scores = [json.loads(line)["filtered_resps"] for line in samples.read_text().splitlines()]
    return {"acc": json.loads(results.read_text())["results"]["ko_daily_reply"]["acc,none"], "scores": scores}


def test_lm_eval_local_completions_scores_like_lm_evals_hf_model(tiny_model_dir, tmp_path):
    if shutil.which("lm-eval") is None:
        pytest.skip("lm-eval is not installed (pip install -e \".[eval]\")")
    shutil.copytree(TASK, tmp_path / "task")
    app = create_app(tiny_model_dir, preset="greedy", max_batch_size=4)
    with serve_in_thread(app) as url:
        served = run_lm_eval(tmp_path, "served", "local-completions",
                             f"base_url={url}/v1/completions,model={tiny_model_dir.name},tokenizer={tiny_model_dir},"
                             "tokenizer_backend=huggingface,num_concurrent=1,max_retries=1")
    local = run_lm_eval(tmp_path, "local", "hf", f"pretrained={tiny_model_dir},dtype=float32")
    assert served["acc"] == local["acc"] and len(served["scores"]) == 4 and len(served["scores"][0]) == 3
    for ours, theirs in zip(served["scores"], local["scores"], strict=True):
        assert [float(a[0]) for a in ours] == pytest.approx([float(b[0]) for b in theirs], abs=1e-3)
