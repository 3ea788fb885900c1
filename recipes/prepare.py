"""Prepare normalized dialogues: ``python recipes/prepare.py --data PATH [PATH ...] --output DIR``.

Writes ``DIR/dialogues.jsonl`` (one ``{"messages", "source", "dialogue_id"}`` per line; with ``--speech_levels``
also ``speech_levels``, one per message) when there are dialogues, ``DIR/preferences.jsonl`` (``prompt``/``chosen``/
``rejected``) and ``DIR/ratings.jsonl`` (``prompt``/``completion``/``label``) when there is preference data (or
``--rejected`` builds pairs from the dialogues; docs/preference.md), and ``DIR/report.json``
(kept per source, drops per reason, turn and character statistics) and prints a summary table.
Bad input is skipped and counted; with ``--strict`` (or when nothing loads) the run stops with one line naming
the file, the record and what was expected, and exits with status 1; a configuration mistake exits with 2
(``chathuman_hf.core.cli.run_cli``, as in every recipe).
"""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from transformers import HfArgumentParser

from chathuman_hf.core.cli import SHORT_USAGE, run_cli
from chathuman_hf.data import DataArguments, DataReport

if TYPE_CHECKING:
    from datasets import Dataset


@dataclass
class PrepareArguments:
    """Where the prepared files go."""

    output: str | None = field(default=None, metadata={"help": "Output folder for report.json and the data files."})
    config: str | None = field(default=None, metadata={"help": "YAML file with DataArguments fields (CLI wins)."})


def parse(argv: list[str]) -> tuple[DataArguments, PrepareArguments]:
    """Parse the CLI; ``--config x.yaml`` supplies defaults that command-line flags override."""
    parser = HfArgumentParser((DataArguments, PrepareArguments), usage=SHORT_USAGE)
    known, _ = parser.parse_known_args(argv)
    if known.config:  # the training recipe's YAML rules: unknown keys and floats read as strings are errors
        from chathuman_hf.training.parsing import load_yaml_config  # imports TrainingArguments: only when needed

        parser.set_defaults(**load_yaml_config(known.config, {action.dest for action in parser._actions} - {"help"}))
    data_args, prepare_args = parser.parse_args_into_dataclasses(args=argv)
    if not prepare_args.output:
        parser.error("--output DIR is required")
    return data_args, prepare_args


def write_outputs(dataset: Dataset | None, report: DataReport, output: Path) -> list[Path]:
    """Write dialogues.jsonl (when there are dialogues) and report.json (with turn/char statistics) into ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    if dataset is None:
        report.write_json(output / "report.json")
        return []
    turns, chars = [], []
    with (output / "dialogues.jsonl").open("w", encoding="utf-8") as handle:
        for batch in dataset.iter(batch_size=1000):
            levels = batch.get("speech_levels") or [None] * len(batch["messages"])
            for messages, source, dialogue_id, level in zip(
                batch["messages"], batch["source"], batch["dialogue_id"], levels, strict=True
            ):
                row = {"messages": messages, "source": source, "dialogue_id": dialogue_id}
                if level is not None:
                    row["speech_levels"] = level
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                turns.append(sum(m["role"] != "system" for m in messages))
                chars.append(sum(len(m["content"]) for m in messages))
    report.add_stats(turns, chars)
    report.write_json(output / "report.json")
    return [output / "dialogues.jsonl"]


def main(argv: list[str] | None = None) -> int:
    """Run the preparation; returns the process exit status."""
    warnings.formatwarning = lambda message, *args, **kwargs: f"warning: {message}\n"
    data_args, prepare_args = parse(sys.argv[1:] if argv is None else argv)
    from chathuman_hf.training.preference_data import load_dialogues_and_preferences  # imports datasets: late

    report = DataReport()
    dataset, preferences = load_dialogues_and_preferences(data_args, report)
    if dataset is not None and data_args.wants_speech_levels():
        from chathuman_hf.data.speech import apply_speech_options

        dataset = apply_speech_options(dataset, data_args, report)
    output = Path(prepare_args.output)
    written = write_outputs(dataset, report, output)
    if preferences is not None:
        from chathuman_hf.data.preferences import write_preferences

        written[:0] = write_preferences(preferences, output)
        report.write_json(output / "report.json")
    print(report.format_table())
    print("wrote " + ", ".join(str(path) for path in [*written, output / "report.json"]))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
