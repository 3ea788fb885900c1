"""Reply latency of the `seed` and `fast` generation presets at equal reply length, plus streaming first-token.

    python -m bench.generate [--quick] [--sizes tiny kogpt2] --out results/generate.json

Models are random-init GPT-2s saved as chat model directories (tokenizer + chat template + generation config +
chat_window.json): ``tiny`` (2 × 64, ``make_tiny_model_dir``), ``small`` (4 × 256) and ``kogpt2`` (the 125M
shape: 12 × 768, 1,024 positions, vocab 51,200 — ids beyond the locally trained tokenizer are suppressed for every
preset alike). Both presets run through ``ChatEngine.generate``/``.stream`` on the same multi-turn prompts with
``min_new_tokens = max_new_tokens`` so every reply has the same length (no early stop).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ratio
from bench.machine import machine_info
from bench.peak_memory import PeakRSS
from bench.writers import target_row, write_results

SHAPES = {
    "tiny": {"n_layer": 2, "n_embd": 64, "n_head": 2, "n_positions": 256},
    "small": {"n_layer": 4, "n_embd": 256, "n_head": 4, "n_positions": 256},
    "kogpt2": {"n_layer": 12, "n_embd": 768, "n_head": 12, "n_positions": 1024, "vocab_size": 51200},
}


def make_model_dir(root: Path, size: str) -> Path:
    """A random-init chat model directory of the given shape (tokenizer from ``make_tiny_model_dir``)."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from chathuman_hf.core.window import ChatWindow
    from chathuman_hf.tokens.tokenizer import chat_generation_config
    from tests.helpers.tiny_models import make_tiny_model_dir

    tiny = make_tiny_model_dir(root / "tiny")
    if size == "tiny":
        return tiny
    tok = AutoTokenizer.from_pretrained(tiny)
    shape = dict(SHAPES[size])
    vocab = shape.pop("vocab_size", len(tok))
    config = GPT2Config(vocab_size=vocab, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                        pad_token_id=tok.pad_token_id, **shape)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    gen = chat_generation_config(tok)
    if vocab > len(tok):
        gen.suppress_tokens = list(range(len(tok), vocab))
    model.generation_config = gen
    out = root / size
    model.save_pretrained(out)
    tok.save_pretrained(out)
    ChatWindow(max_turns=3, max_length=shape["n_positions"]).save_pretrained(out)
    return out


