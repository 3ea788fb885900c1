"""hits@1 with ChatbotData's answers as written and rewritten to the user's speech level: how much of a model's
hits@1 change is the references' 존댓말 (bench/RESULTS.md § 18b).

    python -m bench.selection_levels --models outputs/sft results/feedback_loop/kto

The held-out contexts and candidates are ``evaluate_model.py``'s (split 0.1, seed 42, all 1,183 contexts, 19
distractors); the second figure scores the same candidates after ``korean.conversion.convert`` rewrites each to the
level of the context's user message (a message with no level keeps them as written).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import bench.common  # noqa: F401  (offline Hub defaults)
from bench.common import CHATBOT_CSV


def main(argv: list[str] | None = None) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from chathuman_hf.data.held_out import held_out_split
    from chathuman_hf.data.options import DataArguments
    from chathuman_hf.data.pipeline import load_dialogues_from_args
    from chathuman_hf.evaluation.response_selection import response_selection, selection_items
    from chathuman_hf.korean.analysis import UNDETERMINED, speech_level
    from chathuman_hf.korean.conversion import convert

    parser = argparse.ArgumentParser(prog="python -m bench.selection_levels", description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, help="Saved full-model directories.")
    parser.add_argument("--data", default=str(CHATBOT_CSV))
    parser.add_argument("--contexts", type=int, default=1183)
    parser.add_argument("--seed", type=int, default=42, help="The split seed (also the candidates' seed).")
    parser.add_argument("--max_length", type=int, default=128)
    a = parser.parse_args(argv)
    _, test = held_out_split(load_dialogues_from_args(DataArguments(data=[a.data])), 0.1, a.seed)
    items = selection_items(test, contexts=a.contexts, seed=a.seed)

    def at_level(item):  # noqa: ANN001, ANN202
        level = speech_level(item.context[-1]["content"])
        if level == UNDETERMINED:
            return item
        return replace(item, candidates=[convert(c, level) for c in item.candidates])

    rewritten = [at_level(item) for item in items]
    results = {}
    for model_dir in a.models:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        scores = [response_selection(model, tokenizer, group, max_turns=1, max_length=a.max_length)
                  for group in (items, rewritten)]
        results[model_dir] = {"hits_at_1": scores[0]["selection_hits_at_1"],
                              "hits_at_1_at_user_level": scores[1]["selection_hits_at_1"],
                              "contexts": len(items)}
    print(json.dumps(results, ensure_ascii=False, indent=2))
    return results


if __name__ == "__main__":
    main()
