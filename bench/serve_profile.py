"""Where a batched server's time goes under load: the step loop's parts and every thread's CPU, one process.

    python -m bench.serve_profile [--sessions 32] [--threads 1] [--max-tokens 40] --out results/serve_profile.json

The 125M KoGPT2 shape (as bench/serve_load.py) served in this process by uvicorn on 127.0.0.1 (``--max_batch_size``
32, preset ``fast``), loaded by ``--sessions`` streamed sessions from bench/serve_client.py in a child process. The
scheduler's parts are timed by wrapping them here (bench code, not shipped), in the batch thread's CPU time
(``time.thread_time``; with ``--threads 1`` all of torch's work runs in that thread) and wall time: ``forward`` (the
model call), ``choose`` (logits processors and sampling), ``step`` (one decode step, all of it). Each thread's CPU
(``/proc/self/task``) is summed by kind: the batch loop, the stream pump, the event loop, the request threads
(AnyIO workers, stream drains), threads that ended during the run (the process's CPU less the live threads'), others;
the client's CPU is its own process's. A step's wall time beyond its CPU time is time the batch thread waited: for
the GIL or a lock (``blocked``: its voluntary context switches per step) or for a core (``preempted``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from bench.common import REPO, child_env
from bench.machine import machine_info
from bench.writers import write_results

CLIENT = """
import asyncio, json, sys
from bench.serve_client import load, summarise
res = asyncio.run(load(sys.argv[1], None, int(sys.argv[2]), 1, int(sys.argv[3]), 120.0))
print(json.dumps(summarise(res, int(sys.argv[2]))))
"""


def thread_cpu() -> dict[int, tuple[float, int]]:
    """CPU seconds and times scheduled of each thread of this process, by native id (``schedstat``)."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            ns, _, slices = Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[:3]
        except (OSError, ValueError):
            continue
        out[int(tid)] = (int(ns) / 1e9, int(slices))
    return out


