"""Training throughput and quality at equal useful tokens: seed-style loop vs TRL SFTTrainer vs ours.

    python bench/train_throughput.py [--quick] [--arch gpt2 llama] [--size small|kogpt2] [--device cpu|cuda] [--bf16] \
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
  that run), interleaved with the others in the same process so that ratios to ``ours_packed`` are fair.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_models import ARCHS, SIZES, build_config, matmul_params, shape  # noqa: E402
from common import PeakRSS, machine_info, median, mm_peak_flops, ratio, target_row, write_results  # noqa: E402
from train_data import assistant_perplexity, attention_context, encode_all, load_messages, split  # noqa: E402

CONTENDERS = ["seed_style", "trl", "reference", "ours_dynamic", "ours_packed"]
TRL_CONFIGS = {
    "padding": {"packing": False, "padding_free": False},
    "padding_free": {"packing": False, "padding_free": True},
    "packing_bfd": {"packing": True, "packing_strategy": "bfd"},
    "packing_wrapped": {"packing": True, "packing_strategy": "wrapped"},
}
TRL_NOT_ELIGIBLE = {"packing_wrapped": "cuts dialogues mid-sequence and attends across them (TRL docs advise against)"}
TRL_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}{{- message['content'] -}}"
    "{%- elif message['role'] == 'user' -%}{{- '<usr>' + message['content'] -}}"
    "{%- elif message['role'] == 'assistant' -%}{{- '<sys>' -}}"
    "{% generation %}{{- message['content'] + eos_token -}}{% endgeneration %}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<sys>' -}}{%- endif -%}"
)


class Budget:
    """Counts useful tokens through a forward pre-hook, times training steps, evaluates at token marks, stops."""

    def __init__(self, model, pad_id: int, budget: int, eval_fn, n_evals: int, max_seconds: float | None, sync):
        self.pad_id, self.budget, self.eval_fn, self.max_seconds, self.sync = (
            pad_id, budget, eval_fn, max_seconds, sync
        )
        self.marks = [math.ceil(budget * k / n_evals) for k in range(1, n_evals + 1)]
        self.tokens = self.positions = self.steps = 0
        self.train_s = self.eval_s = 0.0
        self.curve: list[dict[str, float]] = []
        self.capped = False
        self.warmup_steps = 2
        self.warm: tuple[int, int, float] | None = None  # (tokens, positions, train_s) after the warm-up steps
        self._t = None
        self._handle = model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module, args, kwargs) -> None:
        if not module.training:
            return
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            return
        self.positions += ids.numel()
        self.tokens += int((ids != self.pad_id).sum())

    def start(self) -> None:
        self.sync()
        self._t = time.perf_counter()

    def after_step(self) -> bool:
        self.sync()
        now = time.perf_counter()
        self.train_s += now - self._t
        self.steps += 1
        if self.steps == self.warmup_steps:
            self.warm = (self.tokens, self.positions, self.train_s)
        done = self.tokens >= self.budget
        self.capped = not done and self.max_seconds is not None and self.train_s >= self.max_seconds
        if done or self.capped or (self.marks and self.tokens >= self.marks[0]):
            while self.marks and self.tokens >= self.marks[0]:
                self.marks.pop(0)
            t0 = time.perf_counter()
            ppl = self.eval_fn()
            self.eval_s += time.perf_counter() - t0
            self.curve.append({"tokens": self.tokens, "train_s": round(self.train_s, 3), "ppl": ppl})
        self._t = time.perf_counter()
        return done or self.capped

    def close(self) -> None:
        self._handle.remove()


def time_to_target(curve: list[dict[str, float]], target: float) -> float | None:
    """Training seconds at which held-out ppl first reaches `target` (log-linear between eval points)."""
    prev = {"train_s": 0.0, "ppl": float("inf")}
    for point in curve:
        if point["ppl"] <= target:
            if not math.isfinite(prev["ppl"]):
                return point["train_s"]
            span = math.log(prev["ppl"]) - math.log(point["ppl"])
            frac = (math.log(prev["ppl"]) - math.log(target)) / span if span > 0 else 1.0
            return prev["train_s"] + frac * (point["train_s"] - prev["train_s"])
        prev = point
    return None


def trainer_args(out_dir: str, seed: int, batch_size: int, lr: float, device: str, bf16: bool, **extra):
    base = dict(
        output_dir=out_dir,
        per_device_train_batch_size=batch_size,
        learning_rate=lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_steps=10**7,
        logging_steps=10**6,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        seed=seed,
        data_seed=seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
        use_cpu=device == "cpu",
        bf16=bf16,
    )
    return {**base, **extra}


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """`NAME:key=value,key=value` → (NAME, {key: value}); values are JSON when they parse (true, 1, 2.0e-05)."""
    import json

    name, _, spec = text.partition(":")
    if not name or not spec:
        raise argparse.ArgumentTypeError(f"--variant {text!r}: write NAME:key=value[,key=value]")
    out: dict[str, Any] = {}
    for item in spec.split(","):
        key, eq, value = item.partition("=")
        if not eq:
            raise argparse.ArgumentTypeError(f"--variant {text!r}: {item!r} is not key=value")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return name, out


def budget_callback(budget: Budget):
    from transformers import TrainerCallback

    class _CB(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            budget.start()

        def on_step_end(self, args, state, control, **kw):
            if budget.after_step():
                control.should_training_stop = True

    return _CB()


def run_trl(model, tok, train_msgs, cfg_name: str, ctx: dict) -> dict[str, Any]:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    cfg = TRL_CONFIGS[cfg_name]
    trl_tok = ctx["tok_copy"]()
    trl_tok.chat_template = TRL_TEMPLATE
    packed = cfg.get("packing", False)
    bs = ctx["packed_batch"] if packed else ctx["batch_size"]
    max_length = None if cfg.get("padding_free") and not packed else ctx["max_length"]
    with tempfile.TemporaryDirectory() as tmp:
        args = SFTConfig(
            **trainer_args(tmp, ctx["order_seed"], bs, ctx["lr"], ctx["device"], ctx["bf16"]),
            max_length=max_length,
            assistant_only_loss=ctx["label_mode"] != "input",
            dataset_num_proc=None,
            **cfg,
        )
        t0 = time.perf_counter()
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_dict({"messages": train_msgs}),
            processing_class=trl_tok,
            callbacks=[budget_callback(ctx["budget"])],
        )
        setup_s = time.perf_counter() - t0
        first = trainer.train_dataset[0]
        ids_match = _trl_ids_match(trainer.train_dataset, ctx) if not packed else None
        trainer.train()
    return {"setup_s": round(setup_s, 2), "batch_size": bs, "trl_ids_match_ours": ids_match,
            "trl_columns": sorted(first)}


def _trl_ids_match(ds, ctx) -> bool:
    """TRL's tokenized ids for the first examples equal the package's encoding of the same messages."""
    n = min(20, len(ds))
    return all(list(ds[i]["input_ids"]) == ctx["train_examples"][i][0] for i in range(n))


def run_ours(model, tok, train_msgs, kind: str, ctx: dict) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    from chathuman_hf.collators import ChatCollator, LabelMode
    from chathuman_hf.features import tokenize_dialogues
    from chathuman_hf.packing import pack_dataset

    try:  # the product's Trainer subclass (eval metrics only; the training step is Trainer's)
        from chathuman_hf.trainer import ChatTrainer as TrainerClass

        trainer_kw: dict[str, Any] = {"label_mode": ctx["label_mode"]}
    except ImportError:
        TrainerClass, trainer_kw = Trainer, {}

    t0 = time.perf_counter()
    ds = tokenize_dialogues(
        Dataset.from_dict({"messages": train_msgs}), tok, max_length=ctx["max_length"], label_mode=ctx["label_mode"]
    )
    extra: dict[str, Any] = {"remove_unused_columns": False, **ctx.get("variant", {})}
    bs = ctx["batch_size"]
    if kind == "ours_packed":
        ds = pack_dataset(ds, max_length=ctx["max_length"], seed=ctx["order_seed"])
        bs = ctx["packed_batch"]
    elif kind == "ours_dynamic":
        extra.update(train_sampling_strategy="group_by_length", length_column_name="length")
    collator = ChatCollator(tok.pad_token_id, LabelMode.parse(ctx["label_mode"]))
    setup_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        bf16 = extra.pop("bf16", ctx["bf16"])
        args = TrainingArguments(**trainer_args(tmp, ctx["order_seed"], bs, ctx["lr"], ctx["device"], bf16, **extra))
        trainer = TrainerClass(model=model, args=args, train_dataset=ds, data_collator=collator,
                               callbacks=[budget_callback(ctx["budget"])], **trainer_kw)
        trainer.train()
    return {"setup_s": round(setup_s, 2), "batch_size": bs, "rows": len(ds), "trainer": TrainerClass.__name__}


def run_seed_style(model, tok, train_msgs, ctx: dict) -> dict[str, Any]:
    from baselines.seed_train import seed_style_train

    budget = ctx["budget"]
    budget.start()
    seed_style_train(model, ctx["train_examples"], pad_id=tok.pad_token_id, label_mode=ctx["label_mode"],
                     batch_size=ctx["batch_size"], lr=ctx["lr"], order_seed=ctx["order_seed"],
                     after_step=budget.after_step, max_length=ctx["max_length"], device=ctx["device"],
                     bf16=ctx["bf16"])
    return {"setup_s": 0.0, "batch_size": ctx["batch_size"]}


def one_run(name: str, trl_cfg: str | None, ctx: dict, budget_tokens: int, n_evals: int,
            max_seconds: float | None) -> dict[str, Any]:
    import torch

    tok, device = ctx["tok"], ctx["device"]
    variant = dict(ctx.get("variant", {}))
    threads_before = torch.get_num_threads()
    if "threads" in variant:
        torch.set_num_threads(int(variant.pop("threads")))
    ctx = {**ctx, "variant": variant}
    model = ctx["fresh_model"]()
    eval_fn = lambda: assistant_perplexity(model, ctx["eval_examples"], tok.pad_token_id, device=device)  # noqa: E731
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    budget = Budget(model, tok.pad_token_id, budget_tokens, eval_fn, n_evals, max_seconds, sync)
    ctx = {**ctx, "budget": budget}
    result: dict[str, Any] = {"status": "ok"}
    gc.collect()
    with PeakRSS(children=False) as rss:
        try:
            if name == "seed_style":
                result.update(run_seed_style(model, tok, ctx["train_msgs"], ctx))
            elif name == "trl":
                result.update(run_trl(model, tok, ctx["train_msgs"], trl_cfg, ctx))
            else:
                result.update(run_ours(model, tok, ctx["train_msgs"], name, ctx))
        except Exception as exc:  # a contender configuration that does not run here is a result, not a crash
            result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
            traceback.print_exc()
    budget.close()
    torch.set_num_threads(threads_before)
    result.update(rss.to_dict())
    if result["status"] != "ok" or budget.steps == 0:
        result.setdefault("status", "failed")
        return result
    # throughput excludes the first steps (lazy init, allocator warm-up); time-to-target includes everything
    w_tok, w_pos, w_s = budget.warm if budget.warm and budget.steps > budget.warmup_steps + 2 else (0, 0, 0.0)
    tps = (budget.tokens - w_tok) / (budget.train_s - w_s)
    result.update(
        {
            "useful_tokens": budget.tokens,
            "positions": budget.positions,
            "steps": budget.steps,
            "train_s": round(budget.train_s, 2),
            "eval_s": round(budget.eval_s, 2),
            "useful_tokens_per_s": tps,
            "pad_share": 1 - (budget.tokens - w_tok) / (budget.positions - w_pos),
            "warmup_steps_excluded": budget.warmup_steps if w_s else 0,
            "useful_model_flops_per_s": tps * ctx["flops_per_token"],
            "mfu_vs_mm_peak": tps * ctx["flops_per_token"] / ctx["mm_peak"],
            "budget_reached": budget.tokens >= budget_tokens,
            "heldout_assistant_ppl": budget.curve[-1]["ppl"] if budget.curve else None,
            "curve": budget.curve,
        }
    )
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer tokens, 1 seed, small eval set")
    p.add_argument("--out", default="results/train_throughput.json")
    p.add_argument("--arch", nargs="+", choices=ARCHS, default=["gpt2"],
                   help="model shape(s); several run one after the other, each into <out>_<arch>.json")
    p.add_argument("--size", choices=sorted(SIZES["gpt2"]), default="small")
    p.add_argument("--variant", action="append", type=parse_variant, default=[],
                   help="NAME:key=value,... an extra ours_packed run with these TrainingArguments (threads=N: torch "
                        "threads); repeatable")
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--tokens", type=int, default=None, help="useful-token budget per run (default 300k, quick 30k)")
    p.add_argument("--seeds", type=int, default=None, help="data-order seeds (default 3, quick 1)")
    p.add_argument("--contenders", nargs="+", default=CONTENDERS, choices=CONTENDERS)
    p.add_argument("--trl-configs", nargs="+", default=list(TRL_CONFIGS), choices=list(TRL_CONFIGS))
    p.add_argument("--trl-finalists", type=int, default=2,
                   help="TRL configurations (fastest probes) trained to the full budget; `trl` is the one reaching "
                        "the perplexity target first")
    p.add_argument("--trl-probe-tokens", type=int, default=None, help="tokens per TRL configuration probe")
    p.add_argument("--seed-style-max-seconds", type=float, default=None,
                   help="cap the seed-style run's training time (default none, quick 25 s)")
    p.add_argument("--label-mode", default="-100+sys", choices=["-100+sys", "input"])
    p.add_argument("--batch-size", type=int, default=32,
                   help="examples per step, rounded so that it fills whole packed rows (same tokens per step)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--eval-dialogues", type=int, default=None, help="held-out dialogues (default 600, quick 250)")
    p.add_argument("--evals", type=int, default=6, help="held-out evaluations per run (the ppl curve)")
    p.add_argument("--ppl-target", type=float, default=None,
                   help="held-out ppl target for time-to-target (default: 1.10 × the reference's median final ppl)")
    p.add_argument("--seed-tokens-per-dialogue", type=float, default=40.0,
                   help="mean tokens of one seed-workload dialogue for the 190,000 × 5 epochs projection "
                        "(40 ≈ the synthetic AIHub corpus of bench/preprocess.py)")
    p.add_argument("--limit-dialogues", type=int, default=None, help="use only this many training dialogues")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's choice = cores); on a shared machine 1 thread "
                        "avoids OpenMP oversubscription stalls")
    a = p.parse_args(argv)
    for arch in a.arch:
        out = Path(a.out)
        run_shape(a, arch, out if len(a.arch) == 1 else out.with_name(f"{out.stem}_{arch}{out.suffix}"))


def run_shape(a: argparse.Namespace, arch: str, out: Path) -> None:
    """Every contender on one model shape; results to `out` (.json + .md)."""
    budget_tokens = a.tokens or (30_000 if a.quick else 300_000)
    n_seeds = a.seeds or (1 if a.quick else 3)
    seed_cap = a.seed_style_max_seconds if a.seed_style_max_seconds is not None else (25.0 if a.quick else None)
    probe_tokens = a.trl_probe_tokens or max(budget_tokens // 5, 2000)
    probe_cap = 6.0 if a.quick else 60.0  # seconds of training per TRL configuration probe

    import copy

    import datasets
    import torch
    import transformers
    from bench_tokenizer import bench_tokenizer, tokenizer_origin
    from transformers import AutoModelForCausalLM

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
    contenders: dict[str, dict[str, Any]] = {}
    for name, rs in runs.items():
        good = [r for r in rs if r["status"] == "ok"]
        if not good:
            contenders[name] = {"status": rs[0]["status"] if rs else "skipped", "runs": rs}
            continue
        for r in good:
            r["time_to_target_s"] = time_to_target(r["curve"], target) if target else None
        keys = ["useful_tokens_per_s", "pad_share", "peak_rss_mb", "heldout_assistant_ppl", "useful_model_flops_per_s",
                "mfu_vs_mm_peak", "train_s", "useful_tokens", "time_to_target_s"]
        agg = {k: median(r.get(k) for r in good) for k in keys}
        agg["projected_seed_workload_h"] = (
            190_000 * 5 * a.seed_tokens_per_dialogue / agg["useful_tokens_per_s"] / 3600
            if agg["useful_tokens_per_s"] else None
        )
        agg["heldout_ppl_per_seed"] = [r["heldout_assistant_ppl"] for r in good]
        agg["budget_reached"] = all(r["budget_reached"] for r in good)
        agg["seeds"] = len(good)
        if name.startswith("trl_"):
            agg["trl_config"] = name[4:]
        agg["runs"] = rs
        contenders[name] = agg
    # `trl` = TRL's best finalist by wall-clock time to the perplexity target (then by tokens/s)
    finals = [
        contenders[f"trl_{c}"] for c in trl_finalists if contenders.get(f"trl_{c}", {}).get("useful_tokens_per_s")
    ]
    if finals:
        best_trl = min(finals, key=lambda r: (r["time_to_target_s"] if r["time_to_target_s"] is not None else math.inf,
                                              -r["useful_tokens_per_s"]))
        contenders["trl"] = {k: v for k, v in best_trl.items() if k != "runs"}
    elif "trl" in a.contenders:
        contenders["trl"] = {"status": "failed" if trl_probe else "skipped", "probes": trl_probe}
    order = ["seed_style", "trl", *[f"trl_{c}" for c in trl_finalists], "reference", "ours_dynamic", "ours_packed",
             *[f"ours_packed+{v}" for v in variants]]
    contenders = {k: contenders[k] for k in sorted(contenders, key=lambda k: order.index(k) if k in order else 99)}

    def c(name: str, key: str):
        return contenders.get(name, {}).get(key)

    ours = ["ours_dynamic", "ours_packed"]
    ratios: dict[str, Any] = {}
    for o in ours:
        for base in ("seed_style", "trl", "reference"):
            ratios[f"{o}_vs_{base}_tokens_per_s"] = ratio(c(o, "useful_tokens_per_s"), c(base, "useful_tokens_per_s"))
            ratios[f"{o}_vs_{base}_ppl"] = ratio(c(o, "heldout_assistant_ppl"), c(base, "heldout_assistant_ppl"))
            ratios[f"{o}_vs_{base}_time_to_target"] = ratio(c(o, "time_to_target_s"), c(base, "time_to_target_s"))
    for v in variants:
        for key, col in (("tokens_per_s", "useful_tokens_per_s"), ("ppl", "heldout_assistant_ppl"),
                         ("time_to_target", "time_to_target_s")):
            for base in ("ours_packed", "trl"):
                ratios[f"ours_packed+{v}_vs_{base}_{key}"] = ratio(c(f"ours_packed+{v}", col), c(base, col))
    best = max(ours, key=lambda o: c(o, "useful_tokens_per_s") or 0)
    fastest = min(ours, key=lambda o: c(o, "time_to_target_s") or math.inf)
    targets = [
        target_row("ours ≥ 10× seed_style tokens/s", "≥ 10", ratios.get(f"{best}_vs_seed_style_tokens_per_s"),
                   _ge(ratios.get(f"{best}_vs_seed_style_tokens_per_s"), 10)),
        target_row("ours ≥ 1.4× TRL tokens/s", "≥ 1.4", ratios.get(f"{best}_vs_trl_tokens_per_s"),
                   _ge(ratios.get(f"{best}_vs_trl_tokens_per_s"), 1.4)),
        target_row("packing pad share", "≤ 3%", c("ours_packed", "pad_share"),
                   _le(c("ours_packed", "pad_share"), 0.03)),
        target_row(f"useful FLOP/s vs mm peak ({best})", "≥ 60%", c(best, "mfu_vs_mm_peak"),
                   _ge(c(best, "mfu_vs_mm_peak"), 0.6)),
        target_row(f"wall time to ppl target vs TRL ({fastest})", "≤ 0.5",
                   ratios.get(f"{fastest}_vs_trl_time_to_target"),
                   _le(ratios.get(f"{fastest}_vs_trl_time_to_target"), 0.5)),
    ]
    for o in ours:
        rv = ratios.get(f"{o}_vs_reference_ppl")
        tv = ratios.get(f"{o}_vs_trl_ppl")
        targets.append(target_row(f"{o} ppl vs reference", "≤ 1.05", rv, _le(rv, 1.05)))
        targets.append(target_row(f"{o} ppl vs TRL", "≤ 1.00", tv, _le(tv, 1.0)))
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
    cols = ["contender", "useful_tokens_per_s", "pad_share", "heldout_assistant_ppl", "time_to_target_s",
            "mfu_vs_mm_peak", "peak_rss_mb", "useful_tokens", "train_s", "budget_reached", "seeds", "trl_config",
            "projected_seed_workload_h"]
    notes = [
        f"{config.model_type} {size}, {n_params / 1e6:.1f}M params ({mm_params / 1e6:.2f}M in matmuls), "
        f"vocab {len(tok)}, label mode {a.label_mode}, lr {a.lr}, "
        f"{batch_size} examples/step ≈ {packed_rows} packed rows of {a.max_length} (equal tokens per step), "
        f"budget {budget_tokens:,} useful tokens, {n_seeds} data-order seed(s), medians shown.",
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


def _ge(v, x):
    return None if v is None else v >= x


def _le(v, x):
    return None if v is None else v <= x


if __name__ == "__main__":
    main()
