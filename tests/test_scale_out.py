"""Scale-out engines: FSDP wraps each model's own blocks; DeepSpeed ZeRO-2/3 on two CPU processes (gloo) train
like DDP, save sharded checkpoints, survive SIGKILL + ``--resume_from_checkpoint auto`` and end in a safetensors
model that ``pipeline`` loads; FSDP2 does the same on the CPU, where accelerate alone would silently train DDP."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from accelerate.utils import FullyShardedDataParallelPlugin

from chathuman_hf.models.build import build_model
from chathuman_hf.training.checkpoints import checkpoint_problem
from chathuman_hf.training.scale_out import engine_problem
from tests.helpers.families import TINY_FAMILY_CONFIGS
from tests.test_distributed import free_port, gloo_env

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "accelerate_configs"
# fine-tuning a saved base (conftest's tiny_model_dir): from scratch, ZeRO-3 initialises the random weights inside
# deepspeed.zero.Init (partitioned), so they differ from DDP's (step-1 loss off by 4e-3, measured)
RUN = ["--max-length", "96", "--max_steps", "12",
       "--per_device_train_batch_size", "4", "--eval_strategy", "steps", "--eval_steps", "6", "--save_strategy",
       "steps", "--save_steps", "6", "--logging_steps", "1", "--generation_prompts", "2", "--disable_tqdm", "true"]
CPU_OVERRIDES = ["--mixed_precision", "no", "--main_process_ip", "127.0.0.1"]
@pytest.mark.parametrize("family", sorted(TINY_FAMILY_CONFIGS))
def test_fsdp_config_wraps_each_models_own_blocks(family):
    fsdp = yaml.safe_load((CONFIGS / "fsdp.yaml").read_text())["fsdp_config"]
    for path in CONFIGS.glob("*.yaml"):  # no shipped config names one architecture's layer class
        assert "transformer_layer_cls_to_wrap" not in path.read_text(), path
    plugin = FullyShardedDataParallelPlugin(
        fsdp_version=fsdp["fsdp_version"], auto_wrap_policy=fsdp["fsdp_auto_wrap_policy"].lower(),
        transformer_cls_names_to_wrap=fsdp.get("fsdp_transformer_layer_cls_to_wrap"))
    model = build_model(model_type=family, config_overrides={**TINY_FAMILY_CONFIGS[family], "vocab_size": 64},
                        guards=False)
    plugin.set_auto_wrap_policy(model)
    expected = {"gpt2": "GPT2Block", "llama": "LlamaDecoderLayer", "qwen2": "Qwen2DecoderLayer",
                "gemma3_text": "Gemma3DecoderLayer", "exaone4": "Exaone4DecoderLayer"}[family]
    assert plugin.transformer_cls_names_to_wrap == [expected] == sorted(model._no_split_modules)
    wrapped = [name for name, m in model.named_modules() if plugin.auto_wrap_policy(m, False, 0)]
    assert len(wrapped) == 2 and all(type(model.get_submodule(n)).__name__ == expected for n in wrapped)


def test_every_shipped_accelerate_config_loads_and_the_docs_say_how_it_is_tested():
    from accelerate.commands.config.config_args import load_config_from_file

    guide = (REPO / "docs/scaling-out.md").read_text(encoding="utf-8")
    exercised = guide[guide.index("## What is tested"):]
    shipped = sorted(CONFIGS.glob("*.yaml"))
    assert len(shipped) == 9
    for path in shipped:
        config = load_config_from_file(str(path))  # accelerate's own loader: every key known, types right
        assert config.num_processes >= 1 and config.mixed_precision in ("no", "bf16"), path.name
        assert f"`{path.name}`" in exercised, f"docs/scaling-out.md's tested table does not mention {path.name}"


def test_fsdp1_on_cpu_is_refused_in_one_line_and_fsdp2_is_not():
    fsdp1 = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "1"}
    assert engine_problem("DistributedType.MULTI_CPU", fsdp1) == (
        "FSDP version 1 was requested on a CPU-only machine, where only FSDP2 is supported: set fsdp_version: 2 "
        "(accelerate_configs/fsdp_cpu.yaml), or use multi_cpu.yaml (DDP).")
    assert engine_problem("MULTI_CPU", dict(fsdp1, FSDP_VERSION="2")) is None
    assert engine_problem("MULTI_GPU", fsdp1) is None
    assert engine_problem("MULTI_CPU", {}) is None


def launch(config: str, base: Path, out: Path, *extra: str, overrides=CPU_OVERRIDES) -> subprocess.Popen:
    cmd = ["accelerate", "launch", "--config_file", str(CONFIGS / config), *overrides, "--main_process_port",
           str(free_port()), str(REPO / "recipes/train.py"), "--model_name_or_path", str(base), *RUN,
           "--output_dir", str(out), *extra]
    log = open(f"{out}.log", "w")  # noqa: SIM115 - closed in finish()
    proc = subprocess.Popen(cmd, env=gloo_env(), cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    proc.log = log
    return proc


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher and every rank (torchrun starts each rank in its own session: killing the launcher's
    process group alone leaves the ranks training on)."""
    import psutil

    try:
        family = [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]
    except psutil.NoSuchProcess:
        return
    for p in family:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=30)


def finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            kill_tree(proc)
        proc.log.close()
    return Path(proc.log.name).read_text()


def step_losses(out: Path) -> dict[int, float]:
    state = json.loads((out / "trainer_state.json").read_text())
    return {e["step"]: e["loss"] for e in state["log_history"] if "loss" in e}


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, tiny_model_dir) -> Path:
    out = tmp_path_factory.mktemp("ddp") / "out"
    logs = finish(launch("multi_cpu.yaml", tiny_model_dir, out))
    assert (out / "model.safetensors").exists(), logs[-3000:]
    return out


def kill_after_first_checkpoint(proc: subprocess.Popen, out: Path) -> Path:
    deadline = time.time() + 500
    while time.time() < deadline and proc.poll() is None:
        done = [p for p in out.glob("checkpoint-*") if checkpoint_problem(p) is None] if out.exists() else []
        if done:
            kill_tree(proc)
            return done[0]
        time.sleep(0.02)
    raise AssertionError(finish(proc)[-3000:])


NO_DEEPSPEED = importlib.util.find_spec("deepspeed") is None
NEEDS_DEEPSPEED = pytest.mark.skipif(NO_DEEPSPEED, reason="pip install -e '.[deepspeed]'")
ENGINES = [
    # FSDP2 on two CPU processes: ~35 s, in the default suite
    "fsdp_cpu.yaml",
    pytest.param("deepspeed_zero2.yaml", marks=[NEEDS_DEEPSPEED, pytest.mark.slow(reason="~40 s, JIT-built op")]),
    pytest.param("deepspeed_zero3.yaml", marks=[NEEDS_DEEPSPEED, pytest.mark.slow(reason="~40 s, JIT-built op")]),
]
SHARD_FILES = {  # what one checkpoint holds per rank: the engine really sharded (a DDP checkpoint has one model file)
    "fsdp_cpu.yaml": ("pytorch_model_fsdp_0", ["__0_0.distcp", "__1_0.distcp"]),
    "deepspeed_zero2.yaml": ("global_step6", [f"zero_pp_rank_{r}_mp_rank_00_optim_states.pt" for r in (0, 1)]),
    "deepspeed_zero3.yaml": ("global_step6", [f"zero_pp_rank_{r}_mp_rank_00_{kind}_states.pt"
                                              for r in (0, 1) for kind in ("model", "optim")]),
}


def generates(model_dir: Path) -> None:
    """The consolidated model is ordinary safetensors that ``pipeline`` loads and generates with."""
    from transformers import pipeline

    chat = pipeline("text-generation", model=str(model_dir))
    reply = chat([{"role": "user", "content": "안녕"}], max_new_tokens=4)[0]["generated_text"][-1]
    assert reply["role"] == "assistant"


