"""Facts that make a benchmark result comparable: the machine, library versions, load, and the ``torch.mm`` peak."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import REPO


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
