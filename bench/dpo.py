"""DPO benchmark: our preference stage (``ChatDPOTrainer``: TRL's ``DPOTrainer`` loss on our inference-form token
rows, forwards padding-free) vs TRL's ``DPOTrainer`` tokenizing the same conversational pairs itself (padded), same
batch, settings (fp32 as ``recipes/train.py`` on a CPU; ``--bf16`` for TRL's default), model init and data order.

    python -m bench.dpo --quick --out bench/results/dpo_quick.json
    python -m bench.dpo --seeds 3 --out bench/results/dpo.json

Pairs: ChatbotData (``../shared``; else the embedded sample) through ``load_preferences`` with ``--rejected other``
(each reply chosen, a reply from elsewhere rejected). Shapes: the 125M GPT-2 shape (``kogpt2``) and the tiny Llama
shape of ``bench.bench_models``, random init from one seed, our ``<usr>``/``<sys>`` template. Each contender and seed
runs in its own process (clean peak RSS). Reported: useful (non-pad) tokens/s over training time, peak RSS, the loss
at step 0 (ln 2 = 0.6931 for both: policy == reference) and the mean loss of the run. ``--contenders ... ours_padded``
adds our stage with ``--padding_free false`` (what packing alone buys).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import CHATBOT_CSV, SAMPLE_DIR, child_env, median, ratio
from bench.machine import machine_info
from bench.writers import write_results

CONTENDERS = ("ours", "trl", "ours_padded")
SHAPES = {"gpt2_125m": ("gpt2", "kogpt2"), "llama_tiny": ("llama", "tiny")}


def pairs(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` conversational pairs from ChatbotData (or the sample) via ``--rejected other``."""
    from chathuman_hf.data import DataArguments
    from chathuman_hf.data.preferences import load_preferences

    source = CHATBOT_CSV if CHATBOT_CSV.exists() else SAMPLE_DIR / "qa.csv"
    rows = load_preferences(DataArguments(data=[str(source)], rejected="other", rejected_seed=seed)).pairs
    return rows.shuffle(seed=seed).select(range(min(n, len(rows)))).to_list()


