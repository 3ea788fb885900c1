"""The load of bench/serve_load.py: streamed chat sessions against an OpenAI-compatible server, and their summary.

Every session sends its messages one after another to ``/v1/chat/completions`` (streaming, ``max_tokens`` fixed, the
conversation kept client-side); a 503 is counted and retried after its ``Retry-After``; errors are counted.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

from bench.peak_memory import tree_rss

MESSAGES = [  # no skill triggers: every message reaches the model, here and on a plain OpenAI server
    "오늘 하루 너무 길었어",
    "점심 뭐 먹을지 고민이야",
    "주말에 비 온대",
    "요즘 잠을 잘 못 자",
    "친구랑 영화 보기로 했어",
    "내일 발표가 있어서 떨려",
    "새로 이사 온 동네가 좋아",
    "운동을 다시 시작해 볼까 해",
]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


async def ask(client, model: str | None, history: list[dict], max_tokens: int, out: dict[str, list]) -> str | None:
    """One streamed chat completion (503s retried after Retry-After); the reply text, or None on an error."""
    body = {"messages": history, "stream": True, "max_tokens": max_tokens, "stream_options": {"include_usage": True},
            **({"model": model} if model else {})}
    t0 = time.perf_counter()
    while True:
        first, text, tokens = None, [], None
        async with client.stream("POST", "/v1/chat/completions", json=body) as resp:
            if resp.status_code == 503:
                out["rejected_503"].append(1)
                await asyncio.sleep(float(resp.headers.get("retry-after", "1")))
                continue
            if resp.status_code != 200:
                out["errors"].append(f"HTTP {resp.status_code}: {(await resp.aread())[:100]!r}")
                return None
            async for line in resp.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                if "error" in event:
                    out["errors"].append(f"stream error: {str(event['error'])[:100]}")
                    return None
                if event.get("usage"):
                    tokens = event["usage"]["completion_tokens"]
                for choice in event.get("choices", []):
                    piece = choice.get("delta", {}).get("content")
                    if piece:
                        first = first or time.perf_counter() - t0
                        text.append(piece)
        break
    out["ttft"].append(first if first is not None else time.perf_counter() - t0)
    out["reply"].append(time.perf_counter() - t0)
    out["tokens"].append(tokens if tokens is not None else len(text))
    return "".join(text)


async def session(client, model: str | None, idx: int, n_messages: int, max_tokens: int,
                  out: dict[str, list]) -> None:
    history: list[dict] = []
    for m in range(n_messages):
        history.append({"role": "user", "content": MESSAGES[(idx + m) % len(MESSAGES)]})
        try:
            reply = await ask(client, model, history, max_tokens, out)
        except Exception as exc:  # counted, never hidden
            out["errors"].append(f"{type(exc).__name__}: {str(exc)[:100]}")
            return
        if reply is None:
            return
        history.append({"role": "assistant", "content": reply})


async def load(base_url: str, model: str | None, n_sessions: int, n_messages: int, max_tokens: int,
               max_seconds: float, proc=None) -> dict[str, Any]:
    import httpx

    out: dict[str, Any] = {"ttft": [], "reply": [], "tokens": [], "errors": [], "rejected_503": []}
    peak = {"mb": tree_rss(proc) / 2**20 if proc else None}
    limits = httpx.Limits(max_connections=n_sessions + 4, max_keepalive_connections=n_sessions + 4)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=max_seconds + 30) as client:
        t0 = time.perf_counter()
        tasks = [asyncio.create_task(session(client, model, i, n_messages, max_tokens, out))
                 for i in range(n_sessions)]
        while not all(t.done() for t in tasks) and time.perf_counter() - t0 < max_seconds:
            if proc is not None:
                peak["mb"] = max(peak["mb"], tree_rss(proc) / 2**20)
            await asyncio.wait(tasks, timeout=0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        out["wall_s"] = time.perf_counter() - t0
    out["peak_rss_mb"] = peak["mb"]
    return out


def summarise(res: dict[str, Any], total: int) -> dict[str, Any]:
    wall, done = res["wall_s"], len(res["reply"])
    ms = [x * 1000 for x in res["reply"]]
    ttft = [x * 1000 for x in res["ttft"]]
    return {
        "requests": total, "completed": done, "errors": len(res["errors"]),
        "error_kinds": sorted(set(res["errors"]))[:10], "rejected_503": len(res["rejected_503"]),
        "unfinished": total - done - len(res["errors"]), "wall_s": wall,
        "requests_per_s": done / wall if wall else None,
        "tokens_per_s": sum(res["tokens"]) / wall if wall else None,
        "ttft_ms_p50": statistics.median(ttft) if ttft else None, "ttft_ms_p95": pct(ttft, 0.95),
        "latency_ms_p50": statistics.median(ms) if ms else None, "latency_ms_p95": pct(ms, 0.95),
        "peak_rss_mb": round(res["peak_rss_mb"], 1) if res["peak_rss_mb"] else None,
    }
