"""Packed vs unpacked logits and loss per architecture family and attention implementation.

    python -m bench.packing_exactness [--quick] [--families gpt2 llama ...] [--attn eager sdpa]
        --out results/packing_exactness.json

For tiny models of each family (``tests.helpers.families.TINY_FAMILY_CONFIGS``; gemma3_text and exaone4 with a
16-token sliding window, shorter than a packed row) the same random dialogues are run unpacked (one per row, padded)
and packed (rows of up to ``--max-length`` tokens), three ways: ``native`` (what ``ChatCollator`` sends: restarting
``position_ids``, no attention mask, ``use_cache=False``), ``native_with_cache`` (the same with ``use_cache=True``)
and ``block_4d`` (the former hand-built 4-D block-diagonal float mask). Reports the largest logit difference and the
loss difference ("input" mode, token-weighted) per combination.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import torch
from datasets import Dataset

from bench.machine import machine_info
from bench.writers import target_row, write_results
from chathuman_hf.evaluation.perplexity import token_nll_sums
from chathuman_hf.models.build import build_model
from chathuman_hf.tokens.collators import ChatCollator
from chathuman_hf.tokens.packing import pack_dataset
from tests.helpers.families import TINY_FAMILY_CONFIGS

TOLERANCE = 1e-4


def block_4d_mask(seq_lengths: list[list[int]], total: int) -> torch.Tensor:
    """The former approach: a ``(B, 1, T, T)`` additive mask, 0 inside a sequence (causal), ``finfo.min`` elsewhere."""
    seg = torch.full((len(seq_lengths), total), -1, dtype=torch.long)
    for b, lengths in enumerate(seq_lengths):
        start = 0
        for i, n in enumerate(lengths):
            seg[b, start : start + n] = i
            start += n
        seg[b, start:] = torch.arange(len(lengths), len(lengths) + total - start)
    allowed = (seg[:, :, None] == seg[:, None, :]) & torch.tril(torch.ones(total, total, dtype=torch.bool))
    return torch.zeros(allowed.shape).masked_fill_(~allowed, torch.finfo(torch.float32).min)[:, None]


def examples(n: int, vocab: int, max_length: int, seed: int) -> Dataset:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        length = rng.randint(6, max_length * 2 // 3)
        rows.append({"input_ids": [rng.randrange(5, vocab) for _ in range(length)], "roles": [1] * length,
                     "last_turn": [1] * length, "length": length})
    return Dataset.from_list(rows)


def per_example(logits: torch.Tensor, batch: dict, rows: list[dict], packed: bool) -> dict[tuple, torch.Tensor]:
    out = {}
    for b, row in enumerate(rows):
        start = 0
        for n in row["seq_lengths"] if packed else [len(row["input_ids"])]:
            out.setdefault(tuple(batch["input_ids"][b, start : start + n].tolist()), logits[b, start : start + n])
            start += n
    return out


def measure(family: str, attn: str, ds: Dataset, packed: Dataset, vocab: int) -> dict:
    torch.manual_seed(0)
    try:
        model = build_model(model_type=family, config_overrides={
            **TINY_FAMILY_CONFIGS[family], "vocab_size": vocab, "attn_implementation": attn}).eval()
    except ValueError as exc:  # e.g. GPT-2 has no flex_attention
        return {"family": family, "attn": attn, "status": f"unsupported: {str(exc)[:120]}"}
    collator = ChatCollator(0, "input")
    rows_u, rows_p = list(ds), list(packed)
    bu, bp = collator(rows_u), collator(rows_p)
    total = bp["input_ids"].shape[1]
    variants = {
        "native": {"position_ids": bp["position_ids"], "use_cache": False},
        "native_with_cache": {"position_ids": bp["position_ids"], "use_cache": True},
        "block_4d": {"position_ids": bp["position_ids"], "use_cache": False,
                     "attention_mask": block_4d_mask([r["seq_lengths"] for r in rows_p], total)},
    }
    # a 4-D float mask is no BlockMask: flex_attention crashed (double free / SIGSEGV) here
    if attn == "flex_attention":
        del variants["block_4d"]
    t0 = time.perf_counter()
    with torch.no_grad():
        lu = model(input_ids=bu["input_ids"], attention_mask=bu["attention_mask"], use_cache=False).logits
        su, nu = (x.sum() for x in token_nll_sums(lu, bu["labels"], pre_shifted=False))
        ref = per_example(lu, bu, rows_u, packed=False)
        result: dict = {"family": family, "attn": attn, "layer_types": getattr(model.config, "layer_types", None),
                        "sliding_window": getattr(model.config, "sliding_window", None)}
        for name, kwargs in variants.items():
            lp = model(input_ids=bp["input_ids"], **kwargs).logits
            sp, np_ = (x.sum() for x in token_nll_sums(lp, bp["labels"], pre_shifted=False))
            got = per_example(lp, bp, rows_p, packed=True)
            assert got.keys() == ref.keys() and nu == np_
            result[f"{name}_max_logit_diff"] = max((ref[k] - got[k]).abs().max().item() for k in ref)
            result[f"{name}_loss_diff"] = abs((su / nu).item() - (sp / np_).item())
    result["status"] = "ok"
    result["exact"] = result["native_max_logit_diff"] < TOLERANCE and result["native_loss_diff"] < TOLERANCE
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.packing_exactness", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer examples (24 instead of 96)")
    p.add_argument("--families", nargs="+", default=sorted(TINY_FAMILY_CONFIGS))
    p.add_argument("--attn", nargs="+", default=["eager", "sdpa"],
                   help="attention implementations (also flex_attention; flash_attention_2 needs a GPU)")
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--out", default="results/packing_exactness.json")
    a = p.parse_args(argv)
    vocab = 300
    ds = examples(24 if a.quick else 96, vocab, a.max_length, seed=0)
    packed = pack_dataset(ds, max_length=a.max_length, seed=0)
    contenders = {}
    for family in a.families:
        for attn in a.attn:
            r = measure(family, attn, ds, packed, vocab)
            contenders[f"{family}/{attn}"] = r
            if r["status"] != "ok":
                print(f"{family:12s} {attn:6s} {r['status']}", flush=True)
                continue
            print(f"{family:12s} {attn:6s} native {r['native_max_logit_diff']:.1e} (loss {r['native_loss_diff']:.1e})"
                  f"  with cache {r['native_with_cache_max_logit_diff']:.1e}"
                  f"  4-D block {r.get('block_4d_max_logit_diff', float('nan')):.1e}", flush=True)
    ran = [r for r in contenders.values() if r["status"] == "ok"]
    worst = max(max(r["native_max_logit_diff"], r["native_loss_diff"]) for r in ran)
    met = all(r["exact"] for r in ran)
    result = {
        "machine": machine_info(),
        "settings": {"examples": len(ds), "packed_rows": len(packed), "max_length": a.max_length,
                     "tolerance": TOLERANCE, "configs": {f: TINY_FAMILY_CONFIGS[f] for f in a.families}},
        "contenders": contenders,
        "ratios": {"worst_native_diff": worst, "all_native_exact": met},
        "targets": [target_row("packed = unpacked (native format)", f"<= {TOLERANCE:g}", f"{worst:.1e}", met)],
    }
    write_results(a.out, result, title="Packed vs unpacked per family and attention", columns=[
        "contender", "native_max_logit_diff", "native_loss_diff", "native_with_cache_max_logit_diff",
        "block_4d_max_logit_diff", "block_4d_loss_diff"])
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
