"""A real two-process data-parallel CPU run of recipes/train.py (gloo): different shards, one loadable output."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

TINY = ["--model_type", "gpt2", "--config_overrides", "n_layer=2,n_embd=32,n_head=2,n_positions=128",
        "--train-tokenizer", "--vocab-size", "800", "--max-length", "96", "--max_steps", "6",
        "--per_device_train_batch_size", "4", "--eval_strategy", "steps", "--eval_steps", "6", "--save_strategy",
        "steps", "--save_steps", "6", "--generation_prompts", "2", "--disable_tqdm", "true"]


def free_port() -> int:
    """A port the OS just handed out on the loopback interface (never a fixed one another job may hold)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gloo_env() -> dict[str, str]:
    # GLOO_SOCKET_IFNAME=lo keeps gloo on loopback; one thread per process on a 2-core machine.
    return dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo", PYTHONUNBUFFERED="1")


def check_two_rank_output(out, logs):
    shards = [json.loads((out / "_shards" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [s["world_size"] for s in shards] == [2, 2]
    rows0, rows1 = (set(s["rows"]) for s in shards)
    assert len(shards[0]["rows"]) == len(shards[1]["rows"]) == 6 * 4  # max_steps x per-device batch
    assert rows0 and rows1 and not rows0 & rows1  # the ranks trained on different examples
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    assert sorted(p.name for p in out.glob("*.safetensors")) == ["model.safetensors"]
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.get_input_embeddings().weight.shape[0] >= len(tokenizer)
    assert json.loads((out / "eval_results.json").read_text())["eval_tokens"] > 0


def test_two_process_cpu_data_parallel_with_accelerate(tmp_path, repo_root):
    if shutil.which("accelerate") is None:
        pytest.skip("the accelerate command is not on PATH")
    out = tmp_path / "ddp"
    cmd = ["accelerate", "launch", "--config_file", str(repo_root / "accelerate_configs/multi_cpu.yaml"),
           "--main_process_ip", "127.0.0.1", "--main_process_port", str(free_port()),
           str(repo_root / "tests/shard_probe.py"), *TINY, "--output_dir", str(out)]
    proc = subprocess.run(cmd, env=gloo_env(), cwd=repo_root, capture_output=True, text=True, timeout=240)
    logs = proc.stdout + proc.stderr
    assert proc.returncode == 0, logs[-4000:]
    check_two_rank_output(out, logs)


@pytest.mark.slow
def test_two_process_cpu_data_parallel_with_torchrun(tmp_path, repo_root):
    out = tmp_path / "torchrun"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), str(repo_root / "tests/shard_probe.py"), *TINY, "--output_dir",
           str(out)]
    proc = subprocess.run(cmd, env=gloo_env(), cwd=repo_root, capture_output=True, text=True, timeout=240)
    logs = proc.stdout + proc.stderr
    assert proc.returncode == 0, logs[-4000:]
    check_two_rank_output(out, logs)