def switches(tid: int) -> tuple[int, int]:
    """A thread's voluntary (it blocked: the GIL, a lock, a queue) and involuntary (preempted) context switches."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/self/task/{tid}/status").read_text().splitlines())
    return int(status["voluntary_ctxt_switches"]), int(status["nonvoluntary_ctxt_switches"])


def kind(thread: threading.Thread | None) -> str:
    if thread is None:
        return "other (native)"
    if thread.name == "chat-batch":
        return "batch loop"
    if thread.name == "chat-stream":
        return "stream pump"
    if thread.name == "uvicorn":
        return "event loop"
    if "AnyIO" in thread.name or thread.name == "sse-drain":
        return "request threads"
    return f"other ({thread.name})"


def instrument(parts: dict[str, list[float]], prof: cProfile.Profile, profile: bool):
    """Wrap the scheduler's step, forward and choose (timing them by the batch thread's CPU and wall clock)."""
    from chathuman_hf.chat import batching

    def timed(name, fn, profile=False):
        def wrapper(*args, **kwargs):
            c0, w0 = time.thread_time(), time.perf_counter()
            try:
                return prof.runcall(fn, *args, **kwargs) if profile else fn(*args, **kwargs)
            finally:  # the joiners' prompt forward is "prefill", a one-token-per-row forward "forward"
                key = "prefill" if name == "forward" and args[1].shape[1] > 1 else name
                parts[key + "_cpu"].append(time.thread_time() - c0)
                parts[key + "_wall"].append(time.perf_counter() - w0)
        return wrapper

    batching.BatchScheduler._decode = timed("step", batching.BatchScheduler._decode, profile)
    batching.BatchScheduler._forward = timed("forward", batching.BatchScheduler._forward)
    batching.choose_tokens = timed("choose", batching.choose_tokens)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.serve_profile", description=__doc__.split("\n")[0])
    p.add_argument("--sessions", type=int, default=32)
    p.add_argument("--max-tokens", type=int, default=40)
    p.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    p.add_argument("--cprofile", action="store_true", help="cProfile the decode steps (slows the Python parts)")
    p.add_argument("--out", default="results/serve_profile.json")
    a = p.parse_args(argv)

    import torch

    from bench.generate import make_model_dir
    from chathuman_hf.serving import create_app
    from chathuman_hf.serving.runner import serve_in_thread

    torch.set_num_threads(a.threads)
    parts: dict[str, list[float]] = defaultdict(list)
    prof = cProfile.Profile()
    instrument(parts, prof, a.cprofile)
    with tempfile.TemporaryDirectory(prefix="bench_profile_") as tmp:
        model_dir = make_model_dir(Path(tmp) / "models", "kogpt2")
        app = create_app(str(model_dir), max_batch_size=32, max_queue=64, preset="fast")
        with serve_in_thread(app) as base:
            client = [sys.executable, "-c", CLIENT, base, str(a.sessions), str(a.max_tokens)]
            subprocess.run([*client[:4], "2", str(a.max_tokens)], cwd=REPO, env=child_env(), check=True,
                           capture_output=True)  # warm-up: the first forward, the streamer pump, the workers
            parts.clear()
            prof.__init__()
            batch_tid = next(t.native_id for t in threading.enumerate() if t.name == "chat-batch")
            before, c0, sw0 = thread_cpu(), os.times(), switches(batch_tid)
            t0 = time.perf_counter()
            run = subprocess.run(client, cwd=REPO, env=child_env(), check=True, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            after, c1, sw1 = thread_cpu(), os.times(), switches(batch_tid)
            by_id = {t.native_id: t for t in threading.enumerate()}
            load = __import__("json").loads(run.stdout.strip().splitlines()[-1])

    cpu: dict[str, float] = defaultdict(float)
    threads: dict[str, int] = defaultdict(int)
    wakes: dict[str, int] = defaultdict(int)
    for tid, (seconds, slices) in after.items():
        was = before.get(tid, (0.0, 0))
        cpu[kind(by_id.get(tid))] += seconds - was[0]
        wakes[kind(by_id.get(tid))] += slices - was[1]
        threads[kind(by_id.get(tid))] += 1
    own = (c1.user + c1.system) - (c0.user + c0.system)
    cpu["threads that ended during the run (stream drains)"] = max(0.0, own - sum(cpu.values()))
    cpu["load client (child process)"] = (c1.children_user + c1.children_system) - (c0.children_user
                                                                                     + c0.children_system)
    steps = len(parts["step_cpu"])

    def per_step(name: str) -> float:
        return 1000 * sum(parts[name]) / steps if steps else 0.0

    step = {f"{k}_ms_per_step": per_step(k) for k in ("step_cpu", "step_wall", "forward_cpu", "forward_wall",
                                                      "choose_cpu", "choose_wall")}
    step["batch_thread_blocked_per_step"] = (sw1[0] - sw0[0]) / steps if steps else 0.0
    step["batch_thread_preempted_per_step"] = (sw1[1] - sw0[1]) / steps if steps else 0.0
    step["prefill_cpu_ms_total"] = 1000 * sum(parts["prefill_cpu"])
    step["prefill_wall_ms_total"] = 1000 * sum(parts["prefill_wall"])
    stats = io.StringIO()
    if a.cprofile:
        pstats.Stats(prof, stream=stats).sort_stats("tottime").print_stats(25)
    result = {"machine": machine_info(), "loadavg_1m": os.getloadavg()[0],
              "settings": {"sessions": a.sessions, "max_tokens": a.max_tokens, "threads": a.threads},
              "load": load, "wall_s": wall, "decode_steps": steps, **step,
              "thread_cpu_s": {k: round(v, 2) for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])},
              "threads": dict(threads), "times_scheduled": dict(wakes)}
    result["contenders"] = {**{k: {"value": round(v, 2)} for k, v in step.items()},
                            **{f"CPU s, {k} ({threads[k]} threads, scheduled {wakes[k]} times)": {"value": v}
                               for k, v in result["thread_cpu_s"].items()}}
    notes = [f"load: {load}", f"decode steps: {steps}; load average at the end of the run: {result['loadavg_1m']:.2f}"]
    if a.cprofile:
        notes.append("cProfile of the decode steps (batch thread):\n\n```\n" + stats.getvalue().strip() + "\n```")
    write_results(a.out, result, title="Serving profile", columns=["contender", "value"], notes=notes)
    print(Path(a.out).with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
