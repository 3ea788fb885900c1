"""Shared helpers for the benchmark scripts: machine facts, peak RSS, the fp32 mm peak, result writers."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # measure this checkout's package, whatever an editable install points at
    sys.path.insert(1, str(REPO))
os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
SHARED = REPO.parent / "shared"
CHATBOT_CSV = SHARED / "data" / "ChatbotData.csv"
SAMPLE_DIR = REPO / "chathuman_hf" / "sample_data"
# corpora and tokenizers built by the scripts (reused across runs); results/ is git-ignored
CACHE = Path(os.environ.get("CHATHUMAN_BENCH_CACHE") or REPO / "results" / "bench_cache")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(f for f in flags if f.startswith(("avx", "fma", "amx")))
    except OSError:
        pass
    return []


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except ImportError:
        return None
    return getattr(mod, "__version__", None)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    except OSError:
        return None
    return out.stdout.strip() or None


def machine_info() -> dict[str, Any]:
    """Facts that make a result comparable: cores, CPU model, memory, library versions, load, date."""
    import psutil

    info: dict[str, Any] = {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "hostname": platform.node(),
        "nproc": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "git_commit": _git_commit(),
        "loadavg_start": list(os.getloadavg()),
    }
    for name in ("torch", "transformers", "datasets", "tokenizers", "trl", "accelerate", "pandas"):
        info[name] = _version(name)
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def _tree_rss(proc, children: bool = True) -> int:
    import psutil

    total = 0
    try:
        total += proc.memory_info().rss
        for child in proc.children(recursive=True) if children else []:
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return total


class PeakRSS:
    """Context manager sampling the RSS of this process plus its children; `.peak_mb` is the highest sum seen.

    `resource.getrusage` high-water marks cover the whole process lifetime, so a sampler thread is what gives a
    per-contender peak inside one run; the lifetime figures are recorded next to it as `ru_maxrss_*_mb`.
    """

    def __init__(self, interval: float = 0.05, pid: int | None = None, children: bool = True) -> None:
        import psutil

        self.interval = interval
        self.children = children
        self.proc = psutil.Process(pid or os.getpid())
        self.start_mb = 0.0
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, _tree_rss(self.proc, self.children) / 2**20)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.start_mb = _tree_rss(self.proc, self.children) / 2**20
        self.peak_mb = self.start_mb
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_mb = max(self.peak_mb, _tree_rss(self.proc, self.children) / 2**20)

    def to_dict(self) -> dict[str, float]:
        return {"peak_rss_mb": round(self.peak_mb, 1), "rss_start_mb": round(self.start_mb, 1)}


def mm_peak_flops(
    n: int = 2048, repeats: int = 5, min_seconds: float = 0.5, *, device: str = "cpu", dtype: Any = None
) -> dict[str, Any]:
    """Best-of-`repeats` `torch.mm` FLOP/s of two n×n matrices (fp32 on CPU by default) with torch's thread count."""
    import torch

    dtype = dtype or torch.float32
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    out = torch.empty(n, n, dtype=dtype, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    torch.mm(a, b, out=out)  # warm-up
    sync()
    flop = 2.0 * n**3
    rates = []
    for _ in range(repeats):
        iters = 0
        t0 = time.perf_counter()
        while True:
            torch.mm(a, b, out=out)
            iters += 1
            sync()
            dt = time.perf_counter() - t0
            if dt >= min_seconds:
                break
        rates.append(flop * iters / dt)
    return {
        "n": n,
        "dtype": str(dtype).replace("torch.", ""),
        "device": device,
        "threads": torch.get_num_threads(),
        "peak_flops": max(rates),
        "median_flops": statistics.median(rates),
        "repeats": repeats,
    }


def median(values: Iterable[float]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


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
    result.setdefault("command", " ".join([Path(sys.executable).name, *sys.argv]))
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
