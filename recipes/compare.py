"""Train every label mode on the same data, split, model init and budget, and write a fair leaderboard.

    python recipes/compare.py --config recipes/configs/quickstart.yaml --output_dir outputs/compare

Each mode runs ``recipes/train.py`` in its own process with the same config and seed (same held-out split, same
tokenizer, same initial weights, same epochs), logging the train loss once per epoch. Writes
``OUTPUT_DIR/leaderboard.md`` (+ ``leaderboard.json``), ``OUTPUT_DIR/eval_curves.png`` and, when the runs compute
the conversation metrics, ``OUTPUT_DIR/selection_curves.png`` (hits@1 per epoch); every run stays in
``OUTPUT_DIR/<mode>/``. ``--speech_control`` also trains each mode with ``--speech_level_control`` (and
``--speech_level_balance``, default 1.0) as ``<mode>+control``: the leaderboard then shows what control costs in hits@1
and assistant perplexity beside the share of replies at the asked level. Other options go to ``recipes/train.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

from chathuman_hf.core.cli import UsageError, run_cli
from chathuman_hf.evaluation.leaderboard import SAMPLE_PROMPTS, render_leaderboard, summarize_run
from chathuman_hf.evaluation.plots import plot_eval_curves
from chathuman_hf.tokens.labels import LabelMode

MODES = tuple(mode.cli_name for mode in LabelMode)  # input, -100, -100+sys, shift
TRAIN = Path(__file__).resolve().parent / "train.py"


def sample_replies(model_dir: Path, prompts: tuple[str, ...]) -> list[str]:
    """Greedy replies of a saved model to the fixed prompts."""
    from chathuman_hf.evaluation.perplexity import generate_replies
    from chathuman_hf.models.loading import load_chat_model
    from chathuman_hf.tokens.template_choice import apply_template_choice

    model, tokenizer = load_chat_model(model_dir, merge=True)  # a full model or a LoRA adapter on its base
    tokenizer = apply_template_choice(tokenizer, "auto")
    _, _, texts = generate_replies(model, tokenizer, [[{"role": "user", "content": p}] for p in prompts])
    return texts


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="recipes/configs/quickstart.yaml", help="YAML recipe shared by all runs.")
    parser.add_argument("--output_dir", "--output-dir", default="outputs/compare", help="Where runs and results go.")
    parser.add_argument("--modes", nargs="+", default=list(MODES), help="Label modes to train (default: all four).")
    parser.add_argument("--speech_control", action="store_true",
                        help="Also train every mode with --speech_level_control (runs named <mode>+control).")
    parser.add_argument("--speech_level_balance", default="1.0",
                        help="--speech_level_balance of the +control runs (converted counterparts; default 1.0).")
    args, passthrough = parser.parse_known_args(argv)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    control = ["--speech_level_control", "true", "--speech_level_balance", args.speech_level_balance]
    variants = [(m, m, []) for m in args.modes]
    if args.speech_control:
        variants += [(f"{m}+control", m, control) for m in args.modes]
    for name, mode, extra in variants:
        run_dir = out / name.replace("+", "_plus_").replace("-", "m")
        cmd = [sys.executable, str(TRAIN), "--config", args.config, f"--label-mode={mode}", "--output_dir",
               str(run_dir), "--logging_strategy", "epoch", "--logging_first_step", "false", "--save_total_limit", "1",
               *extra, *passthrough]
        print(f"== {name}: {' '.join(cmd)}", flush=True)
        start = time.perf_counter()
        if subprocess.run(cmd).returncode:  # train.py has printed its one error line
            raise UsageError(f"the {name} run failed (see the error above); nothing compared")
        wall = time.perf_counter() - start
        runs.append(summarize_run(name, run_dir, wall, sample_replies(run_dir, SAMPLE_PROMPTS)))
    setup = f"Config `{args.config}`" + (f" with `{' '.join(passthrough)}`" if passthrough else "") + (
        "; same data, held-out split, tokenizer, initial weights (seed) and epochs for every mode.")
    board = out / "leaderboard.md"
    board.write_text(render_leaderboard(runs, setup=setup) + "\n", encoding="utf-8")
    (out / "leaderboard.json").write_text(
        json.dumps([dataclasses.asdict(r) for r in runs], ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    plot_eval_curves({r.mode: r.eval_history for r in runs}, out / "eval_curves.png",
                     title="held-out assistant-token perplexity per epoch")
    if any("eval_selection_hits_at_1" in e for r in runs for e in r.eval_history):
        plot_eval_curves({r.mode: r.eval_history for r in runs}, out / "selection_curves.png",
                         key="eval_selection_hits_at_1", title="held-out response selection hits@1 per epoch")
    print(board.read_text(encoding="utf-8"))
    return board


if __name__ == "__main__":
    sys.exit(run_cli(main))
