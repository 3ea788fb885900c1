"""Result files of a benchmark: the JSON, and a markdown summary (contenders, ratios, targets, machine) beside it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def command_line() -> str:
    """This run's command as typed: ``python -m bench.NAME ARGS`` for a module (``sys.argv[0]`` is then its path)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    head = ["-m", spec.name] if spec is not None and spec.name != "__main__" else sys.argv[:1]
    return " ".join([Path(sys.executable).name, *head, *sys.argv[1:]])


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        if abs(value) >= 0.01:
            return f"{value:.3g}"
        return f"{value:.2e}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """Render a list of dicts as a GitHub markdown table (columns default to the union of keys, first-seen order)."""
    if not rows:
        return "(no rows)\n"
    if columns is None:
        columns = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def write_results(
    out: str | Path,
    result: dict[str, Any],
    *,
    title: str,
    columns: list[str] | None = None,
    notes: list[str] | None = None,
) -> tuple[Path, Path]:
    """Write `result` as JSON to `out` and a markdown summary (contenders table, ratios, machine) next to it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.setdefault("machine", {})["loadavg_end"] = list(os.getloadavg())
    result.setdefault("command", command_line())
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    md = out.with_suffix(".md")
    rows = [{"contender": name, **_flat(vals)} for name, vals in result.get("contenders", {}).items()]
    m = result.get("machine", {})
    parts = [
        f"# {title}\n",
        f"`{result['command']}` — {m.get('date_utc')}, {m.get('nproc')} × {m.get('cpu_model')}, "
        f"torch {m.get('torch')}, transformers {m.get('transformers')}; "
        f"load average at start {_load(m.get('loadavg_start'))}, at end {_load(m.get('loadavg_end'))}.\n",
        markdown_table(rows, columns),
    ]
    if result.get("ratios"):
        parts.append("\n" + markdown_table([{"ratio": k, "value": v} for k, v in result["ratios"].items()]))
    if result.get("targets"):
        parts.append("\n" + markdown_table(result["targets"]))
    for note in notes or []:
        parts.append(f"\n- {note}")
    md.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return out, md


def _load(values: list[float] | None) -> str:
    return " / ".join(f"{v:.2f}" for v in values) if values else "?"


def _flat(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if not isinstance(v, (dict, list))}


def target_row(name: str, target: str, measured: Any, met: bool | None) -> dict[str, Any]:
    return {"target": name, "wanted": target, "measured": measured, "met": met}