@pytest.mark.parametrize("config", ENGINES)
def test_sharded_engine_trains_like_ddp(tmp_path, tiny_model_dir, ddp_run, config):
    full = tmp_path / "full"
    logs = finish(launch(config, tiny_model_dir, full))
    assert (full / "model.safetensors").exists(), logs[-3000:]
    # same losses as the DDP run of the same command (measured: ZeRO-2 identical, ZeRO-3 within 5e-7 per step,
    # FSDP2 within 4.8e-7)
    ddp, sharded = step_losses(ddp_run), step_losses(full)
    assert sorted(sharded) == sorted(ddp) == list(range(1, 13))
    assert max(abs(sharded[s] - ddp[s]) for s in ddp) < 1e-4, (sharded, ddp)
    assert checkpoint_problem(full / "checkpoint-6") is None
    folder, files = SHARD_FILES[config]
    names = sorted(p.name for p in (full / "checkpoint-6" / folder).iterdir())
    assert [n for n in names if n in files] == sorted(files), names
    if config == "fsdp_cpu.yaml":  # Trainer keeps no full copy in a sharded FSDP checkpoint
        assert not (full / "checkpoint-6" / "model.safetensors").exists()
        assert "FSDP2 on the CPU over 2 processes" in logs
    generates(full)


@pytest.mark.slow(reason="a killed and a resumed 2-process launch per engine plus a reference (~2 min each)")
@pytest.mark.parametrize("config", ["fsdp_cpu.yaml", *ENGINES[1:]])
def test_sharded_engine_resumes_after_sigkill(tmp_path, tiny_model_dir, config):
    full, killed = tmp_path / "full", tmp_path / "killed"
    logs = finish(launch(config, tiny_model_dir, full))
    assert (full / "model.safetensors").exists(), logs[-3000:]
    victim = launch(config, tiny_model_dir, killed)
    first = kill_after_first_checkpoint(victim, killed)
    finish(victim)
    assert first.name == "checkpoint-6" and not (killed / "checkpoint-12").exists()
    assert not (killed / "model.safetensors").exists()  # every rank died before the end
    logs = finish(launch(config, tiny_model_dir, killed, "--resume_from_checkpoint", "auto"))
    assert "Resuming from" in logs and (killed / "model.safetensors").exists(), logs[-3000:]
    assert json.loads((killed / "trainer_state.json").read_text())["global_step"] == 12
    resumed, uninterrupted = step_losses(killed), step_losses(full)
    assert abs(resumed[12] - uninterrupted[12]) < 1e-4, (resumed, uninterrupted)
    generates(killed)


@pytest.mark.slow(reason="two 2-process LoRA launches (~30 s each)")
def test_lora_under_fsdp2_saves_the_adapter_ddp_saves(tmp_path, tiny_model_dir):
    from safetensors.torch import load_file

    lora = ("--use_peft", "--lora_r", "4")
    runs = {name: tmp_path / name for name in ("fsdp_cpu.yaml", "multi_cpu.yaml")}
    for config, out in runs.items():
        logs = finish(launch(config, tiny_model_dir, out, *lora))
        assert (out / "adapter_model.safetensors").exists() and not (out / "model.safetensors").exists(), logs[-3000:]
    fsdp, ddp = (runs[c] for c in ("fsdp_cpu.yaml", "multi_cpu.yaml"))
    assert (fsdp / "checkpoint-6" / "pytorch_model_fsdp_0").is_dir()  # it really ran sharded
    # measured: per-step losses and adapter weights identical to DDP's
    assert max(abs(step_losses(fsdp)[s] - step_losses(ddp)[s]) for s in range(1, 13)) < 1e-5
    a, b = load_file(fsdp / "adapter_model.safetensors"), load_file(ddp / "adapter_model.safetensors")
    assert sorted(a) == sorted(b) and all("lora_" in k for k in a)
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    generates(fsdp)


def test_gpu_check_without_a_gpu_stops_with_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: bench/gpu_check.sh would run the GPU rows")
    proc = subprocess.run(["bash", str(REPO / "bench/gpu_check.sh"), str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    assert proc.stderr.startswith("gpu_check: no CUDA GPU is visible") and proc.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_gpu_check_without_the_data_stops_with_one_line_before_any_gpu_time(tmp_path):
    """A copy of the repository with no ../shared beside it (as on a bare GPU machine): one line, exit 2."""
    script = tmp_path / "repo" / "bench" / "gpu_check.sh"
    script.parent.mkdir(parents=True)
    script.write_bytes((REPO / "bench/gpu_check.sh").read_bytes())
    proc = subprocess.run(["bash", str(script), str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    assert proc.stderr == (f"gpu_check: {tmp_path}/shared/data/ChatbotData.csv is missing: the throughput row trains "
                           "on it; put ChatbotData.csv (11,823 Q/A pairs) there\n")
    assert not (tmp_path / "out").exists()
