"""Score a saved chat model with the training recipe's metrics and write them as JSON.

    python recipes/evaluate_model.py --model outputs/quickstart [--data FILE…] [--label-mode input] [--packing] \
        [--output metrics.json]

Reports the label mode's token-weighted ``eval_loss`` and ``perplexity``, ``eval_assistant_perplexity`` (assistant-turn
tokens, comparable across label modes), token counts, generation health and the conversation metrics of
``chathuman_hf.evaluation.conversation`` (``eval_speech_agreement``, ``eval_distinct_1/2``, ``eval_repeat_rate``,
``eval_context_sensitivity``, ``eval_selection_hits_at_1``/``mrr``; ``--conversation_metrics false``: off) and, for
a model trained with ``--speech_level_control``, ``eval_speech_control_plain``/``_polite`` (share of replies at the
level asked for, over ``--speech_control_prompts`` held-out prompts per level).
Defaults come from the model's ``run_args.json`` (label mode, max length, max turns). Which dialogues are scored (the
output's ``scored`` says it): ``--data FILE`` or ``--eval-data FILE``: all of FILE (``--data FILE --eval-split 0.1``:
only its held-out split); neither: the held-out split of the data the model was trained on (without
``run_args.json``: of the embedded sample). ``--packing`` gives the same numbers (packing is exact).
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from chathuman_hf.core.cli import SHORT_USAGE, require_model_dir, run_cli
from chathuman_hf.data.options import DataArguments
from chathuman_hf.publishing.run_output import read_run_args
from chathuman_hf.tokens.template_choice import chat_template_field
from chathuman_hf.training.arguments import ChatArguments
from chathuman_hf.training.build import evaluate_saved_model
from chathuman_hf.training.parsing import fix_dash_values

DEFAULTS_FROM_TRAINING = ("label_mode", "max_length", "max_turns", "eval_split", "split_seed", "generation_prompts",
                          "generation_max_new_tokens", "selection_contexts", "speech_control_prompts")


@dataclass
class EvaluateArguments:
    model: str = field(
        metadata={"help": "A saved chat model or LoRA adapter directory (the output of recipes/train.py)."}
    )
    output: str | None = field(default=None, metadata={"help": "Write the metrics JSON here."})
    batch_size: int = field(default=8, metadata={"help": "Evaluation batch size (does not change the numbers)."})
    chat_template: str = chat_template_field()


def scored(data_args: DataArguments, chat_args: ChatArguments) -> str:
    """Which dialogues the metrics cover, in words."""
    if chat_args.eval_data:
        return f"all of --eval-data {' '.join(chat_args.eval_data)}"
    source = " ".join(data_args.data) if data_args.data else "the embedded sample"
    if chat_args.eval_split == 0:
        return f"all of {source}"
    return f"the held-out {chat_args.eval_split:g} split (seed {chat_args.split_seed}) of {source}"


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.WARNING)
    argv = fix_dash_values(list(sys.argv[1:] if argv is None else argv))  # --label-mode -100+sys
    parser = HfArgumentParser((EvaluateArguments, DataArguments, ChatArguments), usage=SHORT_USAGE)
    eval_args, data_args, chat_args = parser.parse_args_into_dataclasses(argv)
    require_model_dir(eval_args.model)
    # options not given on the command line default to what the model was trained with
    trained = read_run_args(eval_args.model)
    given = {a.split("=")[0].lstrip("-").replace("-", "_") for a in argv}
    for name in DEFAULTS_FROM_TRAINING:
        if name not in given and name in trained.get("ChatArguments", {}):
            setattr(chat_args, name, trained["ChatArguments"][name])
    if "conversation_metrics" not in given:  # speech/distinct/repeat/hits metrics unless --conversation_metrics false
        chat_args.conversation_metrics = True
    if "data" not in given and trained.get("DataArguments", {}).get("data"):
        data_args.data = trained["DataArguments"]["data"]
    if "speech_level_control" not in given and trained.get("DataArguments", {}).get("speech_level_control"):
        data_args.speech_level_control = True  # held-out replies carry their level instruction, as in training
    if "data" in given and "eval_split" not in given:
        chat_args.eval_split = 0.0  # a file named on the command line is scored whole unless a split is asked for
    metrics = evaluate_saved_model(eval_args.model, data_args, chat_args, batch_size=eval_args.batch_size,
                                   chat_template=eval_args.chat_template)
    metrics["scored"] = scored(data_args, chat_args)
    text = json.dumps(metrics, ensure_ascii=False, indent=2)
    print(text)
    if eval_args.output:
        Path(eval_args.output).write_text(text + "\n", encoding="utf-8")
    return metrics


if __name__ == "__main__":
    sys.exit(run_cli(main))  # bad data: one line, exit 1; a configuration mistake: one line, exit 2
