"""Serving load: N concurrent chat sessions × M messages against `recipes/serve.py` on 127.0.0.1.

    python bench/serve_load.py [--quick] [--sessions 32] [--messages 5] [--model DIR] --out results/serve_load.json

The server runs as its own process (a tiny random-init chat model unless ``--model`` is given) so its RSS is its
own. Every session keeps its ``session_id`` and sends its messages one after another; half the sessions use
``/api/chat``, half ``/api/chat/stream`` (server-sent events; first-event latency recorded). The run is bounded in
count (N × M requests) and time (``--max-seconds``); requests still pending at the deadline count as errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, _tree_rss, machine_info, target_row, write_results  # noqa: E402

MESSAGES = [
    "오늘 하루 너무 길었어",
    "점심 뭐 먹을지 고민이야",
    "주말에 비 온대",
    "요즘 잠을 잘 못 자",
    "로또번호 뽑아줘",
    "친구랑 영화 보기로 했어",
    "지금 몇시야?",
    "내일 발표가 있어서 떨려",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


async def session(client, idx: int, n_messages: int, stream: bool, deadline: float, out: dict[str, list]) -> None:
    session_id = None
    for m in range(n_messages):
        text = MESSAGES[(idx + m) % len(MESSAGES)]
        body = {"message": text, **({"session_id": session_id} if session_id else {})}
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            out["errors"].append("deadline: not sent")
            continue
        t0 = time.perf_counter()
        try:
            if stream:
                first = None
                done = None
                async with client.stream("POST", "/api/chat/stream", json=body, timeout=remaining) as resp:
                    if resp.status_code != 200:
                        out["errors"].append(f"HTTP {resp.status_code}")
                        continue
                    async for line in resp.aiter_lines():
                        if not line.startswith("data: "):
                            continue
                        event = json.loads(line[6:])
                        if first is None:
                            first = time.perf_counter() - t0
                        if event.get("type") == "done":
                            done = event
                        elif event.get("type") == "error":
                            out["errors"].append(f"stream error: {event.get('message', '')[:100]}")
                if done is None:
                    out["errors"].append("stream ended without done")
                    continue
                session_id = done["session_id"]
                out["first_event"].append(first)
            else:
                resp = await client.post("/api/chat", json=body, timeout=remaining)
                if resp.status_code != 200:
                    out["errors"].append(f"HTTP {resp.status_code}: {resp.text[:100]}")
                    continue
                session_id = resp.json()["session_id"]
            out["latency"].append(time.perf_counter() - t0)
            out["ok"].append(stream)
        except Exception as exc:  # counted, never hidden
            out["errors"].append(f"{type(exc).__name__}: {str(exc)[:100]}")


async def load(base_url: str, n_sessions: int, n_messages: int, max_seconds: float) -> dict[str, Any]:
    import httpx

    out: dict[str, list] = {"latency": [], "first_event": [], "errors": [], "ok": []}
    limits = httpx.Limits(max_connections=n_sessions, max_keepalive_connections=n_sessions)
    async with httpx.AsyncClient(base_url=base_url, limits=limits) as client:
        t0 = time.perf_counter()
        deadline = t0 + max_seconds
        await asyncio.gather(*(session(client, i, n_messages, i % 2 == 1, deadline, out) for i in range(n_sessions)))
        wall = time.perf_counter() - t0
    out["wall_s"] = wall
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="3 messages per session, 60 s bound")
    p.add_argument("--out", default="results/serve_load.json")
    p.add_argument("--sessions", type=int, default=32)
    p.add_argument("--messages", type=int, default=None, help="messages per session (default 5, quick 3)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="time bound of the load phase (default 300, quick 90)")
    p.add_argument("--model", default=None, help="saved chat model directory (default: a tiny random-init one)")
    p.add_argument("--preset", default="fast")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the server process")
    a = p.parse_args(argv)
    n_messages = a.messages or (3 if a.quick else 5)
    max_seconds = a.max_seconds or (90.0 if a.quick else 300.0)

    import httpx
    import psutil

    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="bench_serve_") as tmp:
        model_dir = a.model
        if model_dir is None:
            from chathuman_hf.testing import make_tiny_model_dir

            model_dir = str(make_tiny_model_dir(Path(tmp) / "tiny"))
        port = free_port()
        cmd = [sys.executable, str(REPO / "recipes" / "serve.py"), "--model", model_dir, "--host", "127.0.0.1",
               "--port", str(port), "--device", "cpu", "--preset", a.preset, "--log_level", "warning"]
        log = open(Path(tmp) / "server.log", "w")  # noqa: SIM115 - closed below
        t_start = time.perf_counter()
        server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                  env={**os.environ, "HF_HUB_OFFLINE": "1",
                                       **({"OMP_NUM_THREADS": str(a.threads)} if a.threads else {})})
        base = f"http://127.0.0.1:{port}"
        try:
            while True:
                if server.poll() is not None:
                    log.flush()
                    raise RuntimeError(f"server exited ({server.returncode}): "
                                       f"{(Path(tmp) / 'server.log').read_text()[-500:]}")
                try:
                    if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.perf_counter() - t_start > 120:
                    raise TimeoutError("server did not answer /healthz within 120 s")
                time.sleep(0.2)
            startup_s = time.perf_counter() - t_start
            proc = psutil.Process(server.pid)
            rss_before = _tree_rss(proc) / 2**20
            peak = {"mb": rss_before}
            stop = asyncio.Event()

            async def sample() -> None:
                while not stop.is_set():
                    peak["mb"] = max(peak["mb"], _tree_rss(proc) / 2**20)
                    await asyncio.sleep(0.1)

            async def run() -> dict[str, Any]:
                sampler = asyncio.create_task(sample())
                try:
                    return await load(base, a.sessions, n_messages, max_seconds)
                finally:
                    stop.set()
                    await sampler

            print(f"[serve] {a.sessions} sessions × {n_messages} messages against {base}", flush=True)
            res = asyncio.run(run())
            rss_after = _tree_rss(proc) / 2**20
            health = httpx.get(f"{base}/healthz", timeout=5.0).json()
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()

    lat = res["latency"]
    ok_stream = [s for s in res["ok"] if s]
    total = a.sessions * n_messages
    contender = {
        "requests": total,
        "completed": len(lat),
        "errors": len(res["errors"]),
        "error_kinds": sorted(set(res["errors"]))[:10],
        "wall_s": res["wall_s"],
        "requests_per_s": len(lat) / res["wall_s"] if res["wall_s"] else None,
        "latency_ms_p50": (statistics.median(lat) * 1000) if lat else None,
        "latency_ms_p95": (pct(lat, 0.95) * 1000) if lat else None,
        "latency_ms_max": (max(lat) * 1000) if lat else None,
        "stream_first_event_ms_p50": (statistics.median(res["first_event"]) * 1000) if res["first_event"] else None,
        "streamed_requests": len(ok_stream),
        "server_startup_s": startup_s,
        "server_rss_before_mb": round(rss_before, 1),
        "server_rss_after_mb": round(rss_after, 1),
        "server_peak_rss_mb": round(peak["mb"], 1),
        "peak_rss_mb": round(peak["mb"], 1),
        "live_sessions_after": health.get("sessions"),
    }
    result = {
        "machine": machine,
        "settings": {"sessions": a.sessions, "messages_per_session": n_messages, "max_seconds": max_seconds,
                     "server_threads": a.threads or "default",
                     "model": a.model or "tiny random-init (make_tiny_model_dir)", "preset": a.preset,
                     "endpoints": "/api/chat (even sessions), /api/chat/stream (odd sessions)"},
        "contenders": {"ours": contender},
        "ratios": {"completed_share": len(lat) / total if total else None},
        "targets": [target_row("errors under load", "0", len(res["errors"]), len(res["errors"]) == 0)],
    }
    cols = ["contender", "requests", "completed", "errors", "requests_per_s", "latency_ms_p50", "latency_ms_p95",
            "stream_first_event_ms_p50", "server_rss_before_mb", "server_rss_after_mb", "server_peak_rss_mb", "wall_s"]
    notes = [f"{a.sessions} concurrent sessions × {n_messages} messages, bounded by {max_seconds:.0f} s; "
             f"preset {a.preset}; generation is serialised by the engine lock, so requests/s ≈ 1 / reply time."]
    write_results(a.out, result, title="Serving load", columns=cols, notes=notes)
    print(Path(a.out).with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