def prompts(n: int) -> list[list[dict[str, str]]]:
    """Multi-turn prompts (history + a final user message) cut from the embedded sample dialogues."""
    from tests.helpers.tiny_models import sample_dialogues

    out = []
    for msgs in sample_dialogues():
        msgs = [m for m in msgs if m["role"] != "system"]
        users = [i for i, m in enumerate(msgs) if m["role"] == "user"]
        if users:
            out.append(msgs[: users[-1] + 1])
        if len(out) >= n:
            break
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def bench_presets(engine, names: list[str], prompt_set, n_tokens: int, repeats: int) -> dict[str, dict[str, Any]]:
    """Latency per preset, interleaved (prompt by prompt, alternating preset order) so load bursts hit all alike."""
    from chathuman_hf.chat import get_preset

    presets = {}
    for name in names:
        preset = get_preset(name, max_new_tokens=n_tokens)
        engine.generation_config(preset).min_new_tokens = n_tokens  # equal reply length: no early stop
        presets[name] = preset
    for _ in range(2):  # warm-up
        for preset in presets.values():
            engine.generate(prompt_set[0], preset)
    lat: dict[str, list[float]] = {n: [] for n in names}
    lengths: dict[str, list[int]] = {n: [] for n in names}
    first: dict[str, list[float]] = {n: [] for n in names}
    stream_total: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for i, msgs in enumerate(prompt_set):
            order = names if (r + i) % 2 == 0 else names[::-1]
            for name in order:
                t0 = time.perf_counter()
                g = engine.generate(msgs, presets[name])
                lat[name].append(time.perf_counter() - t0)
                lengths[name].append(g.completion_tokens)
    for i, msgs in enumerate(prompt_set):
        for name in names if i % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            t_first = None
            for piece in engine.stream(msgs, presets[name]):
                if t_first is None and piece:
                    t_first = time.perf_counter() - t0
            stream_total[name].append(time.perf_counter() - t0)
            first[name].append(t_first if t_first is not None else stream_total[name][-1])
    out = {}
    for name, preset in presets.items():
        p50 = statistics.median(lat[name])
        out[name] = {
            "num_beams": preset.num_beams,
            "max_new_tokens": n_tokens,
            "replies": len(lat[name]),
            "reply_tokens_mean": statistics.mean(lengths[name]),
            "all_full_length": all(n == n_tokens for n in lengths[name]),
            "latency_ms_p50": p50 * 1000,
            "latency_ms_p95": pct(lat[name], 0.95) * 1000,
            "tokens_per_s": statistics.mean(lengths[name]) / p50,
            "first_token_ms_p50": statistics.median(first[name]) * 1000,
            "stream_total_ms_p50": statistics.median(stream_total[name]) * 1000,
            "streams_tokens": preset.streams,
        }
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer prompts and repeats")
    p.add_argument("--out", default="results/generate.json")
    p.add_argument("--sizes", nargs="+", default=None, choices=list(SHAPES), help="default: tiny kogpt2")
    p.add_argument("--presets", nargs="+", default=["seed", "fast"])
    p.add_argument("--tokens", type=int, default=25, help="reply length (the seed's max_new_tokens)")
    p.add_argument("--prompts", type=int, default=None, help="default 12, quick 6")
    p.add_argument("--repeats", type=int, default=None, help="default 3, quick 1")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's choice = cores); on a shared machine 1 thread "
                        "avoids OpenMP oversubscription stalls")
    a = p.parse_args(argv)
    sizes = a.sizes or ["tiny", "kogpt2"]
    n_prompts = a.prompts or (6 if a.quick else 12)
    repeats = a.repeats or (1 if a.quick else 3)

    import torch

    from chathuman_hf.chat.engine import ChatEngine

    if a.threads:
        torch.set_num_threads(a.threads)
    machine = machine_info()
    prompt_set = prompts(n_prompts)
    contenders: dict[str, dict[str, Any]] = {}
    by_size: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_gen_") as tmp:
        for size in sizes:
            model_dir = make_model_dir(Path(tmp), size)
            engine = ChatEngine.from_pretrained(model_dir, device="cpu")
            n_params = sum(t.numel() for t in engine.model.parameters())
            print(f"[generate] {size}: {', '.join(a.presets)}", flush=True)
            with PeakRSS(children=False) as rss, torch.inference_mode():
                res = bench_presets(engine, a.presets, prompt_set, a.tokens, repeats)
            for name, r in res.items():
                r.update(size=size, params=n_params, **rss.to_dict())
                contenders[f"{name}@{size}"] = r
                by_size.setdefault(size, {})[name] = r
            del engine
    ratios, targets = {}, []
    for size, res in by_size.items():
        if "seed" in res and "fast" in res:
            rv = ratio(res["fast"]["latency_ms_p50"], res["seed"]["latency_ms_p50"])
            ratios[f"fast_vs_seed_latency@{size}"] = rv
            ratios[f"fast_first_token_vs_seed_latency@{size}"] = ratio(res["fast"]["first_token_ms_p50"],
                                                                        res["seed"]["latency_ms_p50"])
            targets.append(target_row(f"fast ≤ ½ seed latency at equal length ({size})", "≤ 0.5", rv,
                                      None if rv is None else rv <= 0.5))
    # the contract's names: `seed` and `fast` at the largest size measured
    main_size = sizes[-1]
    for name in a.presets:
        if name in by_size.get(main_size, {}):
            contenders[name] = {**by_size[main_size][name]}
    result = {"machine": machine, "settings": {"sizes": sizes, "prompts": len(prompt_set), "repeats": repeats,
                                               "reply_tokens": a.tokens, "threads": torch.get_num_threads()},
              "contenders": contenders, "ratios": ratios, "targets": targets}
    cols = ["contender", "size", "params", "num_beams", "latency_ms_p50", "latency_ms_p95", "tokens_per_s",
            "first_token_ms_p50", "stream_total_ms_p50", "reply_tokens_mean", "all_full_length", "peak_rss_mb"]
    notes = [f"{len(prompt_set)} multi-turn prompts × {repeats} repeat(s), replies forced to {a.tokens} tokens "
             "(min_new_tokens = max_new_tokens), random-init models, CPU, "
             f"{torch.get_num_threads()} torch threads. `seed` = 3 beams (cannot stream token by token: its "
             "first-token time is the whole reply); `fast` = 1 beam, sampling, streamed.",
             "Rows `seed`/`fast` repeat the largest size measured (the contract's contender names)."]
    write_results(a.out, result, title="Generation latency: seed vs fast preset", columns=cols, notes=notes)
    print(Path(a.out).with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
