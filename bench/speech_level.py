"""Speech-level classifier (chathuman_hf.korean.analysis) throughput on one core, and its accuracy on our labelled set.

    python -m bench.speech_level [--quick] --out results/speech_level.json

Utterances: every question and answer of ChatbotData (../shared/data, 23,646 everyday utterances) when present,
else our hand-labelled set repeated. The process is pinned to one CPU core; Kiwi runs without a thread pool.
Target: ≥ 2,000 utterances per second of that core's CPU time (wall-clock rate reported too: on a shared machine
the core is not ours alone). Accuracy is on tests/speech_levels.tsv (hand-labelled, ≥ 95% wanted).
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

from bench.common import CHATBOT_CSV, REPO
from bench.machine import machine_info
from bench.peak_memory import PeakRSS
from bench.writers import target_row, write_results

LABELLED = REPO / "tests" / "speech_levels.tsv"


def utterances(limit: int) -> tuple[list[str], str]:
    """Up to ``limit`` utterances and where they come from."""
    if CHATBOT_CSV.is_file():
        with CHATBOT_CSV.open(encoding="utf-8") as f:
            texts = [t for row in csv.DictReader(f) for t in (row["Q"], row["A"])]
        source = "ChatbotData Q and A"
    else:
        texts = [line.split("\t", 1)[1] for line in LABELLED.read_text(encoding="utf-8").splitlines()[1:]]
        source = "tests/speech_levels.tsv (repeated)"
    while len(texts) < limit:
        texts = texts + texts
    return texts[:limit], source


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.speech_level", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5,000 utterances instead of all.")
    parser.add_argument("--limit", type=int, default=None, help="Number of utterances (default: all, quick: 5,000).")
    parser.add_argument("--out", default="results/speech_level.json")
    a = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    from chathuman_hf.korean.analysis import kiwi, speech_level

    machine = machine_info()
    t0 = time.perf_counter()
    kiwi()
    load_s = time.perf_counter() - t0
    texts, source = utterances(a.limit or (5000 if a.quick else 23646))
    for text in texts[:200]:  # warm-up
        speech_level(text)
    with PeakRSS() as rss:
        t0, c0 = time.perf_counter(), time.process_time()
        labels = [speech_level(t) for t in texts]
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    rows = [line.split("\t", 1) for line in LABELLED.read_text(encoding="utf-8").splitlines()[1:] if line]
    correct = sum(speech_level(text) == label for label, text in rows)
    rate = len(texts) / seconds
    cpu_rate = len(texts) / cpu_seconds  # per second of the one core actually given to us (the machine is shared)
    accuracy = correct / len(rows)
    shares = {level: labels.count(level) / len(labels) for level in ("polite", "plain", "undetermined")}
    result = {
        "machine": machine,
        "contenders": {"kiwi_speech_level": {
            "utterances_per_s": rate, "utterances_per_cpu_s": cpu_rate, "utterances": len(texts), "seconds": seconds,
            "cpu_seconds": cpu_seconds, "model_load_s": load_s,
            "labelled_accuracy": accuracy, "labelled_utterances": len(rows), "cores": 1, **rss.to_dict(),
            **{f"share_{k}": v for k, v in shares.items()},
        }},
        "ratios": {},
        "targets": [
            target_row("speech-level throughput, one core (per CPU-second)", "≥ 2,000 utterances/s", round(cpu_rate),
                       cpu_rate >= 2000),
            target_row("… per wall-clock second (shared machine)", "—", round(rate), None),
            target_row("accuracy on tests/speech_levels.tsv", "≥ 95%", f"{accuracy:.1%}", accuracy >= 0.95),
        ],
        "source": source,
    }
    notes = [f"utterances: {source}", "machine shared with other jobs: throughput is noisy (see the load average)"]
    write_results(a.out, result, title="Speech-level classifier: throughput and accuracy", notes=notes)
    print(Path(a.out).with_suffix(".md").read_text(encoding="utf-8"))
    return result


if __name__ == "__main__":
    main()
