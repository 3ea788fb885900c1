"""Collect the benchmark JSON files into one markdown summary (targets first, then each script's table).

    python -m bench.report [--results bench/results] [--out bench/results/SUMMARY.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.writers import markdown_table

SCRIPTS = ["preprocess", "train_throughput", "generate", "serve_load"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.split("\n")[0])
    p.add_argument("--results", default=str(Path(__file__).resolve().parent / "results"))
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    root = Path(a.results)
    targets, sections = [], []
    for name in SCRIPTS:
        path = root / f"{name}.json"
        if not path.exists():
            sections.append(f"## {name}\n\n(not run)\n")
            continue
        result = json.loads(path.read_text(encoding="utf-8"))
        m = result.get("machine", {})
        for t in result.get("targets", []):
            targets.append({"script": name, **t})
        md = path.with_suffix(".md")
        body = md.read_text(encoding="utf-8").split("\n", 1)[1] if md.exists() else ""
        sections.append(f"## {name}\n\n{body}\nload average at start/end: {m.get('loadavg_start')} / "
                        f"{m.get('loadavg_end')}\n")
    text = "# Benchmark summary\n\n" + markdown_table(targets, ["script", "target", "wanted", "measured", "met"])
    text += "\n" + "\n".join(sections)
    out = Path(a.out) if a.out else root / "SUMMARY.md"
    out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
