"""GGUF export time for the 125M shape, and llama.cpp's tokens/s against our CPU engine on the same model.

    python -m bench.gguf [--quick] [--sizes tiny kogpt2] [--types f16 q8_0] --out results/gguf.json

Models are the random-init GPT-2 chat directories of ``bench.generate`` (``kogpt2`` = 12 × 768, vocab 51,200).
Each is exported with ``export_gguf`` (llama.cpp's converter in a child process; the time includes that process's
start). Replies are forced to ``--tokens`` tokens on both sides (greedy): ``ChatEngine.generate`` with
``min_new_tokens = max_new_tokens`` (the ``greedy`` preset), and llama.cpp's ``Llama.generate`` (top-k 1) over the
same prompt ids, ``--threads`` threads for both. Without llama-cpp-python only the export is measured.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ratio
from bench.generate import make_model_dir, prompts
from bench.machine import machine_info
from bench.writers import write_results


def llama_cpp_tokens_per_s(path: Path, prompt_ids: list[list[int]], n_tokens: int, threads: int) -> float:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=1024, n_threads=threads, verbose=False)
    rates = []
    for ids in [prompt_ids[0], *prompt_ids]:  # the first is a warm-up
        llm.reset()
        t0 = time.perf_counter()
        for i, _ in enumerate(llm.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True), 1):
            if i == n_tokens:
                break
        rates.append(n_tokens / (time.perf_counter() - t0))
    return statistics.median(rates[1:])


def engine_tokens_per_s(model_dir: Path, prompt_set: list, n_tokens: int) -> tuple[float, list[list[int]]]:
    import torch

    from chathuman_hf.chat import get_preset
    from chathuman_hf.chat.engine import ChatEngine

    engine = ChatEngine.from_pretrained(model_dir, device="cpu")
    preset = get_preset("greedy", max_new_tokens=n_tokens)
    engine.generation_config(preset).min_new_tokens = n_tokens
    ids = [engine.tokenizer.apply_chat_template(m, add_generation_prompt=True)["input_ids"] for m in prompt_set]
    rates = []
    with torch.inference_mode():
        for msgs in [prompt_set[0], *prompt_set]:
            t0 = time.perf_counter()
            g = engine.generate(msgs, preset)
            rates.append(g.completion_tokens / (time.perf_counter() - t0))
    return statistics.median(rates[1:]), [list(x) for x in ids]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.gguf", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="the tiny size and 3 prompts")
    p.add_argument("--out", default="results/gguf.json")
    p.add_argument("--sizes", nargs="+", default=None, choices=["tiny", "small", "kogpt2"], help="default: kogpt2")
    p.add_argument("--types", nargs="+", default=["f16", "q8_0"], help="GGUF types to export and run")
    p.add_argument("--tokens", type=int, default=32, help="reply length, forced on both sides")
    p.add_argument("--prompts", type=int, default=None, help="default 8, quick 3")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    sizes = a.sizes or (["tiny"] if a.quick else ["kogpt2"])
    prompt_set = prompts(a.prompts or (3 if a.quick else 8))

    import torch

    from chathuman_hf.publishing.gguf_export import export_gguf

    torch.set_num_threads(a.threads)
    try:
        import llama_cpp  # noqa: F401

        have_llama = True
    except ImportError:
        have_llama = False
    contenders: dict[str, dict[str, Any]] = {}
    ratios: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench_gguf_") as tmp:
        for size in sizes:
            model_dir = make_model_dir(Path(tmp), size)
            ours, prompt_ids = engine_tokens_per_s(model_dir, prompt_set, a.tokens)
            contenders[f"chathuman engine@{size}"] = {"size": size, "tokens_per_s": ours}
            for outtype in a.types:
                t0 = time.perf_counter()
                path = export_gguf(model_dir, Path(tmp) / f"{size}-{outtype}", outtype)
                row = {"size": size, "export_s": time.perf_counter() - t0, "gguf_mb": path.stat().st_size / 1e6}
                if have_llama:
                    row["tokens_per_s"] = llama_cpp_tokens_per_s(path, prompt_ids, a.tokens, a.threads)
                    ratios[f"llama.cpp {outtype} vs engine tokens/s@{size}"] = ratio(row["tokens_per_s"], ours)
                contenders[f"llama.cpp {outtype}@{size}"] = row
                print(f"[gguf] {size} {outtype}: {row}", flush=True)
    result = {"machine": machine_info(), "settings": {"sizes": sizes, "types": a.types, "prompts": len(prompt_set),
                                                      "reply_tokens": a.tokens, "threads": a.threads,
                                                      "llama_cpp": have_llama},
              "contenders": contenders, "ratios": ratios, "targets": []}
    notes = [f"{len(prompt_set)} multi-turn prompts, replies forced to {a.tokens} greedy tokens, {a.threads} threads, "
             "random-init GPT-2 chat models; export_s includes the converter's child process start."
             + ("" if have_llama else " llama-cpp-python is not installed: export only.")]
    write_results(a.out, result, title="GGUF export and llama.cpp speed", notes=notes,
                  columns=["contender", "size", "export_s", "gguf_mb", "tokens_per_s"])
    print(Path(a.out).with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
