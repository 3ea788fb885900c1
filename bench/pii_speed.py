"""PII scrubbing speed on one core: utterances per second of ``scrub_dialogue`` (names + every PII type).

    python -m bench.pii_speed [--quick] --out results/pii_speed.json

Contenders (the same code, different text mixes), each the median of ``--repeats`` timed passes in this process:

- ``chatbotdata``: every question and answer of ``../shared/data/ChatbotData.csv`` (the embedded sample when absent),
  in dialogues of two speakers with Korean names — what a real everyday-conversation corpus looks like;
- ``mix_10pct``: the same with every tenth utterance carrying a synthetic PII value (all types);
- ``pii_only``: only synthetic PII sentences (the worst case: every utterance runs the full regex).

Target: ≥ 20,000 utterances/s on one core for the realistic corpora.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import CHATBOT_CSV
from bench.machine import machine_info
from bench.peak_memory import PeakRSS
from bench.writers import target_row, write_results
from chathuman_hf.data.names import FakeNamer
from chathuman_hf.data.pii_synthetic import GENERATORS, positives
from chathuman_hf.data.scrub import scrub_dialogue

TARGET = 20_000
SPEAKERS = ["김민준", "이서연"]
DIALOGUE_LEN = 8


def chatbot_utterances() -> list[str]:
    """ChatbotData questions and answers, or the embedded sample's texts when the shared data is absent."""
    if CHATBOT_CSV.exists():
        with CHATBOT_CSV.open(encoding="utf-8") as handle:
            return [text for row in csv.DictReader(handle) for text in (row["Q"], row["A"])]
    from tests.helpers.tiny_models import sample_texts

    return sample_texts()


def mixes(limit: int | None) -> dict[str, list[str]]:
    base = chatbot_utterances()[:limit]
    pii = [s for kind in sorted(GENERATORS) for s, _ in positives(kind, n=200, seed=1)]
    mix = [pii[i // 10 % len(pii)] if i % 10 == 9 else text for i, text in enumerate(base)]
    return {"chatbotdata": base, "mix_10pct": mix, "pii_only": (pii * (1 + len(base) // len(pii)))[: len(base)]}


def measure(texts: list[str], repeats: int) -> dict[str, Any]:
    dialogues = [texts[i : i + DIALOGUE_LEN] for i in range(0, len(texts), DIALOGUE_LEN)]
    rates, found = [], 0
    for r in range(repeats):
        t0 = time.perf_counter()
        total = 0
        for d, chunk in enumerate(dialogues):
            _, _, counts = scrub_dialogue(SPEAKERS * (len(chunk) // 2 + 1), chunk, FakeNamer(r, str(d)))
            total += sum(counts.values())
        rates.append(len(texts) / (time.perf_counter() - t0))
        found = total
    return {"utterances": len(texts), "utterances_per_s": statistics.median(rates), "best_per_s": max(rates),
            "replaced_per_pass": found, "repeats": repeats}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.pii_speed", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="5,000 utterances per mix, 3 passes")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--out", default="results/pii_speed.json")
    a = p.parse_args(argv)
    repeats = a.repeats or (3 if a.quick else 7)
    machine = machine_info()
    contenders = {}
    for name, texts in mixes(5000 if a.quick else None).items():
        with PeakRSS(children=False) as rss:
            contenders[name] = measure(texts, repeats)
        contenders[name]["peak_rss_mb"] = round(rss.peak_mb, 1)
    for name, row in contenders.items():
        print(f"[pii_speed] {name}: {row['utterances_per_s']:,.0f} utterances/s", flush=True)
    real = min(contenders[n]["utterances_per_s"] for n in ("chatbotdata", "mix_10pct"))
    result = {
        "machine": machine,
        "settings": {"repeats": repeats, "quick": a.quick, "dialogue_len": DIALOGUE_LEN, "threads": 1},
        "contenders": contenders,
        "ratios": {"pii_only_vs_chatbotdata": contenders["pii_only"]["utterances_per_s"]
                   / contenders["chatbotdata"]["utterances_per_s"]},  # fmt: skip
        "targets": [target_row("utterances/s on one core (ChatbotData and 10% PII mix)", f"≥ {TARGET:,}", real,
                               real >= TARGET)],  # fmt: skip
    }
    notes = ["One Python thread; names (two speakers per dialogue) and every PII type on; the machine may be shared "
             "with other jobs (see the load averages): numbers are noisy."]  # fmt: skip
    write_results(a.out, result, title="PII scrubbing speed (one core)", notes=notes)
    print(Path(a.out).with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