def build_base(work: Path, shape: str, rows: list[dict[str, Any]]) -> Path:
    """A randomly initialised model of ``shape`` with a tokenizer trained on the pairs, saved under ``work``."""
    import torch
    from transformers import AutoModelForCausalLM

    from bench.bench_models import build_config
    from bench.bench_tokenizer import bench_tokenizer

    texts = [m["content"] for r in rows for part in ("prompt", "chosen", "rejected") for m in r[part]]
    tok = bench_tokenizer(texts, 8000)
    arch, size = SHAPES[shape]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(build_config(arch, size, tok))
    path = work / shape
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def one_run(contender: str, base: Path, data: Path, seed: int, args: argparse.Namespace, work: Path) -> dict:
    """Train one contender in this process; its measurements."""
    import time

    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from bench.peak_memory import PeakRSS
    from chathuman_hf.tokens.preference_rows import tokenize_pairs
    from chathuman_hf.training.preference import ChatDPOTrainer

    rows = Dataset.from_list(json.loads(data.read_text(encoding="utf-8")))
    tok = AutoTokenizer.from_pretrained(base)
    config = DPOConfig(output_dir=str(work / f"{contender}-{seed}"), per_device_train_batch_size=args.batch_size,
                       max_steps=args.steps, learning_rate=5e-6, max_length=args.max_length, seed=seed,
                       data_seed=seed, logging_steps=1, logging_first_step=True, report_to="none",
                       save_strategy="no", gradient_checkpointing=False, use_cpu=True, disable_tqdm=True,
                       bf16=args.bf16)
    with PeakRSS() as rss:
        model = AutoModelForCausalLM.from_pretrained(base)
        if contender.startswith("ours"):
            rows = tokenize_pairs(rows, tok, max_length=args.max_length)
            trainer = ChatDPOTrainer(model=model, args=config, train_dataset=rows, processing_class=tok,
                                     padding_free=contender == "ours")
        else:
            trainer = DPOTrainer(model=model, args=config, train_dataset=rows, processing_class=tok)
        start, cpu = time.perf_counter(), time.process_time()
        result = trainer.train()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    tokens = trainer._total_train_tokens  # attention-mask sum over every training batch (TRL's num_tokens)
    return {"useful_tokens": tokens, "train_seconds": round(seconds, 3),
            "useful_tokens_per_s": round(tokens / seconds, 1), "cpu_seconds": round(cpu, 3),
            "useful_tokens_per_cpu_s": round(tokens / cpu, 1), "peak_rss_mb": round(rss.peak_mb, 1),
            "loss_step0": round(losses[0], 6), "mean_loss": round(result.training_loss, 6)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.dpo", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="Seeds (data order, one process per contender).")
    parser.add_argument("--steps", type=int, default=12, help="Optimizer steps per run.")
    parser.add_argument("--batch_size", type=int, default=8, help="Pairs per step.")
    parser.add_argument("--max_length", type=int, default=128, help="Tokens per prompt + reply.")
    parser.add_argument("--pairs", type=int, default=400, help="Pairs drawn from the data.")
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--contenders", nargs="+", default=["ours", "trl"], choices=list(CONTENDERS))
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of each run (1: steadier on a "
                        "loaded machine).")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (TRL's DPOConfig default; fp32 without).")
    parser.add_argument("--quick", action="store_true", help="1 seed, 3 steps, the tiny Llama only.")
    parser.add_argument("--out", default="bench/results/dpo.json")
    parser.add_argument("--child", nargs=4, metavar=("CONTENDER", "BASE", "DATA", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.steps, args.shapes = 1, 3, ["llama_tiny"]
    if args.child:
        contender, base, data, seed = args.child
        print(json.dumps(one_run(contender, Path(base), Path(data), int(seed), args, Path(base).parent)))
        return {}
    machine = machine_info()
    results: dict[str, Any] = {"contenders": {}, "ratios": {}, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = pairs(args.pairs, 0)
        data = work / "pairs.json"
        data.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        for shape in args.shapes:
            base = build_base(work, shape, rows)
            runs: dict[str, list[dict]] = {c: [] for c in args.contenders}
            for seed in range(args.seeds):  # contenders alternate within a seed: load drift hits them alike
                for contender in args.contenders:
                    cmd = [sys.executable, "-m", "bench.dpo", "--child", contender, str(base), str(data), str(seed),
                           "--steps", str(args.steps), "--batch_size", str(args.batch_size),
                           "--max_length", str(args.max_length)] + (["--bf16"] if args.bf16 else [])
                    proc = subprocess.run(cmd, env=child_env(OMP_NUM_THREADS=str(args.threads)), capture_output=True,
                                          text=True)
                    if proc.returncode:
                        raise RuntimeError(proc.stderr[-3000:])
                    runs[contender].append(json.loads(proc.stdout.strip().splitlines()[-1]))
                    print(shape, contender, seed, runs[contender][-1], file=sys.stderr, flush=True)
            for contender, done in runs.items():
                results["runs"][f"{shape}/{contender}"] = done
                results["contenders"][f"{shape}/{contender}"] = {k: median(r[k] for r in done) for k in done[0]}
            if {"ours", "trl"} <= set(runs):
                ours, trl = (results["contenders"][f"{shape}/{c}"] for c in ("ours", "trl"))
                results["ratios"][f"{shape} tokens/s ours/trl"] = ratio(ours["useful_tokens_per_s"],
                                                                        trl["useful_tokens_per_s"])
                results["ratios"][f"{shape} tokens/CPU-s ours/trl"] = ratio(ours["useful_tokens_per_cpu_s"],
                                                                            trl["useful_tokens_per_cpu_s"])
                results["ratios"][f"{shape} peak RSS ours/trl"] = ratio(ours["peak_rss_mb"], trl["peak_rss_mb"])
                results["ratios"][f"{shape} max |step-0 loss ours - trl|"] = max(
                    abs(o["loss_step0"] - t["loss_step0"]) for o, t in zip(runs["ours"], runs["trl"], strict=True))
    results["machine"] = machine
    results["settings"] = {k: v for k, v in vars(args).items() if k != "child"}
    write_results(args.out, results, title="DPO: ours vs TRL DPOTrainer (medians over seeds)",
                  notes=["ours = ChatDPOTrainer: TRL's DPOTrainer loss on our token rows, forwards padding-free "
                         "(chathuman_hf.training.packed_preference); ours_padded = the same with padding_free=False; "
                         "trl = DPOTrainer tokenizing the pairs itself, padded."])
    print(json.dumps({"contenders": results["contenders"], "ratios": results["ratios"]}, indent=2))
    return results


if __name__ == "__main__":
    main()
