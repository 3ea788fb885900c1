"""Where a batched decoding step goes: model forward vs cache work vs logits processors vs streaming, and the limit.

    python -m bench.batch_step [--rows 16] [--tokens 40] [--preset fast] [--threads N] --out results/batch_step.json

The 125M KoGPT2 shape (random init from a config, as in bench/serve_load.py) behind the engine's own
``BatchScheduler``, ``--rows`` replies submitted together with ``TextIteratorStreamer``s drained by one thread each
(as the server's request threads drain them). The scheduler's parts are timed by wrapping them here (bench code, not
shipped): ``forward`` (the model call), ``join`` (prefill merge / re-pad), ``leave`` (dropping finished rows),
``choose`` (logits processors and sampling, without the streamers) and ``stream`` (``streamer.put``: detokenising).
``limit``: the same model's decode forward of ``--rows`` rows over a warm cache with no engine around it — the
step-time limit; ``limit_tokens_per_s`` = rows / that step time. A cProfile of the engine run goes to the .md too.
Parts and steps are timed in this thread's CPU time (``time.thread_time``: robust to a loaded machine; with
``--threads 1`` all of torch's work runs in this thread), the runs' wall time is reported beside it.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.common import ratio
from bench.machine import machine_info
from bench.writers import write_results

PARTS = {"forward": "_forward", "join": "_place", "leave": "_drop"}


def limit_step(model, rows: int, prompt: int, steps: int, clock=time.thread_time) -> float:
    """Median seconds of one decode forward of ``rows`` rows over a warm cache (no engine), by ``clock``."""
    import torch
    from transformers import DynamicCache

    ids = torch.randint(0, 1000, (rows, prompt))
    with torch.inference_mode():
        cache = DynamicCache(config=model.config)
        model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
        times, last = [], ids[:, -1:]
        for _ in range(steps):
            t0 = clock()
            out = model(input_ids=last, cache=cache, use_cache=True, logits_to_keep=1)
            last = out.logits[:, -1].argmax(-1, keepdim=True)
            times.append(clock() - t0)
    return statistics.median(times[2:] or times)


def engine_run(engine, preset: str, rows: int, prof: cProfile.Profile | None = None) -> dict[str, Any]:
    """``rows`` replies joining together, decoded by the engine's scheduler driven here (its loop body, in this
    thread, so cProfile sees it), each streamer drained by its own thread; wall time, tokens, steps."""
    import torch
    from transformers import TextIteratorStreamer

    from bench.serve_client import MESSAGES
    from chathuman_hf.chat.decoding import Job
    from chathuman_hf.chat.presets import get_preset

    config = engine.generation_config(get_preset(preset))
    jobs, drains = [], []
    for i in range(rows):
        ids = engine.prompt_ids([{"role": "user", "content": MESSAGES[i % len(MESSAGES)]}],
                                max_new_tokens=config.max_new_tokens)
        streamer = TextIteratorStreamer(engine.tokenizer, skip_prompt=False, skip_special_tokens=True, timeout=120)
        jobs.append(Job(ids, config, time.monotonic() + 600, streamer=streamer))
        drains.append(threading.Thread(target=lambda s=streamer: [None for _ in s], daemon=True))
    for t in drains:
        t.start()
    sched = engine.scheduler
    if hasattr(sched, "pump"):  # what submit() does: streamers fed from the pump thread
        import chathuman_hf.chat.batching as batching

        sched.pump = sched.pump or batching.StreamPump()
        for job in jobs:
            job.streamer = batching.PumpedStreamer(job.streamer, sched.pump)
    steps0 = sched.steps
    t0, c0 = time.perf_counter(), time.thread_time()
    if prof:
        prof.enable()
    sched.pending.extend(jobs)
    with torch.inference_mode():
        sched._prefill(sched._take_joiners())
        while sched.rows:
            sched._decode()
    wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
    if prof:
        prof.disable()
    for t in drains:
        t.join()
    return {"wall_s": wall, "cpu_s": cpu, "tokens": sum(len(j.tokens) for j in jobs), "steps": sched.steps - steps0}


def wrap(obj, name: str, key: str, timers: dict[str, list[float]]) -> None:
    inner = getattr(obj, name)

    def timed(*args, **kwargs):
        t0 = time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:  # the joiners' prompt forward is "prefill", a one-token-per-row forward "forward"
            prefill = key == "forward" and args[0].shape[1] > 1
            timers["prefill" if prefill else key].append(time.thread_time() - t0)

    setattr(obj, name, timed)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.batch_step", description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=16)
    p.add_argument("--tokens", type=int, default=40, help="max_new_tokens (random weights rarely end a reply early)")
    p.add_argument("--preset", default="fast")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--size", default="kogpt2", choices=["tiny", "kogpt2"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="results/batch_step.json")
    p.add_argument("--limit-only", metavar="MODEL_DIR", default=None,
                   help="only the step-time limit of this saved model, wall clock, one JSON line on stdout "
                        "(bench/serve_load.py runs it with the server's threads)")
    a = p.parse_args(argv)
    if a.limit_only:
        import json

        import torch
        from transformers import AutoModelForCausalLM

        if a.threads:
            torch.set_num_threads(a.threads)
        model = AutoModelForCausalLM.from_pretrained(a.limit_only).eval()
        step = statistics.median(limit_step(model, a.rows, 32 + a.tokens // 2, 12, time.perf_counter)
                                 for _ in range(a.repeats))
        print(json.dumps({"rows": a.rows, "step_ms": 1000 * step, "tokens_per_s": a.rows / step}))
        return

    import torch

    import chathuman_hf.chat.batching as batching
    import chathuman_hf.chat.decoding as decoding
    from bench.generate import make_model_dir
    from chathuman_hf.chat.engine import ChatEngine

    if a.threads:
        torch.set_num_threads(a.threads)
    timers: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="bench_step_") as tmp:
        engine = ChatEngine.from_pretrained(make_model_dir(Path(tmp), a.size), device="cpu",
                                            max_batch_size=max(2, a.rows))
    from chathuman_hf.chat.presets import get_preset

    config = engine.generation_config(get_preset(a.preset))
    config.max_new_tokens = a.tokens
    sched = engine.scheduler
    for key, name in PARTS.items():
        wrap(sched, name if hasattr(sched, name) else "_merge", key, timers)  # _merge: the left-padded engine
    choose = decoding.choose_tokens

    from transformers import TextIteratorStreamer

    real_put = TextIteratorStreamer.put

    def timed_put(self, value):  # in the step loop ("stream") or beside it on the pump thread ("stream_pump")
        t0 = time.thread_time()
        try:
            return real_put(self, value)
        finally:
            pumped = threading.current_thread() is not threading.main_thread()
            timers["stream_pump" if pumped else "stream"].append(time.thread_time() - t0)

    def timed_choose(jobs, logits):
        t0 = time.thread_time()
        try:
            return choose(jobs, logits)
        finally:
            timers["choose+stream"].append(time.thread_time() - t0)

    TextIteratorStreamer.put = timed_put
    batching.choose_tokens = timed_choose
    prompt_len = len(engine.prompt_ids([{"role": "user", "content": "오늘 하루 너무 길었어"}],
                                       max_new_tokens=a.tokens))

    engine_run(engine, a.preset, a.rows)  # warm-up
    runs = []
    for _ in range(a.repeats):
        timers.clear()
        res = engine_run(engine, a.preset, a.rows)
        res.update({k: sum(v) for k, v in timers.items()})
        runs.append(res)
    timers.clear()
    prof = cProfile.Profile(time.thread_time)
    engine_run(engine, a.preset, a.rows, prof)
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(25)
    TextIteratorStreamer.put = real_put
    limit = statistics.median(limit_step(engine.model, a.rows, prompt_len + a.tokens // 2, 12)
                              for _ in range(a.repeats))
    med = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in {k for r in runs for k in r}}
    med["choose"] = med.pop("choose+stream", 0.0) - med.get("stream", 0.0)
    accounted = sum(med.get(k, 0.0) for k in ("prefill", "forward", "join", "leave", "choose", "stream"))
    med["other"] = med["cpu_s"] - accounted
    tokens_per_s = med["tokens"] / med["cpu_s"]
    decode_step = (med["cpu_s"] - med.get("prefill", 0.0)) / max(1, med["steps"] - 1)
    limit_tps = a.rows / limit
    contenders = {
        f"engine_{a.rows}_rows": {
            "rows": a.rows, "tokens": int(med["tokens"]), "steps": int(med["steps"]), "wall_s": med["wall_s"],
            "cpu_s": med["cpu_s"], "tokens_per_s": tokens_per_s, "step_ms": 1000 * decode_step,
            "prefill_ms": 1000 * med.get("prefill", 0.0),
            **{f"{k}_ms_per_step": 1000 * med.get(k, 0.0) / max(1, med["steps"] - 1) for k in
               ("forward", "join", "leave", "choose", "stream", "other", "stream_pump")},
            **{f"{k}_pct": 100 * med.get(k, 0.0) / med["cpu_s"] for k in
               ("prefill", "forward", "join", "leave", "choose", "stream", "other")}},
        f"limit_{a.rows}_rows": {"rows": a.rows, "step_ms": 1000 * limit, "tokens_per_s": limit_tps},
    }
    result = {"machine": machine_info(),
              "settings": {"size": a.size, "rows": a.rows, "tokens": a.tokens, "preset": a.preset,
                           "threads": a.threads or torch.get_num_threads(), "repeats": a.repeats,
                           "scheduler": type(sched).__name__},
              "contenders": contenders, "runs": runs,
              "ratios": {"engine_decode_step_vs_limit_step": ratio(limit, decode_step),
                         "engine_tokens_per_s_with_prefill_vs_limit": ratio(tokens_per_s, limit_tps)}}
    write_results(a.out, result, title="One batched decoding step: where the time goes",
                  notes=["Parts are sums of wrapped scheduler calls over the run in this thread's CPU time, per "
                         "decode step (the one prefill apart); `other` = "
                         "CPU time - parts (Python between calls). tokens_per_s and step_ms are per CPU second of "
                         "the step loop; wall_s is the runs' wall time on this (shared) machine. Medians of "
                         "--repeats runs."])
    md = Path(a.out).with_suffix(".md")
    md.write_text(md.read_text() + "\n## cProfile of one run (scheduler thread, by own time)\n\n```\n"
                  + text.getvalue().strip() + "\n```\n")
    print(md.read_text())


if __name__ == "__main__":
    main()
