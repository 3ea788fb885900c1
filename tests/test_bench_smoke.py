"""Smoke test: every benchmark script runs in --quick mode on a tiny size and writes the agreed JSON shape.

The scripts run as the README shows them: ``python -m bench.NAME`` from the repository root.

Only the shape is checked (machine, contenders with their headline metric, ratios) — never the numbers, which
belong to bench/RESULTS.md.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

CASES = {
    "preprocess": (
        ["--scale", "200", "--scrub-pii", "--vocab-size", "400", "--contenders", "ours", "seed_style",
         "--baseline-max-seconds", "2", "--num-proc", "1"],
        {"ours": "dialogues_per_s", "seed_style": "dialogues_per_s"},
    ),
    "train_throughput": (
        ["--size", "tiny", "--tokens", "400", "--limit-dialogues", "200", "--eval-dialogues", "10", "--evals", "1",
         "--vocab-size", "400", "--trl-configs", "padding", "--trl-probe-tokens", "200",
         "--seed-style-max-seconds", "3", "--batch-size", "8"],
        {"seed_style": "useful_tokens_per_s", "trl": "useful_tokens_per_s", "reference": "useful_tokens_per_s",
         "ours_dynamic": "useful_tokens_per_s", "ours_packed": "useful_tokens_per_s"},
    ),
    "generate": (
        ["--sizes", "tiny", "--prompts", "2", "--repeats", "1", "--tokens", "4"],
        {"seed": "latency_ms_p50", "fast": "latency_ms_p50"},
    ),
    "pii_speed": (["--repeats", "1"], {"chatbotdata": "utterances_per_s", "pii_only": "utterances_per_s"}),
    "serve_load": (
        ["--sessions", "4", "--messages", "1", "--max-seconds", "60", "--batch-sizes", "1", "4"],
        {"tiny_b1_s4": "latency_ms_p50", "tiny_b4_s4": "latency_ms_p50"},
    ),
}


@pytest.mark.parametrize("script", sorted(CASES))
def test_bench_script_quick(script: str, tmp_path: Path) -> None:
    args, expected = CASES[script]
    out = tmp_path / f"{script}.json"
    env = {**os.environ, "CHATHUMAN_BENCH_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "hf")}
    proc = subprocess.run([sys.executable, "-m", f"bench.{script}", "--quick", *args, "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert {"machine", "contenders", "ratios"} <= set(result)
    assert result["machine"]["nproc"] >= 1 and result["machine"]["cpu_model"]
    for name, metric in expected.items():
        if name == "trl" and importlib.util.find_spec("trl") is None:
            continue  # TRL is the `bench` extra, not a dev dependency: the script reports it as skipped
        assert name in result["contenders"], f"{script}: contender {name} missing: {sorted(result['contenders'])}"
        entry = result["contenders"][name]
        assert entry.get("status", "ok") == "ok", f"{script}/{name}: {entry}"
        assert isinstance(entry[metric], float) and entry[metric] > 0, f"{script}/{name}: {metric}={entry.get(metric)}"
        assert "peak_rss_mb" in entry
    assert f"-m bench.{script} --quick" in result["command"], result["command"]  # the command as typed
    md = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "| contender |" in md


def test_train_throughput_llama_shape_and_variant(tmp_path: Path) -> None:
    """`--arch llama` trains a Llama-family model with GPT-2's 12·d² matmul weights per layer; a variant is a run."""
    out = tmp_path / "train.json"
    env = {**os.environ, "CHATHUMAN_BENCH_CACHE": str(tmp_path / "cache"), "HF_DATASETS_CACHE": str(tmp_path / "hf")}
    args = ["--quick", "--arch", "llama", "--size", "tiny", "--budgets", "300", "200", "--limit-dialogues", "120",
            "--eval-dialogues", "8", "--evals", "1", "--vocab-size", "400", "--batch-size", "8", "--contenders",
            "ours_packed", "--variant", "fused:optim=adamw_torch_fused", "--seeds", "2", "--out", str(out)]
    proc = subprocess.run([sys.executable, "-m", "bench.train_throughput", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    small = json.loads((tmp_path / "train_200.json").read_text(encoding="utf-8"))  # one result per --budgets value
    assert small["settings"]["useful_token_budget"] == 200
    result = json.loads((tmp_path / "train_300.json").read_text(encoding="utf-8"))
    assert not out.exists()
    packed = result["contenders"]["ours_packed"]  # the median and the seed spread
    assert len(packed["heldout_ppl_per_seed"]) == 2 and packed["heldout_ppl_spread"] >= 0
    assert packed["heldout_ppl_range"].count("–") == 1
    settings = result["settings"]
    assert settings["arch"] == "llama" and settings["variants"] == {"fused": {"optim": "adamw_torch_fused"}}
    # 2 layers × 12 · 64² matmul weights + 5 RMSNorm vectors of 64 + the tied vocab × 64 LM head
    assert settings["matmul_params"] == 2 * 12 * 64 * 64 + 5 * 64 + settings["vocab_size"] * 64
    assert list(result["contenders"]) == ["ours_packed", "ours_packed+fused"]
    for entry in result["contenders"].values():
        assert entry["budget_reached"] and entry["heldout_assistant_ppl"] > 1
    assert result["ratios"]["ours_packed+fused_vs_ours_packed_tokens_per_s"] > 0


SCRIPTS = sorted(p.stem for p in (REPO / "bench").glob("*.py") if 'if __name__ == "__main__":' in p.read_text())


def test_every_bench_script_runs_as_a_module_without_path_hacks() -> None:
    """``python -m bench.NAME --help`` for every script (one process); no bench module edits ``sys.path``."""
    assert {"lora", "preprocess", "serve_load", "train_throughput"} <= set(SCRIPTS)
    siblings = "|".join(p.stem for p in (REPO / "bench").glob("*.py")) + "|baselines"
    bare_import = re.compile(rf"^\s*(?:from|import) (?:{siblings})\b", re.M)  # would need bench/ on sys.path
    for path in sorted((REPO / "bench").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "sys.path.insert" not in text and "sys.path.append" not in text, path
        assert "python bench/" not in text, f"{path}: usage lines read python -m bench.NAME"
        assert not bare_import.findall(text), f"{path}: import bench modules as bench.NAME"
    code = ("import importlib, sys\n"
            "for name in sys.argv[1:]:\n"
            "    try:\n"
            "        importlib.import_module('bench.' + name).main(['--help'])\n"
            "    except SystemExit as exc:\n"
            "        assert exc.code == 0, (name, exc.code)\n")
    proc = subprocess.run([sys.executable, "-c", code, *SCRIPTS], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in SCRIPTS:
        assert f"usage: python -m bench.{name} " in proc.stdout, name
