"""Accuracy of the Kiwi speech-level conversion (chathuman_hf.korean.conversion) on ChatbotData, both ways.

    python -m bench.speech_conversion [--n 300] [--sample 40] --out results/speech_conversion.json

Polite → plain: ``--n`` answers of ChatbotData the classifier reads as polite (seeded draw); plain → polite: ``--n``
questions it reads as plain. Per direction: the share the classifier reads at the target level afterwards, the share
left unchanged, the share read undetermined, and ``--sample`` pairs per direction written out for a hand check
(``*_sample.tsv``: before, after, classifier level; judged by hand in bench/RESULTS.md). Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from pathlib import Path

from bench.common import CHATBOT_CSV
from bench.machine import machine_info
from bench.writers import target_row, write_results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.speech_conversion", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300, help="Sentences per direction (>= 200 for the target).")
    parser.add_argument("--sample", type=int, default=40, help="Pairs per direction written out for a hand check.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/speech_conversion.json")
    a = parser.parse_args(argv)
    if not CHATBOT_CSV.is_file():
        raise SystemExit(f"{CHATBOT_CSV} is absent: this benchmark needs ChatbotData")
    from chathuman_hf.korean.analysis import PLAIN, POLITE, UNDETERMINED, speech_level
    from chathuman_hf.korean.conversion import convert

    machine = machine_info()
    with CHATBOT_CSV.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    rng = random.Random(a.seed)
    pools = {POLITE: sorted({r["A"] for r in rows}), PLAIN: sorted({r["Q"] for r in rows})}
    contenders, targets, samples = {}, [], {}
    for source, target, name in ((POLITE, PLAIN, "polite_to_plain"), (PLAIN, POLITE, "plain_to_polite")):
        pool = pools[source][:]
        rng.shuffle(pool)
        chosen = []
        for text in pool:
            if speech_level(text) == source:
                chosen.append(text)
            if len(chosen) >= a.n:
                break
        t0 = time.perf_counter()
        outputs = [convert(text, target) for text in chosen]
        seconds = time.perf_counter() - t0
        levels = [speech_level(text) for text in outputs]
        at_target = sum(lv == target for lv in levels) / len(levels)
        contenders[name] = {
            "sentences": len(chosen), "at_target_level": at_target,
            "undetermined": sum(lv == UNDETERMINED for lv in levels) / len(levels),
            "still_source_level": sum(lv == source for lv in levels) / len(levels),
            "unchanged": sum(o == t for o, t in zip(outputs, chosen, strict=True)) / len(chosen),
            "sentences_per_s": len(chosen) / seconds,
        }
        targets.append(target_row(f"{name}: classifier reads the target level", "≥ 90%", f"{at_target:.1%}",
                                  at_target >= 0.9))
        samples[name] = list(zip(chosen, outputs, levels, strict=True))
    out = Path(a.out)
    for name, pairs in samples.items():
        lines = ["before\tafter\tlevel_after"] + ["\t".join(p) for p in pairs[: a.sample]]
        out.with_name(f"{out.stem}_{name}_sample.tsv").parent.mkdir(parents=True, exist_ok=True)
        out.with_name(f"{out.stem}_{name}_sample.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        misses = [p for p in pairs if p[2] != (PLAIN if name == "polite_to_plain" else POLITE)]
        out.with_name(f"{out.stem}_{name}_misses.tsv").write_text(
            "\n".join(["before\tafter\tlevel_after"] + ["\t".join(p) for p in misses]) + "\n", encoding="utf-8")
    result = {"machine": machine, "contenders": contenders, "ratios": {}, "targets": targets,
              "source": "ChatbotData answers (polite) and questions (plain), distinct texts, seeded draw"}
    write_results(a.out, result, title="Speech-level conversion accuracy on ChatbotData",
                  notes=["the hand check of the *_sample.tsv pairs is in bench/RESULTS.md"])
    print(out.with_suffix(".md").read_text(encoding="utf-8"))
    return result


if __name__ == "__main__":
    main()
