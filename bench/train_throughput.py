"""Training throughput and quality at equal useful tokens: seed-style loop vs TRL SFTTrainer vs ours.

    python -m bench.train_throughput [--quick] [--arch gpt2 llama] [--size small|kogpt2] [--device cpu|cuda] [--bf16] \
        [--variant NAME:key=value,...] --out results/train.json

Every contender starts from the same random init (same config: GPT-2, or a Llama-family model of the same matmul
parameter count, ``bench_models.py``; several ``--arch`` run in turn, each into ``<out>_<arch>.json``), sees the
same tokenized dialogues (ChatbotData + the embedded sample) under the same tokenizer, label mode, learning rate
and examples per step, and trains until the same number of useful (non-pad) tokens has gone through the forward
pass, counted by one forward pre-hook on the model. Held-out assistant perplexity is measured by one function for
everyone at fixed token marks, so the curve also gives the wall-clock time to a fixed perplexity target. Contenders:

- ``seed_style``: plain PyTorch loop, every example padded to 256 (``bench/baselines/seed_train.py``);
- ``trl``: TRL ``SFTTrainer`` on conversational ``messages`` with assistant-only loss (a ``{% generation %}``
  template variant written here) in the best configuration that ran (``--trl-configs`` are all tried first);
- ``reference``: our features + collator + Trainer, plain random order, dynamic padding (the quality yardstick);
- ``ours_dynamic``: the same with length-grouped batches (``train_sampling_strategy="group_by_length"``);
- ``ours_packed``: exact packing of a shuffled stream (``pack_dataset``), 4-D block-diagonal mask;
- ``ours_packed+NAME`` (``--variant NAME:key=value,...``): ours_packed with TrainingArguments overrides (e.g.
  ``torch_compile=true``, ``optim=adamw_torch_fused``, ``bf16=true``; ``threads=N`` sets torch's intra-op threads for
  that run; ``rows=N`` trains N packed rows per step instead of the rows that hold the examples per step;
  ``order_offset=K`` takes another data order, seed + K), interleaved with the others in the same process so that
  ratios to ``ours_packed`` are fair.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.bench_models import SIZES, build_config, matmul_params, shape
from bench.common import median
from bench.machine import machine_info, mm_peak_flops
from bench.train_contenders import TRL_NOT_ELIGIBLE, one_run
from bench.train_data import attention_context, encode_all, load_messages, split
from bench.train_options import build_parser
from bench.train_report import aggregate, ratios_and_targets, with_best_trl
from bench.writers import write_results


def main(argv: list[str] | None = None) -> None:
    p = build_parser(__doc__.split("\n")[0])
    a = p.parse_args(argv)
    if a.budgets and a.tokens:
        p.error("--tokens and --budgets: pass one of them")
    budgets = a.budgets or [a.tokens or (30_000 if a.quick else 300_000)]
    for arch in a.arch:
        for budget in budgets:
            out = Path(a.out)
            tag = f"{budget // 1000}k" if budget % 1000 == 0 else str(budget)
            suffix = (f"_{arch}" if len(a.arch) > 1 else "") + (f"_{tag}" if len(budgets) > 1 else "")
            run_shape(a, arch, out.with_name(f"{out.stem}{suffix}{out.suffix}"), budget)


def run_shape(a: argparse.Namespace, arch: str, out: Path, budget_tokens: int) -> None:
    """Every contender on one model shape and token budget; results to `out` (.json + .md)."""
    n_seeds = a.seeds or (1 if a.quick else 3)
    seed_cap = a.seed_style_max_seconds if a.seed_style_max_seconds is not None else (25.0 if a.quick else None)
    probe_tokens = a.trl_probe_tokens or max(budget_tokens // 5, 2000)
    probe_cap = 6.0 if a.quick else 60.0  # seconds of training per TRL configuration probe

    import copy

    import datasets
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    from bench.bench_tokenizer import bench_tokenizer, tokenizer_origin

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    if a.threads:
        torch.set_num_threads(a.threads)
    machine = machine_info()
    dtype = torch.bfloat16 if a.bf16 else torch.float32
    mm_n = 2048 if a.device == "cpu" else 8192
    peak = mm_peak_flops(device=a.device, dtype=dtype, n=mm_n)

    dialogues = load_messages()
    train_msgs, eval_msgs = split(dialogues, 0.05)
    if a.limit_dialogues:
        train_msgs = train_msgs[: a.limit_dialogues]
    eval_msgs = eval_msgs[: a.eval_dialogues or (250 if a.quick else 600)]
    tok = bench_tokenizer([m["content"] for d in dialogues for m in d], a.vocab_size)
    train_examples = encode_all(train_msgs, tok, a.max_length)
    eval_examples = encode_all(eval_msgs, tok, a.max_length)
    lengths = [len(ids) for ids, _ in train_examples]
    mean_len = sum(lengths) / len(lengths)

    size = SIZES[arch][a.size]
    config = build_config(arch, a.size, tok)
    torch.manual_seed(0)
    init = AutoModelForCausalLM.from_config(config)
    init_state = copy.deepcopy(init.state_dict())
    n_params, mm_params = matmul_params(init)
    n_layer, d_model = shape(config)
    ctx_len = attention_context(lengths)
    flops_per_token = 6 * mm_params + 6 * 2 * n_layer * d_model * ctx_len
    del init

    # equal tokens per optimizer step for everyone: whole packed rows, and the example count that fills them
    packed_rows = max(1, round(a.batch_size * mean_len / (a.max_length * 0.99)))
    batch_size = max(1, round(packed_rows * a.max_length * 0.99 / mean_len))

    def fresh_model():
        m = AutoModelForCausalLM.from_config(config)
        m.load_state_dict(init_state)
        return m.to(a.device)

    ctx = {
        "tok": tok, "tok_copy": lambda: copy.deepcopy(tok), "device": a.device, "bf16": a.bf16,
        "train_msgs": train_msgs, "train_examples": train_examples, "eval_examples": eval_examples,
        "label_mode": a.label_mode, "lr": a.lr, "batch_size": batch_size, "max_length": a.max_length,
        "packed_batch": packed_rows,
        "fresh_model": fresh_model, "flops_per_token": flops_per_token, "mm_peak": peak["peak_flops"],
    }

    trl_probe: dict[str, Any] = {}
    trl_finalists: list[str] = []
    if "trl" in a.contenders:
        for cfg in a.trl_configs:
            print(f"[train] probing TRL config {cfg}", flush=True)
            r = one_run("trl", cfg, {**ctx, "order_seed": 0}, probe_tokens, 1, probe_cap)
            r.pop("curve", None)
            r["eligible"] = cfg not in TRL_NOT_ELIGIBLE
            if cfg in TRL_NOT_ELIGIBLE:
                r["why_not_eligible"] = TRL_NOT_ELIGIBLE[cfg]
            trl_probe[cfg] = r
        ok = {c: r for c, r in trl_probe.items() if r["status"] == "ok" and r["eligible"]}
        trl_finalists = sorted(ok, key=lambda c: -ok[c]["useful_tokens_per_s"])[: a.trl_finalists]

    # run names: contenders, with `trl` replaced by one run per TRL finalist configuration (`trl_<config>`)
    run_names = [n for n in a.contenders if n != "trl"]
    if "trl" in a.contenders:
        run_names[1:1] = [f"trl_{cfg}" for cfg in trl_finalists]
    variants = dict(a.variant)
    run_names += [f"ours_packed+{v}" for v in variants]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in run_names}
    for seed in range(n_seeds):
        for name in run_names:
            print(f"[train] seed {seed} contender {name}", flush=True)
            cap = seed_cap if name == "seed_style" else None
            trl_cfg = name[4:] if name.startswith("trl_") else None
            kind, _, vname = name.partition("+")
            run_ctx = {**ctx, "order_seed": seed, "variant": variants.get(vname, {})}
            r = one_run("trl" if trl_cfg else kind, trl_cfg, run_ctx, budget_tokens, a.evals, cap)
            r["order_seed"] = seed
            runs[name].append(r)
            print(f"[train] seed {seed} {name}: {r['status']}, held-out ppl {r.get('heldout_assistant_ppl')}, "
                  f"{r.get('useful_tokens_per_s')} useful tok/s, {r.get('steps')} steps", flush=True)

    # the mm peak again after the runs: other processes on a shared machine lower it; keep the higher one
    peak_end = mm_peak_flops(device=a.device, dtype=dtype, n=mm_n)
    peak["peak_flops_start"], peak["peak_flops_end"] = peak["peak_flops"], peak_end["peak_flops"]
    if peak_end["peak_flops"] > peak["peak_flops"]:
        peak["peak_flops"] = peak_end["peak_flops"]
        for rs in runs.values():
            for r in rs:
                if r.get("useful_model_flops_per_s"):
                    r["mfu_vs_mm_peak"] = r["useful_model_flops_per_s"] / peak["peak_flops"]
    ref_ppls = [r["heldout_assistant_ppl"] for r in runs.get("reference", []) if r.get("budget_reached")]
    target = a.ppl_target or (1.10 * median(ref_ppls) if ref_ppls else None)
    contenders = aggregate(runs, target, a.seed_tokens_per_dialogue)
    contenders = with_best_trl(contenders, trl_finalists, trl_probe, "trl" in a.contenders, variants)
    ratios, targets = ratios_and_targets(contenders, variants)
    result = {
        "machine": machine,
        "settings": {
            "arch": arch, "size": a.size, "config": size, "params": n_params, "matmul_params": mm_params,
            "variants": variants, "threads": torch.get_num_threads(),
            "vocab_size": len(tok), "tokenizer": tokenizer_origin(tok), "label_mode": a.label_mode, "lr": a.lr,
            "batch_size_requested": a.batch_size, "batch_size": batch_size, "packed_batch_rows": packed_rows,
            "max_length": a.max_length,
            "useful_token_budget": budget_tokens, "seeds": n_seeds, "train_dialogues": len(train_msgs),
            "eval_dialogues": len(eval_msgs), "mean_example_tokens": mean_len, "attention_context": ctx_len,
            "flops_per_useful_token": flops_per_token, "device": a.device, "bf16": a.bf16,
            "seed_style_max_seconds": seed_cap, "ppl_target": target, "trl_probe_tokens": probe_tokens,
            "seed_tokens_per_dialogue": a.seed_tokens_per_dialogue,
        },
        "mm_peak": peak,
        "trl_configs": trl_probe,
        "contenders": contenders,
        "ratios": ratios,
        "targets": targets,
    }
    cols = ["contender", "useful_tokens_per_s", "pad_share", "heldout_assistant_ppl", "heldout_ppl_range",
            "heldout_ppl_spread", "time_to_target_s",
            "mfu_vs_mm_peak", "peak_rss_mb", "useful_tokens", "train_s", "budget_reached", "seeds", "trl_config",
            "projected_seed_workload_h"]
    notes = [
        f"{config.model_type} {size}, {n_params / 1e6:.1f}M params ({mm_params / 1e6:.2f}M in matmuls), "
        f"vocab {len(tok)}, label mode {a.label_mode}, lr {a.lr}, "
        f"{batch_size} examples/step ≈ {packed_rows} packed rows of {a.max_length} (equal tokens per step), "
        f"budget {budget_tokens:,} useful tokens, {n_seeds} data-order seed(s), medians shown; heldout_ppl_range is "
        "the lowest–highest seed, heldout_ppl_spread (highest − lowest) / median.",
        f"{peak['dtype']} torch.mm peak ({peak['n']}², {peak['threads']} threads) measured in this run before and "
        f"after the contenders: {peak['peak_flops_start'] / 1e9:.1f} / {peak['peak_flops_end'] / 1e9:.1f} GFLOP/s "
        "(the higher one is the reference); FLOPs/useful token = 6·matmul params + 12·layers·d·mean attended "
        "context.",
        f"perplexity target for time-to-target: {target:.2f}" if target else "no perplexity target (no reference)",
        "TRL configurations probed: " + ", ".join(
            f"{k}: {v['status']}" + (f" {v.get('useful_tokens_per_s', 0):.0f} tok/s" if v["status"] == "ok" else
                                     f" ({v.get('error')})") for k, v in trl_probe.items()),
    ]
    if seed_cap and not contenders.get("seed_style", {}).get("budget_reached", True):
        notes.append(f"seed_style was capped at {seed_cap:.0f} s of training: its perplexity is at fewer tokens "
                     "and not comparable; its tokens/s is.")
    write_results(out, result, title="Training throughput and quality at equal useful tokens", columns=cols,
                  notes=notes)
    print(out.with_suffix(".md").read_text())



if __name__ == "__main__":
    main()
