"""Issue 22: what a packed step holds vs a random-order step of the bench (--quick, gpt2, seeds 0-2, 60 steps).

    python -m bench.results.issue22.batch_composition      (from the repository root)

Archived with its output (batch_composition.txt); run as a module, it imports the bench and this checkout's package.
"""

from __future__ import annotations

import random
import statistics as st

from bench.bench_tokenizer import bench_tokenizer
from bench.train_data import encode_all, load_messages, split
from chathuman_hf.tokens.labels import ASSISTANT
from chathuman_hf.tokens.packing import best_fit_bins


def main() -> None:
    dialogues = load_messages()
    train, _ = split(dialogues, 0.05)
    tok = bench_tokenizer([m["content"] for d in dialogues for m in d], 8000)
    examples = encode_all(train, tok, 256)
    lengths = [len(ids) for ids, _ in examples]
    targets = [sum(r == ASSISTANT for r in roles[1:]) for _, roles in examples]
    print(f"{len(lengths)} dialogues, mean {st.mean(lengths):.1f} tokens (max {max(lengths)}), "
          f"{st.mean(targets):.2f} assistant targets each")
    for seed in range(3):
        rng = random.Random(seed)
        order = list(range(len(lengths)))
        rng.shuffle(order)
        bins = best_fit_bins(lengths, 256, order)
        rng.shuffle(bins)
        steps = [bins[2 * k] + bins[2 * k + 1] for k in range(60)]
        n_ex = [len(s) for s in steps]
        n_tg = [sum(targets[i] for i in s) for s in steps]
        where = {idx: p for p, idx in enumerate(order)}
        spans = [max(where[i] for i in b) - min(where[i] for i in b) for b in bins]
        shuffled = list(range(len(lengths)))
        random.Random(seed).shuffle(shuffled)
        plain = [shuffled[35 * k : 35 * k + 35] for k in range(60)]
        p_tok = [sum(lengths[i] for i in s) for s in plain]
        p_tg = [sum(targets[i] for i in s) for s in plain]
        print(f"seed {seed}: packed {len(bins)} rows, dialogues/step {st.mean(n_ex):.1f} ± {st.pstdev(n_ex):.1f}, "
              f"targets/step {st.mean(n_tg):.0f} ± {st.pstdev(n_tg):.0f}, stream span of a row's dialogues "
              f"median {st.median(spans):.0f}; random 35/step: tokens/step {st.mean(p_tok):.0f} ± "
              f"{st.pstdev(p_tok):.0f}, targets/step {st.mean(p_tg):.0f} ± {st.pstdev(p_tg):.0f}")


if __name__ == "__main__":
    main()
