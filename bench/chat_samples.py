"""Greedy replies of saved chat models to 10 fixed everyday prompts, side by side, with their speech levels.

    python -m bench.chat_samples --models outputs/quickstart outputs/chatbotdata --out results/chat_samples.md

The prompts are the issue's five (where the collapsed ChatbotData model answered "좋은 사람 만날 수 있을 거예요."
to all) and five more; replies come from ``chathuman_hf.evaluation.perplexity.generate_replies`` (greedy, the model's
end-of-turn tokens), so they are what the training evaluations see.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import bench.common  # noqa: F401  (offline Hub defaults)

PROMPTS = ("오늘 너무 피곤해", "시험 망쳤어", "여자친구랑 헤어졌어", "배고파", "주말에 뭐하지",
           "비가 와서 우울해", "내일 면접이야", "고양이 키우고 싶어", "친구랑 싸웠어", "오늘 월급날이야!")


def replies(model_dir: str) -> list[str]:
    """Greedy replies of the model in ``model_dir`` to ``PROMPTS``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from chathuman_hf.evaluation.perplexity import generate_replies
    from chathuman_hf.tokens.tokenizer import prepare_tokenizer

    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(model_dir))
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    _, _, texts = generate_replies(model, tokenizer, [[{"role": "user", "content": p}] for p in PROMPTS])
    return texts


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m bench.chat_samples", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, help="Saved chat model directories.")
    parser.add_argument("--out", default=None, help="Write the Markdown table here.")
    a = parser.parse_args(argv)
    from chathuman_hf.core.cli import UsageError, require_model_dir

    for model in a.models:  # every directory checked before the first model loads: one line, exit 2
        if not (Path(require_model_dir(model, "--models")) / "config.json").is_file():
            raise UsageError(f"--models {model}: not a saved chat model directory (no config.json); pass the output "
                             "directory of recipes/train.py")
    from chathuman_hf.evaluation.conversation import context_sensitivity
    from chathuman_hf.korean.analysis import speech_level

    columns = {Path(m).name: replies(m) for m in a.models}
    lines = ["| prompt | " + " | ".join(f"`{name}`" for name in columns) + " |", "|---|" + "---|" * len(columns)]
    for i, prompt in enumerate(PROMPTS):
        cells = [f"{c[i] or '(empty)'} ({speech_level(c[i])})" for c in columns.values()]
        lines.append(f"| {prompt} | " + " | ".join(cells) + " |")
    shares = " | ".join(f"{context_sensitivity(c):.0%}" for c in columns.values())
    lines.append(f"| distinct replies | {shares} |")
    text = "\n".join(lines) + "\n"
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text, encoding="utf-8")
    print(text)
    return text


if __name__ == "__main__":
    from chathuman_hf.core.cli import run_cli

    sys.exit(run_cli(main))
