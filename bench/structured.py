"""Structured output's cost per generated token: grammar-constrained (xgrammar JSON schema) vs unconstrained replies
in the batched engine, at 1 and 16 concurrent replies.

    python -m bench.structured [--quick] [--sizes tiny kogpt2] [--concurrency 1 16] --out results/structured.json

Models are random-init GPT-2 chat model directories: ``tiny`` (the quickstart shape, ``make_tiny_model_dir``, vocab
2,000) and ``kogpt2`` (the 125M shape, 12 × 768, with a byte-fallback BPE trained on ChatbotData + the sample up to a
51,200 vocabulary, so the grammar masks a real vocabulary of that size). Both contenders use the same sampling preset
(no n-gram ban or banned words, as the server sets under a grammar) and the same prompts; every reply runs exactly
``--tokens`` tokens (unconstrained: ``min_new_tokens``; constrained: a schema whose one string needs more characters
than that, so the grammar never completes early). The rows alternate (plain, grammar, plain, …) so load bursts hit
both alike; the cost per generated token is the median of wall time / tokens generated.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import CHATBOT_CSV, ratio
from bench.machine import machine_info
from bench.writers import target_row, write_results

SCHEMA = {"type": "object", "properties": {"reply": {"type": "string", "minLength": 1000}}, "required": ["reply"],
          "additionalProperties": False}


def make_model_dir(root: Path, size: str) -> Path:
    """The ``tiny`` quickstart-shape directory, or the 125M ``kogpt2`` shape with a 51,200-token tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from chathuman_hf.core.window import ChatWindow
    from chathuman_hf.tokens.tokenizer import chat_generation_config
    from chathuman_hf.tokens.tokenizer_training import train_tokenizer
    from tests.helpers.tiny_models import make_tiny_model_dir, sample_texts

    if size == "tiny":
        return make_tiny_model_dir(root / "tiny")
    texts = sample_texts()
    if CHATBOT_CSV.exists():
        with CHATBOT_CSV.open(encoding="utf-8") as f:
            texts += [t for row in csv.DictReader(f) for t in (row["Q"], row["A"])]
    tok = train_tokenizer(texts, vocab_size=51200, min_frequency=1)
    config = GPT2Config(vocab_size=51200, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                        pad_token_id=tok.pad_token_id, n_layer=12, n_embd=768, n_head=12, n_positions=1024)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    gen = chat_generation_config(tok)
    if len(tok) < 51200:
        gen.suppress_tokens = list(range(len(tok), 51200))
    model.generation_config = gen
    out = root / size
    model.save_pretrained(out)
    tok.save_pretrained(out)
    ChatWindow(max_turns=3, max_length=1024).save_pretrained(out)
    return out


class Timed:
    """A logits processor that times the one it wraps (the grammar mask's own share of a step)."""

    def __init__(self, inner: Any, spent: list[float]) -> None:
        self.inner, self.spent = inner, spent

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        start = time.perf_counter()
        scores = self.inner(input_ids, scores)
        self.spent[0] += time.perf_counter() - start
        return scores


def run_batch(engine, grammars, compiled, prompts: list[list[int]], config) -> tuple[float, int, float]:
    """Submit every prompt at once (one batch); wall seconds, tokens generated, seconds inside the masks."""
    from chathuman_hf.chat.decoding import Job

    spent = [0.0]
    start = time.perf_counter()
    jobs = [engine.scheduler.submit(Job(ids, config, time.monotonic() + 3600, constraints=[
        Timed(grammars.mask(compiled), spent)] if compiled is not None else [])) for ids in prompts]
    for job in jobs:
        job.done.wait()
        if job.error is not None:
            raise job.error
    return time.perf_counter() - start, sum(len(j.tokens) for j in jobs), spent[0]


