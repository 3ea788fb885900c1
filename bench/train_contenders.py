"""The contenders of bench/train_throughput.py: seed-style loop, TRL SFTTrainer, and ours (Trainer + collator).

Each ``run_*`` trains the given model until the shared :class:`train_budget.Budget` stops it; ``one_run`` builds a
fresh model and budget, runs one contender and returns its throughput, memory and held-out perplexity curve.
"""

from __future__ import annotations

import gc
import tempfile
import time
import traceback
from typing import Any

from bench.peak_memory import PeakRSS
from bench.train_budget import Budget, budget_callback
from bench.train_data import assistant_perplexity

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

    from chathuman_hf.tokens.collators import ChatCollator, LabelMode
    from chathuman_hf.tokens.features import tokenize_dialogues
    from chathuman_hf.tokens.packing import pack_dataset

    try:  # the product's Trainer subclass (eval metrics only; the training step is Trainer's)
        from chathuman_hf.training.trainer import ChatTrainer as TrainerClass

        trainer_kw: dict[str, Any] = {"label_mode": ctx["label_mode"]}
    except ImportError:
        TrainerClass, trainer_kw = Trainer, {}

    t0 = time.perf_counter()
    ds = tokenize_dialogues(
        Dataset.from_dict({"messages": train_msgs}), tok, max_length=ctx["max_length"], label_mode=ctx["label_mode"]
    )
    extra: dict[str, Any] = {"remove_unused_columns": False, **ctx.get("variant", {})}
    # bench-only variant keys: `rows=N` packed rows per step (instead of the rows holding batch_size examples),
    # `order_offset=K` another data order (pack and sampler seed + K), for the controlled runs of issue 22
    rows = extra.pop("rows", None)
    order_seed = ctx["order_seed"] + int(extra.pop("order_offset", 0))
    bs = ctx["batch_size"]
    if kind == "ours_packed":
        ds = pack_dataset(ds, max_length=ctx["max_length"], seed=order_seed)
        bs = int(rows) if rows else ctx["packed_batch"]
    elif kind == "ours_dynamic":
        extra.update(train_sampling_strategy="group_by_length", length_column_name="length")
    collator = ChatCollator(tok.pad_token_id, LabelMode.parse(ctx["label_mode"]))
    setup_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        bf16 = extra.pop("bf16", ctx["bf16"])
        args = TrainingArguments(**trainer_args(tmp, order_seed, bs, ctx["lr"], ctx["device"], bf16, **extra))
        trainer = TrainerClass(model=model, args=args, train_dataset=ds, data_collator=collator,
                               callbacks=[budget_callback(ctx["budget"])], **trainer_kw)
        trainer.train()
    return {"setup_s": round(setup_s, 2), "batch_size": bs, "rows": len(ds), "trainer": TrainerClass.__name__}


def run_seed_style(model, tok, train_msgs, ctx: dict) -> dict[str, Any]:
    from bench.baselines.seed_train import seed_style_train

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
