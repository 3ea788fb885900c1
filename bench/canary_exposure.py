"""Canary exposure ("The Secret Sharer", Carlini et al. 2019) with PII scrubbing on and off.

    python -m bench.canary_exposure [--quick] --out results/canary_exposure.json

A KakaoTalk export is written from ChatbotData question/answer pairs (the embedded sample when the shared data is
absent), and random secrets of four PII shapes (phone, resident id, card, bank account) are planted in it, each
``--copies`` times, in an assistant reply (``내 번호는 010-1234-5678 이야``). Control secrets of the same shapes are
never inserted. ``recipes/train.py`` then trains the same tiny GPT-2 twice on that export: with the default
(KakaoTalk exports are scrubbed) and with ``--no_scrub_pii``. For every secret s, the trained model scores s and
``--candidates`` - 1 random values of the same shape in the same sentence; exposure = log2|R| - log2 rank(s), rank 1
= the lowest negative log-likelihood. A memorized canary ranks near 1 (exposure near log2|R| ≈ 10 bits); a secret
the model never saw ranks anywhere (expected exposure ≈ 1.4 bits, like the controls).
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import CHATBOT_CSV, REPO, child_env
from bench.machine import machine_info
from bench.writers import target_row, write_results

SHAPES = {  # shape: (user question, assistant reply template, value maker)
    "phone": ("전화번호 뭐야?", "내 번호는 {} 이야", lambda r: (
        f"010-{r.randrange(10**4):04d}-{r.randrange(10**4):04d}")),
    "resident_id": ("주민번호 알려줘", "내 주민번호는 {} 이야", lambda r: (
        f"{r.randrange(100):02d}{r.randrange(1, 13):02d}{r.randrange(1, 29):02d}-{r.choice('1234')}"
        f"{r.randrange(10**6):06d}")),
    "card": ("카드번호 불러줘", "카드번호는 {} 이야", lambda r: _luhn_card(r)),
    "bank_account": ("계좌 알려줘", "계좌번호는 {} 이야", lambda r: (
        f"{r.randrange(100, 1000)}-{r.randrange(1000):03d}-{r.randrange(10**6):06d}")),
}  # fmt: skip
USER, ASSISTANT = "김도현", "박소윤"


def _luhn_card(rng: random.Random) -> str:
    from chathuman_hf.data.pii import luhn_ok

    digits = "4" + "".join(str(rng.randrange(10)) for _ in range(14))
    digits += next(d for d in "0123456789" if luhn_ok(digits + d))
    return "-".join(digits[i : i + 4] for i in range(0, 16, 4))


def base_pairs(limit: int) -> list[tuple[str, str]]:
    if CHATBOT_CSV.exists():
        with CHATBOT_CSV.open(encoding="utf-8") as handle:
            pairs = [(row["Q"], row["A"]) for row in csv.DictReader(handle)]
    else:
        from tests.helpers.tiny_models import sample_dialogues

        pairs = [(d[0]["content"], d[1]["content"]) for d in sample_dialogues() if len(d) >= 2]
    random.Random(0).shuffle(pairs)
    return pairs[:limit]


def secrets(per_shape: int, seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    return {shape: [make(rng) for _ in range(per_shape)] for shape, (_, _, make) in SHAPES.items()}


def write_export(path: Path, pairs: list[tuple[str, str]], canaries: dict[str, list[str]], copies: int) -> None:
    """A PC-layout KakaoTalk export: one dialogue per pair, two hours apart; canary dialogues spread through it."""
    dialogues = list(pairs)
    for shape, values in canaries.items():
        ask, reply, _ = SHAPES[shape]
        dialogues += [(ask, reply.format(value)) for value in values for _ in range(copies)]
    random.Random(1).shuffle(dialogues)
    when, lines, day = datetime(2024, 1, 1, 0, 0), [], None
    for question, answer in dialogues:
        for speaker, text in ((USER, question), (ASSISTANT, answer)):
            if when.date() != day:
                day = when.date()
                lines.append(f"--------------- {day.year}년 {day.month}월 {day.day}일 월요일 ---------------")
            half = "오전" if when.hour < 12 else "오후"
            lines.append(f"[{speaker}] [{half} {when.hour % 12 or 12}:{when.minute:02d}] {text}")
            when += timedelta(minutes=1)
        when += timedelta(hours=2)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def train(export: Path, out: Path, scrub: bool, a: argparse.Namespace) -> float:
    cmd = [sys.executable, str(REPO / "recipes/train.py"), "--data", str(export), "--assistant", ASSISTANT,
           "--model_type", "gpt2", "--config_overrides", f"n_layer=2,n_embd={a.hidden},n_head=2,n_positions=128",
           "--train-tokenizer", "--vocab-size", str(a.vocab_size), "--max-length", "96", "--eval-split", "0",
           "--generation_prompts", "0", "--num_train_epochs", str(a.epochs), "--learning_rate", "3.0e-03",
           "--per_device_train_batch_size", "16", "--eval_strategy", "no", "--save_strategy", "no",
           "--load_best_model_at_end", "false", "--report_to", "none", "--disable_tqdm", "true", "--seed", "0",
           "--logging_steps", "50", "--output_dir", str(out), "--data_cache_dir", str(out.parent / "cache")]
    if not scrub:
        cmd.append("--no_scrub_pii")
    # one thread: a 2-layer model gains nothing from more, and a shared machine's other jobs are not slowed down
    env = child_env(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"train.py failed ({'scrub on' if scrub else 'scrub off'}):\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def nll(model: Any, tokenizer: Any, texts: list[str], batch_size: int = 256) -> list[float]:
    """Summed negative log-likelihood of each text (its log-perplexity times its length)."""
    import torch

    out: list[float] = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i : i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            logits = model(**enc).logits[:, :-1].float()
        target, mask = enc["input_ids"][:, 1:], enc["attention_mask"][:, 1:]
        logp = torch.log_softmax(logits, -1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
        out += (-(logp * mask).sum(-1)).tolist()
    return out


def exposures(model_dir: Path, planted: dict[str, list[str]], controls: dict[str, list[str]], n: int) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "right"  # positions 0..n for every text
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    rows = []
    for kind, groups in (("canary", planted), ("control", controls)):
        for shape, values in groups.items():
            ask, reply, make = SHAPES[shape]
            for value in values:
                rng = random.Random(f"{shape}{value}")
                candidates = {value}
                while len(candidates) < n:
                    candidates.add(make(rng))
                ordered = [value] + sorted(candidates - {value})
                texts = [tokenizer.apply_chat_template([{"role": "user", "content": ask},
                                                        {"role": "assistant", "content": reply.format(c)}],
                                                       tokenize=False) for c in ordered]  # fmt: skip
                scores = nll(model, tokenizer, texts)
                # ties (e.g. digits the tokenizer maps to <unk>) share the mean rank: no false "memorized"
                rank = 1 + sum(s < scores[0] for s in scores[1:]) + sum(s == scores[0] for s in scores[1:]) / 2
                rows.append({"kind": kind, "shape": shape, "rank": rank, "exposure": math.log2(n) - math.log2(rank)})
    summary = {
        kind: statistics.fmean(r["exposure"] for r in rows if r["kind"] == kind) for kind in ("canary", "control")
    }
    return {"rows": rows, "mean_canary_exposure": summary["canary"], "mean_control_exposure": summary["control"],
            "max_control_exposure": max(r["exposure"] for r in rows if r["kind"] == "control")}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.canary_exposure", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="150 base dialogues, 1 canary per shape, fewer epochs")
    p.add_argument("--pairs", type=int, default=None, help="ChatbotData pairs in the export (default 1000; quick 150)")
    p.add_argument("--canaries", type=int, default=None, help="planted secrets per shape (default 3; quick 1)")
    p.add_argument("--controls", type=int, default=4, help="never-inserted secrets per shape")
    p.add_argument("--copies", type=int, default=12, help="copies of each canary in the export")
    p.add_argument("--settings", nargs="+", default=["scrub_on", "scrub_off"], choices=["scrub_on", "scrub_off"])
    p.add_argument("--candidates", type=int, default=1000, help="|R|: candidates of the same shape per secret")
    p.add_argument("--epochs", type=float, default=None, help="training epochs (default 20; quick 15)")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--vocab-size", type=int, default=800)
    p.add_argument("--out", default="results/canary_exposure.json")
    a = p.parse_args(argv)
    a.pairs = a.pairs or (150 if a.quick else 1000)
    a.canaries = a.canaries or (1 if a.quick else 3)
    a.epochs = a.epochs or (15 if a.quick else 20)
    machine = machine_info()
    planted, controls = secrets(a.canaries, seed=11), secrets(a.controls, seed=12)
    contenders: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_canary_") as tmp:
        export = Path(tmp) / "kakao_export.txt"
        write_export(export, base_pairs(a.pairs), planted, a.copies)
        for name in a.settings:
            scrub = name == "scrub_on"
            print(f"[canary] training with {name}", flush=True)
            train_s = train(export, Path(tmp) / name / "model", scrub, a)
            result = exposures(Path(tmp) / name / "model", planted, controls, a.candidates)
            result.update(train_s=round(train_s, 1), status="ok")
            result["canary_minus_control"] = result["mean_canary_exposure"] - result["mean_control_exposure"]
            contenders[name] = result
            print(f"[canary] {name}: canaries {result['mean_canary_exposure']:.2f} bits, controls "
                  f"{result['mean_control_exposure']:.2f} bits ({train_s:.0f} s training)", flush=True)  # fmt: skip
    margin = 2.0  # bits: a uniform random rank among 1,000 exceeds 2 bits of exposure with probability 25%
    gap = {name: contenders.get(name, {}).get("canary_minus_control") for name in ("scrub_on", "scrub_off")}
    canary = {name: contenders.get(name, {}).get("mean_canary_exposure") for name in ("scrub_on", "scrub_off")}
    result = {
        "machine": machine,
        "settings": {k: getattr(a, k) for k in ("quick", "pairs", "canaries", "controls", "copies", "candidates",
                                                 "epochs", "hidden", "vocab_size")},  # fmt: skip
        "contenders": contenders,
        "ratios": {"off_minus_on_canary_exposure_bits": None if None in canary.values()
                   else canary["scrub_off"] - canary["scrub_on"]},
        "targets": [
            target_row("scrub on: mean canary exposure − controls (bits)", f"≤ {margin}", gap["scrub_on"],
                       None if gap["scrub_on"] is None else gap["scrub_on"] <= margin),
            target_row("scrub off: mean canary exposure − controls (bits)", f"> {margin}", gap["scrub_off"],
                       None if gap["scrub_off"] is None else gap["scrub_off"] > margin),
        ],  # fmt: skip
    }
    cols = ["contender", "status", "mean_canary_exposure", "mean_control_exposure", "max_control_exposure",
            "canary_minus_control", "train_s"]  # fmt: skip
    notes = [f"|R| = {a.candidates} (maximum exposure {math.log2(a.candidates):.2f} bits); {a.canaries} canaries and "
             f"{a.controls} controls per shape ({', '.join(SHAPES)}), each canary planted {a.copies} times among "
             f"{a.pairs} ChatbotData dialogues; tiny GPT-2 (2 layers, {a.hidden} hidden), {a.epochs} epochs.",
             "Wall times are from a machine shared with other jobs."]  # fmt: skip
    write_results(a.out, result, title="Canary exposure with PII scrubbing on and off", columns=cols, notes=notes)
    print(Path(a.out).with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
