"""Show which tokens train: each example's tokens with the targets marked, and the count of trained tokens.

    python recipes/inspect_labels.py --model PATH_OR_ID --data FILE [--label-mode MODE] [--chat_template ...] \
        [--limit N] [--json]
    python recipes/inspect_labels.py --stage dpo --model outputs/sft --data preferences.jsonl


``--model`` takes a base model (its tokenizer and template; Hub id or directory) or an output directory of
``train.py``. Trained tokens are green on a terminal and in [brackets] when piped. ``--json`` prints one JSON list,
one object per example: ``{"ids": [...], "tokens": [...], "trained": [...]}`` (``trained[t]``: token ``t`` is a
target, unshifted sense — in ``input`` mode every token but the first). Every data option of ``prepare.py`` applies,
the speech-level ones (``--speech_level_control``) as ``train.py`` applies them; notes go to stderr.
``--stage dpo|orpo|kto`` shows a preference stage's rows instead: the prompt (the template's generation prompt) and
each reply as the model generates it, with their token counts (``--json``: ``prompt_ids``, ``chosen_ids``…).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from chathuman_hf.core.cli import SHORT_USAGE, UsageError, run_cli
from chathuman_hf.data import DataArguments, DataReport
from chathuman_hf.tokens.label_view import format_view, label_views, load_inspect_tokenizer
from chathuman_hf.tokens.labels import LABEL_MODE_NAMES
from chathuman_hf.tokens.preference_rows import format_preference_view, preference_views
from chathuman_hf.tokens.template_choice import chat_template_field
from chathuman_hf.training.arguments import ChatArguments
from chathuman_hf.training.data_steps import load_data
from chathuman_hf.training.parsing import fix_dash_values
from chathuman_hf.training.preference_args import STAGES


@dataclass
class InspectArguments:
    model: str = field(metadata={"help": "Base model (Hub id or dir) or an output directory of train.py."})
    label_mode: str = field(
        default="input", metadata={"help": "Label mode to show.", "choices": list(LABEL_MODE_NAMES)}
    )
    chat_template: str = chat_template_field()
    limit: int | None = field(default=3, metadata={"help": "Show at most this many examples."})
    json: bool = field(default=False, metadata={"help": "Print one JSON list of {ids, tokens, trained} objects."})
    max_length: int = field(default=256, metadata={"help": "Maximum tokens per example, as in training."})
    max_turns: int | None = field(default=None, metadata={"help": "Exchanges per example, as in training."})
    expand_turns: bool = field(default=False, metadata={"help": "One example per assistant turn, as in training."})
    stage: str = field(default="sft", metadata={"help": "sft: dialogues with their label mode; dpo / orpo / kto: "
                                                "preference rows as that stage tokenizes them.",
                                                "choices": list(STAGES)})

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"--limit must be at least 1 (examples to show), got {self.limit}")


def main(argv: list[str] | None = None) -> list[dict]:
    argv = fix_dash_values(list(sys.argv[1:] if argv is None else argv))  # --label-mode -100
    parser = HfArgumentParser((InspectArguments, DataArguments), usage=SHORT_USAGE)
    args, data_args = parser.parse_args_into_dataclasses(argv)
    tokenizer = load_inspect_tokenizer(args.model, args.chat_template)
    if args.stage != "sft":
        return show_preference_rows(args, data_args, tokenizer, DataReport())
    data = load_data(data_args, ChatArguments(eval_split=0.0))  # train.py's data step: speech-level options too
    dialogues, report = data.train_dialogues, data.report
    views = label_views(dialogues, tokenizer, args.label_mode, limit=args.limit, max_length=args.max_length,
                        max_turns=args.max_turns, expand_turns=args.expand_turns, report=report)
    return show(views, report, args.json,
                lambda i, view: f"--- example {i} ({args.label_mode})\n"
                                f"{format_view(view, tokenizer, color=sys.stdout.isatty())}")


def show_preference_rows(args: InspectArguments, data_args: DataArguments, tokenizer, report: DataReport) -> list:
    """``--stage dpo|orpo|kto``: the prompt / chosen / rejected (or rated completion) spans of each row."""
    from chathuman_hf.training.preference_data import load_preference_data
    from chathuman_hf.training.preference_steps import stage_rows

    rows = stage_rows(load_preference_data(data_args, report), args.stage)
    views = preference_views(rows, tokenizer, limit=args.limit, max_length=args.max_length, report=report)
    return show(views, report, args.json,
                lambda i, view: f"--- row {i} ({args.stage})\n{format_preference_view(view)}")


def show(views: list, report: DataReport, as_json: bool, text: Callable[[int, dict], str]) -> list:
    """What training would drop (stderr: ``--json`` stays data), then the views as one JSON list or as ``text``."""
    if report.dropped or report.skipped:
        print(report.format_table(), file=sys.stderr, flush=True)
    if as_json:
        print(json.dumps(views, ensure_ascii=False))
    else:
        for i, view in enumerate(views):
            print(text(i, view))
    return views


if __name__ == "__main__":
    sys.exit(run_cli(main))  # bad data: one line, exit 1; a wrong option, model or template: one line, exit 2
