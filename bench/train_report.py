"""The summary of bench/train_throughput.py: medians per contender, TRL's best finalist, ratios and targets."""

from __future__ import annotations

import math
from typing import Any

from bench.common import median, ratio
from bench.train_budget import time_to_target
from bench.writers import target_row


def aggregate(runs: dict[str, list[dict[str, Any]]], target: float | None,
              seed_tokens_per_dialogue: float) -> dict[str, dict[str, Any]]:
    """Medians over seeds per run name, with the time to ``target`` and the 190,000 × 5 epochs projection."""
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
            190_000 * 5 * seed_tokens_per_dialogue / agg["useful_tokens_per_s"] / 3600
            if agg["useful_tokens_per_s"] else None
        )
        ppls = [r["heldout_assistant_ppl"] for r in good if r.get("heldout_assistant_ppl") is not None]
        agg["heldout_ppl_per_seed"] = ppls
        if ppls:  # the seed spread: data order alone moves short runs by several percent
            agg["heldout_ppl_range"] = f"{min(ppls):,.1f}–{max(ppls):,.1f}"
            agg["heldout_ppl_spread"] = (max(ppls) - min(ppls)) / agg["heldout_assistant_ppl"]
        agg["budget_reached"] = all(r["budget_reached"] for r in good)
        agg["seeds"] = len(good)
        if name.startswith("trl_"):
            agg["trl_config"] = name[4:]
        agg["runs"] = rs
        contenders[name] = agg
    return contenders


def with_best_trl(contenders: dict[str, dict[str, Any]], trl_finalists: list[str], trl_probe: dict[str, Any],
                  trl_wanted: bool, variants: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Add ``trl`` (TRL's best finalist) and put the contenders in table order."""
    # `trl` = TRL's best finalist by wall-clock time to the perplexity target (then by tokens/s)
    finals = [
        contenders[f"trl_{c}"] for c in trl_finalists if contenders.get(f"trl_{c}", {}).get("useful_tokens_per_s")
    ]
    if finals:
        best_trl = min(finals, key=lambda r: (r["time_to_target_s"] if r["time_to_target_s"] is not None else math.inf,
                                              -r["useful_tokens_per_s"]))
        contenders["trl"] = {k: v for k, v in best_trl.items() if k != "runs"}
    elif trl_wanted:
        contenders["trl"] = {"status": "failed" if trl_probe else "skipped", "probes": trl_probe}
    order = ["seed_style", "trl", *[f"trl_{c}" for c in trl_finalists], "reference", "ours_dynamic", "ours_packed",
             *[f"ours_packed+{v}" for v in variants]]
    return {k: contenders[k] for k in sorted(contenders, key=lambda k: order.index(k) if k in order else 99)}


def ratios_and_targets(contenders: dict[str, dict[str, Any]],
                       variants: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Ours against seed-style, TRL and the reference (tokens/s, ppl, time to target); the targets table rows."""

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
    return ratios, targets


def _ge(v, x):
    return None if v is None else v >= x


def _le(v, x):
    return None if v is None else v <= x