def bench_size(model_dir: Path, concurrency: list[int], tokens: int, repeats: int) -> dict[str, dict[str, Any]]:
    import torch

    from bench.generate import prompts as sample_prompts
    from chathuman_hf.chat import ChatEngine, get_preset
    from chathuman_hf.chat.constrained import grammars_for

    engine = ChatEngine.from_pretrained(model_dir, device="cpu", max_batch_size=max(concurrency))
    eos = engine.base_config.eos_token_id
    t0 = time.perf_counter()
    grammars = grammars_for(engine.model, engine.tokenizer, eos if isinstance(eos, list) else [eos])
    setup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    compiled = grammars.json_schema(SCHEMA)
    compile_s = time.perf_counter() - t0
    preset = get_preset("fast", max_new_tokens=tokens, no_repeat_ngram_size=0, banned_words=())
    config = engine.generation_config(preset)
    config.min_new_tokens = tokens  # equal length for the unconstrained rows (the grammar never completes early)
    chats = sample_prompts(max(concurrency))
    ids = [engine.prompt_ids(c, max_new_tokens=tokens) for c in chats]
    out: dict[str, dict[str, Any]] = {}
    with torch.inference_mode():
        run_batch(engine, grammars, compiled, ids[:2], config)  # warm-up
        for n in concurrency:
            batch = (ids * n)[:n]
            per_token: dict[str, list[float]] = {"plain": [], "json_schema": []}
            masking: list[float] = []
            for r in range(repeats):
                order = ["plain", "json_schema"] if r % 2 == 0 else ["json_schema", "plain"]
                for name in order:
                    wall, made, spent = run_batch(engine, grammars, compiled if name == "json_schema" else None,
                                                  batch, config)
                    per_token[name].append(1000 * wall / made)
                    if name == "json_schema":
                        masking.append(1000 * spent / made)
            for name, values in per_token.items():
                out[f"{name}@{n}"] = {"concurrency": n, "ms_per_token": statistics.median(values),
                                      "mask_ms_per_token": statistics.median(masking) if name == "json_schema" else 0,
                                      "tokens_per_s": 1000 / statistics.median(values), "reply_tokens": tokens,
                                      "repeats": repeats, "vocab": grammars.vocab_size,
                                      "grammar_setup_s": setup_s, "schema_compile_s": compile_s}
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.structured", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny model, fewer tokens and repeats")
    p.add_argument("--out", default="results/structured.json")
    p.add_argument("--sizes", nargs="+", default=None, choices=["tiny", "kogpt2"], help="default: tiny kogpt2")
    p.add_argument("--concurrency", nargs="+", type=int, default=[1, 16])
    p.add_argument("--tokens", type=int, default=None, help="tokens per reply (default 48, quick 12)")
    p.add_argument("--repeats", type=int, default=None, help="default 4, quick 2")
    a = p.parse_args(argv)
    sizes = a.sizes or (["tiny"] if a.quick else ["tiny", "kogpt2"])
    tokens = a.tokens or (12 if a.quick else 48)
    repeats = a.repeats or (2 if a.quick else 4)

    import torch

    machine = machine_info()
    contenders: dict[str, dict[str, Any]] = {}
    ratios: dict[str, float | None] = {}
    targets = []
    with tempfile.TemporaryDirectory(prefix="bench_structured_") as tmp:
        for size in sizes:
            print(f"[structured] {size}", flush=True)
            res = bench_size(make_model_dir(Path(tmp), size), a.concurrency, tokens, repeats)
            for name, row in res.items():
                contenders[f"{name}@{size}"] = {"size": size, **row}
            for n in a.concurrency:
                rv = ratio(res[f"json_schema@{n}"]["ms_per_token"], res[f"plain@{n}"]["ms_per_token"])
                ratios[f"json_schema_vs_plain@{n}@{size}"] = rv
                ratios[f"mask_share_of_plain_token@{n}@{size}"] = ratio(res[f"json_schema@{n}"]["mask_ms_per_token"],
                                                                        res[f"plain@{n}"]["ms_per_token"])
                targets.append(target_row(f"structured ≤ 1.3× unconstrained per token ({n} concurrent, {size})",
                                          "≤ 1.3", rv, None if rv is None else rv <= 1.3))
    result = {"machine": machine, "settings": {"sizes": sizes, "concurrency": a.concurrency, "reply_tokens": tokens,
                                               "repeats": repeats, "threads": torch.get_num_threads(),
                                               "schema": SCHEMA},
              "contenders": contenders, "ratios": ratios, "targets": targets}
    cols = ["contender", "size", "concurrency", "vocab", "ms_per_token", "mask_ms_per_token", "tokens_per_s",
            "reply_tokens",
            "grammar_setup_s", "schema_compile_s"]
    notes = [f"Batched engine (max_batch_size = {max(a.concurrency)}), random-init GPT-2s, CPU, "
             f"{torch.get_num_threads()} torch threads; every reply {tokens} tokens; median of {repeats} runs. "
             "`json_schema`: xgrammar mask per reply (chathuman_hf/chat/constrained.py); `mask_ms_per_token`: time "
             "inside the masks alone (fill + apply), the part of the cost that load bursts do not blur."]
    write_results(a.out, result, title="Structured output: grammar-constrained vs unconstrained decoding",
                  columns=cols, notes=notes)
    print(Path(a.out).with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
