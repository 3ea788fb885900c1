"""LoRA benchmark: full fine-tuning vs LoRA, and our LoRA vs TRL ``SFTTrainer`` with the same PEFT config.

    python -m bench.lora --quick --out bench/results/lora_quick.json
    python -m bench.lora --out bench/results/lora.json
    python -m bench.lora --seeds 3 --out bench/results/lora_3seeds.json   # medians over 3 data-order seeds

A tiny Llama base (its tokenizer already has ``<usr>``/``<sys>``: no token is added) is first trained in full on
one half of the dialogues (ChatbotData when ``../shared`` has it, else the embedded sample), so the adapters start
from a model that knows the language. Every contender then trains on the other half from that base, with the same
data order, batch size, learning rate and budget of useful (non-pad) tokens, each in its own process (clean peak
RSS):

- ``full_ft``: ours, all weights (``--packing``);
- ``lora``: ours, ``--use_peft`` (``--packing``), and ``lora_unpacked`` (dynamic padding, random order);
- ``trl_lora``: TRL ``SFTTrainer(peft_config=...)`` with the same ``LoraConfig``, assistant-only loss through a
  ``{% generation %}`` template, its default padding collator.

Reported per contender: trainable parameters, optimizer-state bytes, peak RSS, useful tokens/s (training time only)
and held-out assistant perplexity (``ChatTrainer.evaluate``, the same code for every contender).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import CHATBOT_CSV, REPO, child_env, median, ratio
from bench.lora_contenders import dialogues, one_run
from bench.machine import machine_info

CONTENDERS = ("full_ft", "lora", "lora_unpacked", "trl_lora")


def build_base(args, work: Path) -> Path:
    """Tokenizer trained on the pretraining half, tiny Llama from a config, trained in full on that half."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from chathuman_hf.tokens.tokenizer_training import train_tokenizer

    base = work / "base"
    if (base / "model.safetensors").is_file():
        return base
    pre, _, _ = dialogues(args)
    tok = train_tokenizer([m["content"] for d in pre for m in d], vocab_size=args.vocab_size)
    config = AutoConfig.for_model("llama", vocab_size=len(tok), hidden_size=args.hidden,
                                  intermediate_size=2 * args.hidden,
                                  num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=4,
                                  max_position_embeddings=args.max_length, pad_token_id=tok.pad_token_id,
                                  bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    tmp = work / "untrained"
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    run_contender("pretrain", args, work, base=tmp, out=base)
    return base


def run_contender(
    name: str, args, work: Path, *, base: Path, out: Path | None = None, seed: int = 0
) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.lora", "--run", name, "--base", str(base), "--work", str(work),
           "--seed", str(seed), *args.passthrough]
    if out is not None:
        cmd += ["--save", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=child_env())
    if proc.returncode != 0:
        return {"status": "failed", "error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One contender over the seeds: the median of every number (the first failure, if any run failed)."""
    failed = [r for r in runs if r.get("status") != "ok"]
    if failed:
        return failed[0]
    return {"status": "ok", **{key: median(r[key] for r in runs) for key in runs[0] if key != "status"}}


def markdown(result: dict[str, Any]) -> str:
    rows = ["| contender | trainable params | share % | optimizer state MB | peak RSS MB | useful tok/s | "
            "held-out assistant ppl | steps |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in result["contenders"].items():
        if r.get("status") != "ok":
            rows.append(f"| {name} | {r.get('status')}: {r.get('error')} |||||||")
            continue
        rows.append(f"| {name} | {r['trainable_params']:,} | {r['trainable_share']} | {r['optimizer_state_mb']} | "
                    f"{r['peak_rss_mb']} | {r['useful_tokens_per_s']:,} | {r['heldout_assistant_perplexity']} | "
                    f"{r['steps']} |")
    if result.get("seeds", 1) > 1:
        rows += ["", f"medians over {result['seeds']} data-order seeds; held-out assistant ppl per seed: " + "; ".join(
            f"{name} " + ", ".join(str(r.get("heldout_assistant_perplexity")) for r in runs)
            for name, runs in result["per_seed"].items())]
    rows += ["", "ratios: " + ", ".join(f"{k} = {v:.2f}" for k, v in result["ratios"].items() if v is not None)]
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    p = argparse.ArgumentParser(prog="python -m bench.lora", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="Small sizes for a smoke run (seconds to a few minutes).")
    p.add_argument("--out", default="bench/results/lora.json")
    p.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    p.add_argument("--run", default=None, help=argparse.SUPPRESS)
    p.add_argument("--base", default=None, help=argparse.SUPPRESS)
    p.add_argument("--work", default=None, help=argparse.SUPPRESS)
    p.add_argument("--save", default=None, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--seeds", type=int, default=1,
                   help="Data-order seeds (0..N-1; same base and LoRA init): per-seed rows and medians.")
    for flag, default, kind in (("--tokens", 30000, int), ("--pretrain-tokens", 60000, int),
                                ("--train-dialogues", 2000, int), ("--eval-dialogues", 200, int),
                                ("--hidden", 128, int), ("--layers", 2, int), ("--vocab-size", 3000, int),
                                ("--max-length", 128, int), ("--batch-size", 16, int), ("--lr", 1.0e-3, float),
                                ("--lora-lr", 4.0e-3, float), ("--lora-r", 16, int), ("--threads", 2, int)):
        p.add_argument(flag, type=kind, default=default)
    ns = p.parse_args(argv)
    if ns.quick:
        for key, value in (("tokens", 12000), ("pretrain_tokens", 20000), ("train_dialogues", 400),
                           ("eval_dialogues", 60), ("hidden", 64), ("vocab_size", 1000)):
            if getattr(ns, key) == p.get_default(key):
                setattr(ns, key, value)
    if ns.run:
        print(json.dumps(one_run(ns.run, ns)))
        return None
    keys = ("tokens", "pretrain_tokens", "train_dialogues", "eval_dialogues", "hidden", "layers", "vocab_size",
            "max_length", "batch_size", "lr", "lora_lr", "lora_r", "threads")
    ns.passthrough = [x for k in keys for x in (f"--{k.replace('_', '-')}", str(getattr(ns, k)))]
    work = Path(tempfile.mkdtemp(prefix="bench_lora_"))
    t0 = time.perf_counter()
    base = build_base(ns, work)
    result: dict[str, Any] = {"machine": machine_info(), "settings": {k: getattr(ns, k) for k in keys},
                              "data": str(CHATBOT_CSV) if CHATBOT_CSV.exists() else "embedded sample",
                              "contenders": {}}
    per_seed: dict[str, list[dict[str, Any]]] = {name: [] for name in ns.contenders}
    for seed in range(ns.seeds):  # interleaved: a slow spell of the machine hits every contender alike
        for name in ns.contenders:
            per_seed[name].append(run_contender(name, ns, work, base=base, seed=seed))
            print(f"seed {seed}", name, per_seed[name][-1], flush=True)
    result["seeds"] = ns.seeds
    result["per_seed"] = per_seed
    result["contenders"] = {name: medians(runs) for name, runs in per_seed.items()}
    c = result["contenders"]

    def get(name: str, key: str) -> float | None:
        return c.get(name, {}).get(key)

    result["ratios"] = {
        "lora_vs_trl_useful_tokens_per_s": ratio(get("lora", "useful_tokens_per_s"),
                                                 get("trl_lora", "useful_tokens_per_s")),
        "lora_vs_trl_heldout_ppl": ratio(get("lora", "heldout_assistant_perplexity"),
                                         get("trl_lora", "heldout_assistant_perplexity")),
        "lora_unpacked_vs_trl_useful_tokens_per_s": ratio(get("lora_unpacked", "useful_tokens_per_s"),
                                                          get("trl_lora", "useful_tokens_per_s")),
        "lora_unpacked_vs_trl_heldout_ppl": ratio(get("lora_unpacked", "heldout_assistant_perplexity"),
                                                  get("trl_lora", "heldout_assistant_perplexity")),
        "lora_vs_full_optimizer_state": ratio(get("lora", "optimizer_state_mb"), get("full_ft", "optimizer_state_mb")),
        "lora_vs_full_useful_tokens_per_s": ratio(get("lora", "useful_tokens_per_s"),
                                                  get("full_ft", "useful_tokens_per_s")),
        "lora_vs_full_heldout_ppl": ratio(get("lora", "heldout_assistant_perplexity"),
                                          get("full_ft", "heldout_assistant_perplexity")),
    }
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    out = Path(ns.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
