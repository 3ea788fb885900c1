"""Peak resident memory of a process and its children, sampled while a contender runs."""

from __future__ import annotations

import os
import threading


def tree_rss(proc, children: bool = True) -> int:
    """Bytes resident in the psutil process `proc` plus (with `children`) all its descendants; 0 once it is gone."""
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
            self.peak_mb = max(self.peak_mb, tree_rss(self.proc, self.children) / 2**20)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.start_mb = tree_rss(self.proc, self.children) / 2**20
        self.peak_mb = self.start_mb
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_mb = max(self.peak_mb, tree_rss(self.proc, self.children) / 2**20)

    def to_dict(self) -> dict[str, float]:
        return {"peak_rss_mb": round(self.peak_mb, 1), "rss_start_mb": round(self.start_mb, 1)}
