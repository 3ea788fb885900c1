"""Resume: a run SIGKILLed after its first checkpoint and resumed with ``auto`` ends like an uninterrupted run."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from chathuman_hf.training.checkpoints import checkpoint_problem, latest_complete_checkpoint, resolve_resume

TINY = ["--model_type", "gpt2", "--config_overrides", "n_layer=2,n_embd=32,n_head=2,n_positions=128",
        "--train-tokenizer", "--vocab-size", "800", "--max-length", "96", "--num_train_epochs", "3",
        "--per_device_train_batch_size", "8", "--learning_rate", "2.0e-03", "--generation_prompts", "2",
        "--save_total_limit", "3", "--logging_steps", "5", "--disable_tqdm", "true", "--seed", "7"]


def env():
    import os

    return dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def start(repo_root, out, *extra):
    cmd = [sys.executable, str(repo_root / "recipes/train.py"), *TINY, "--output_dir", str(out), *extra]
    log = open(out.parent / f"{out.name}.log", "w")  # noqa: SIM115 - closed by the caller through proc.log
    proc = subprocess.Popen(cmd, env=env(), cwd=repo_root, stdout=log, stderr=subprocess.STDOUT)
    proc.log = log
    return proc


def finish(proc, timeout=240):
    rc = proc.wait(timeout=timeout)
    proc.log.close()
    return rc


def results(out):
    evals = json.loads((out / "eval_results.json").read_text())
    state = json.loads((out / "trainer_state.json").read_text())
    return evals["eval_loss"], state["global_step"]


def test_sigkill_after_first_checkpoint_then_resume_auto(tmp_path, repo_root):
    full, killed = tmp_path / "full", tmp_path / "killed"
    uninterrupted = start(repo_root, full)  # runs on the other core while the second run is killed and resumed
    victim = start(repo_root, killed)
    deadline = time.time() + 180
    first = None
    while time.time() < deadline and victim.poll() is None:
        done = [p for p in killed.glob("checkpoint-*") if checkpoint_problem(p) is None] if killed.exists() else []
        if done:
            first = min(done, key=lambda p: int(p.name.split("-")[1]))
            victim.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    finish(victim)
    assert first is not None, (tmp_path / "killed.log").read_text()[-3000:]
    assert victim.returncode == -signal.SIGKILL
    assert not (killed / "eval_results.json").exists()  # it really died before the end
    # a half-written later checkpoint (weights, no trainer_state.json) must be ignored by auto
    step = int(first.name.split("-")[1])
    half = killed / f"checkpoint-{step * 10}"
    half.mkdir(exist_ok=True)
    shutil.copy(first / "model.safetensors", half / "model.safetensors")
    assert resolve_resume("auto", killed) == latest_complete_checkpoint(killed) != str(half)

    resumed = start(repo_root, killed, "--resume_from_checkpoint", "auto")
    assert finish(resumed) == 0, (tmp_path / "killed.log").read_text()[-3000:]
    assert finish(uninterrupted) == 0, (tmp_path / "full.log").read_text()[-3000:]
    log = (tmp_path / "killed.log").read_text()
    assert f"Ignoring {half}" in log and "Resuming from" in log
    loss_full, step_full = results(full)
    loss_resumed, step_resumed = results(killed)
    assert step_resumed == step_full
    assert loss_resumed == pytest.approx(loss_full, abs=1e-4)
    # train_loss is the whole run's mean, not only the resumed steps'
    train_full, train_resumed = (
        json.loads((o / "train_results.json").read_text())["train_loss"] for o in (full, killed)
    )
    assert train_resumed == pytest.approx(train_full, rel=1e-4)


def test_checkpoint_completeness_rules(tmp_path):
    good = tmp_path / "checkpoint-4"
    good.mkdir()
    for name in ("model.safetensors", "optimizer.pt", "scheduler.pt", "training_args.bin"):
        (good / name).write_bytes(b"x")
    (good / "trainer_state.json").write_text(json.dumps({"global_step": 4}))
    assert checkpoint_problem(good) is None
    torn = tmp_path / "checkpoint-8"
    shutil.copytree(good, torn)
    (torn / "trainer_state.json").write_text('{"global_st')
    assert "not valid JSON" in checkpoint_problem(torn)
    wrong = tmp_path / "checkpoint-12"
    shutil.copytree(good, wrong)
    assert "says step 4" in checkpoint_problem(wrong)
    assert latest_complete_checkpoint(tmp_path) == str(good)
    assert resolve_resume(None, tmp_path) is None
    assert resolve_resume("auto", tmp_path / "nothing-here") is None
    with pytest.raises(ValueError, match="not valid JSON"):
        resolve_resume(str(torn), tmp_path)
