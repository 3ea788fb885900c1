"""Serving load: 1, 8, 32, 128 concurrent chat sessions against the one-at-a-time and the batching engine.

    python -m bench.serve_load [--quick] [--sizes tiny kogpt2] [--batch-sizes 1 32] [--sessions 1 8 32 128]
                               [--messages 3 1] [--threads 1] --out results/serve_load.json
    python -m bench.serve_load --url http://127.0.0.1:8001 --sessions 1 8 32 128   # any OpenAI-compatible server

For each model size (``tiny``: the quickstart shape; ``kogpt2``: the 125M KoGPT2 shape, random init from a config,
as in bench/generate.py) and each ``--max_batch_size`` (1 = one reply at a time), `recipes/serve.py` runs as its own
process on 127.0.0.1, so its RSS is its own; the session counts then run one after another against it. Every session
sends its messages one after another to ``/v1/chat/completions`` (streaming, ``max_tokens`` fixed, the conversation
kept client-side, as an OpenAI client does), so the same load runs against vLLM or any OpenAI-compatible server with
``--url``. A 503 is counted and retried after its ``Retry-After``; a request still unanswered at ``--max-seconds``
counts as unfinished.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from bench.common import REPO, child_env, ratio
from bench.machine import machine_info
from bench.serve_client import load, summarise
from bench.writers import target_row, write_results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listens(proc: subprocess.Popen, port: int) -> bool:
    """True once ``proc`` itself listens on ``port``: a free port can be taken by another bench's server between
    ``free_port`` and the bind, and that server would answer our ``/healthz`` while ours is still loading."""
    import psutil

    return any(c.laddr.port == port and c.status == psutil.CONN_LISTEN
               for c in psutil.Process(proc.pid).net_connections("tcp"))


def wait_until_served(proc: subprocess.Popen, port: int, log: IO[str], timeout: float) -> str:
    """The base URL once ``proc`` (``recipes/serve.py`` on ``port``) answers ``/healthz`` itself; an exit or no
    answer within ``timeout`` seconds is an error naming its log."""
    import httpx

    base, start = f"http://127.0.0.1:{port}", time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            log.flush()
            raise RuntimeError(f"server exited ({proc.returncode}): see {log.name}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2.0).status_code == 200 and listens(proc, port):
                return base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"server did not answer /healthz within {timeout:g} s: see {log.name}")


def start_server(model_dir: str, batch: int, a: argparse.Namespace, tmp: Path):
    port = free_port()
    cmd = [sys.executable, str(REPO / "recipes" / "serve.py"), "--model", model_dir, "--host", "127.0.0.1",
           "--port", str(port), "--device", "cpu", "--preset", a.preset, "--log_level", "warning",
           "--max_batch_size", str(batch), "--max_queue", str(a.max_queue)]
    log = open(tmp / f"server_b{batch}.log", "w")  # noqa: SIM115 - closed by stop_server
    env = child_env(HF_HUB_OFFLINE="1", **({"OMP_NUM_THREADS": str(a.threads)} if a.threads else {}))
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    t0 = time.perf_counter()
    base = wait_until_served(server, port, log, timeout=180)
    return server, log, base, time.perf_counter() - t0


def wait_idle(base: str, seconds: float = 60.0) -> dict:
    import httpx

    deadline = time.perf_counter() + seconds
    while True:
        health = httpx.get(f"{base}/healthz", timeout=5.0).json()
        if (health.get("batch_occupancy", 0) == 0 and health.get("queue_depth", 0) == 0) \
                or time.perf_counter() > deadline:
            return health
        time.sleep(0.2)


def step_limit(model_dir: str, a: argparse.Namespace) -> dict[str, Any]:
    """The step-time limit in a process of its own with the server's threads (``bench.batch_step --limit-only``)."""
    import json

    env = child_env(HF_HUB_OFFLINE="1", **({"OMP_NUM_THREADS": str(a.threads)} if a.threads else {}))
    out = subprocess.run([sys.executable, "-m", "bench.batch_step", "--limit-only", model_dir, "--rows",
                          str(a.limit_rows), "--tokens", str(a.max_tokens), "--repeats", "3"],
                         cwd=REPO, env=env, capture_output=True, text=True, check=True)
    limit = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"[serve] step-time limit: {limit}", flush=True)
    return {"model": "limit", "sessions": limit["rows"], "tokens_per_s": limit["tokens_per_s"],
            "step_ms": limit["step_ms"], "loadavg_1m": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.serve_load", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny model only, 1/8/32 sessions × 2 messages, 60 s bound")
    p.add_argument("--out", default="results/serve_load.json")
    p.add_argument("--sizes", nargs="+", default=None, choices=["tiny", "kogpt2"], help="default: tiny kogpt2")
    p.add_argument("--model", default=None, help="serve this saved chat model directory instead of --sizes")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 32], help="--max_batch_size of each engine")
    p.add_argument("--sessions", nargs="+", type=int, default=None, help="concurrent sessions (default 1 8 32 128)")
    p.add_argument("--messages", nargs="+", type=int, default=None,
                   help="messages per session, one value or one per size (default 3 for tiny, 1 for kogpt2)")
    p.add_argument("--max-tokens", type=int, default=40, help="max_tokens of every request")
    p.add_argument("--max-queue", type=int, default=64, help="--max_queue of the server")
    p.add_argument("--max-seconds", type=float, default=None, help="bound of each load run (default 120, quick 60)")
    p.add_argument("--preset", default="fast")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the server process")
    p.add_argument("--url", default=None, help="an OpenAI-compatible server to load instead (e.g. vLLM)")
    p.add_argument("--limit-rows", type=int, default=16,
                   help="rows of the step-time limit: a forward of that many rows over a warm cache, no engine")
    a = p.parse_args(argv)
    sizes = a.sizes or (["tiny"] if a.quick else ["tiny", "kogpt2"])
    if a.model:
        sizes = ["model"]
    sessions = a.sessions or ([1, 8, 32] if a.quick else [1, 8, 32, 128])
    per_size = a.messages or ([2] if a.quick else [3 if s != "kogpt2" else 1 for s in sizes])
    messages = dict(zip(sizes, per_size * len(sizes) if len(per_size) == 1 else per_size, strict=True))
    max_seconds = a.max_seconds or (60.0 if a.quick else 120.0)

    import httpx
    import psutil

    machine = machine_info()
    contenders: dict[str, dict[str, Any]] = {}
    if a.url:
        model = httpx.get(f"{a.url}/v1/models", timeout=10).json()["data"][0]["id"]
        for n in sessions:
            print(f"[serve] {a.url} ({model}): {n} sessions × {per_size[0]} messages", flush=True)
            res = asyncio.run(load(a.url, model, n, per_size[0], a.max_tokens, max_seconds))
            contenders[f"url_s{n}"] = {"server": a.url, "model": model, "max_batch_size": None, "sessions": n,
                                       **summarise(res, n * per_size[0])}
    else:
        from bench.generate import make_model_dir

        with tempfile.TemporaryDirectory(prefix="bench_serve_") as tmp:
            for size in sizes:
                model_dir = a.model or str(make_model_dir(Path(tmp) / "models", size))
                contenders[f"{size}_limit_r{a.limit_rows}"] = step_limit(model_dir, a)
                for batch in a.batch_sizes:
                    server, log, base, startup = start_server(model_dir, batch, a, Path(tmp))
                    try:
                        proc = psutil.Process(server.pid)
                        for n in sessions:
                            print(f"[serve] {size}, --max_batch_size {batch}: {n} sessions × {messages[size]} "
                                  f"messages (load {os.getloadavg()[0]:.2f})", flush=True)
                            wait_idle(base)
                            res = asyncio.run(load(base, None, n, messages[size], a.max_tokens, max_seconds, proc))
                            contenders[f"{size}_b{batch}_s{n}"] = {
                                "model": size, "max_batch_size": batch, "sessions": n,
                                **summarise(res, n * messages[size]), "server_startup_s": startup,
                                "loadavg_1m": os.getloadavg()[0]}
                            print({k: v for k, v in contenders[f"{size}_b{batch}_s{n}"].items()
                                   if k != "error_kinds"}, flush=True)
                    finally:
                        server.terminate()
                        try:
                            server.wait(timeout=15)
                        except subprocess.TimeoutExpired:
                            server.kill()
                        log.close()

    ratios: dict[str, Any] = {}
    targets = []
    if not a.url and len(a.batch_sizes) > 1:
        one, many = a.batch_sizes[0], a.batch_sizes[-1]
        for size in sizes:
            for n in sessions:
                lo, hi = contenders.get(f"{size}_b{one}_s{n}"), contenders.get(f"{size}_b{many}_s{n}")
                if lo and hi:
                    key = f"{size}_s{n}"
                    ratios[f"{key}_tokens_per_s_b{many}_vs_b{one}"] = ratio(hi["tokens_per_s"], lo["tokens_per_s"])
                    ratios[f"{key}_p95_reply_b{many}_vs_b{one}"] = ratio(hi["latency_ms_p95"], lo["latency_ms_p95"])
        big = "kogpt2" if "kogpt2" in sizes else sizes[0]
        speed = ratios.get(f"{big}_s32_tokens_per_s_b{many}_vs_b{one}")
        p95 = ratios.get(f"{big}_s32_p95_reply_b{many}_vs_b{one}")
        speed16 = ratios.get(f"{big}_s16_tokens_per_s_b{many}_vs_b{one}")
        limit, batched16 = contenders.get(f"{big}_limit_r{a.limit_rows}"), contenders.get(f"{big}_b{many}_s16")
        of_limit = ratio(batched16["tokens_per_s"], limit["tokens_per_s"]) if limit and batched16 else None
        ratios[f"{big}_s16_tokens_per_s_b{many}_vs_step_limit_r{a.limit_rows}"] = of_limit
        ttft = (contenders.get(f"{big}_b{many}_s32") or {}).get("ttft_ms_p95")
        targets += [target_row(f"{big}, 16 sessions: tokens/s batched vs one at a time", "≥ 4", speed16,
                               None if speed16 is None else speed16 >= 4),
                    target_row(f"{big}, 32 sessions: tokens/s batched vs one at a time", "≥ 6", speed,
                               None if speed is None else speed >= 6),
                    target_row(f"{big}, 16 sessions: batched tokens/s vs the step-time limit of {a.limit_rows} rows",
                               "≥ 0.5", of_limit, None if of_limit is None else of_limit >= 0.5),
                    target_row(f"{big}, 32 sessions: p95 time to first token (ms)", "≤ 2000", ttft,
                               None if ttft is None else ttft <= 2000),
                    target_row(f"{big}, 32 sessions: p95 reply batched vs one at a time", "≤ 0.5", p95,
                               None if p95 is None else p95 <= 0.5)]
    errors = sum(c.get("errors", 0) for c in contenders.values())
    targets.append(target_row("errors (503s retried are not errors)", "0", errors, errors == 0))
    result = {
        "machine": machine,
        "settings": {"sizes": sizes, "batch_sizes": a.batch_sizes, "sessions": sessions, "messages": messages,
                     "max_tokens": a.max_tokens, "max_queue": a.max_queue, "max_seconds": max_seconds,
                     "preset": a.preset, "server_threads": a.threads or "default", "url": a.url,
                     "endpoint": "/v1/chat/completions, streaming, history kept client-side"},
        "contenders": contenders, "ratios": ratios, "targets": targets,
    }
    cols = ["contender", "sessions", "completed", "errors", "rejected_503", "unfinished", "requests_per_s",
            "tokens_per_s", "ttft_ms_p50", "ttft_ms_p95", "latency_ms_p50", "latency_ms_p95", "peak_rss_mb", "wall_s"]
    notes = [f"Each run bounded by {max_seconds:.0f} s; max_tokens {a.max_tokens}; preset {a.preset}; server "
             f"--max_queue {a.max_queue}; a 503 waits its Retry-After and retries (rejected_503 counts them). "
             "Latencies count from the first attempt. The load client shares the machine with the server."]
    write_results(a.out, result, title="Serving load", columns=cols, notes=notes)
    print(Path(a.out).with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
