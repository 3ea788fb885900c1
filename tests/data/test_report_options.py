"""DataReport API and DataArguments parsing."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from transformers import HfArgumentParser, TrainingArguments

from chathuman_hf.core.cli import UsageError
from chathuman_hf.data import DataArguments, DataReport


def test_report_counts_and_json(tmp_path: Path) -> None:
    report = DataReport()
    report.drop("photo_utterance", where="a.json: d1")
    report.drop("photo_utterance", 2, where="a.json: d2")
    report.add_drops({"too_long": 3, "photo_utterance": 1})
    report.drop("ignored", 0)
    report.kept("a.json", 4)
    report.kept("b.csv", 0)
    report.add_stats([2, 4, 6], [10, 20, 60])
    data = report.to_dict()
    assert data["dialogues"] == 4
    assert data["dropped"] == {"photo_utterance": 4, "too_long": 3}
    assert data["sources"] == {"a.json": 4, "b.csv": 0}
    assert data["drop_examples"] == {"photo_utterance": ["a.json: d1", "a.json: d2"]}
    assert data["turns"] == {"min": 2, "mean": 4.0, "median": 4.0, "max": 6}
    assert data["chars"] == {"min": 10, "mean": 30.0, "median": 20.0, "max": 60}
    report.write_json(tmp_path / "report.json")
    assert json.loads((tmp_path / "report.json").read_text(encoding="utf-8")) == data
    table = report.format_table()
    assert "photo_utterance" in table and "total" in table and "a.json" in table
    report.drop("malformed_record", where="a.json: d9")
    report.record_outcomes({"kept": 4, "malformed_record": 1})
    assert "records read 5 = kept 4 + lost 1 (the other 7 drops above are parts of kept records: utterances, " \
           "turns, examples)" in report.format_table()


def test_report_table_groups_many_sources() -> None:
    report = DataReport()
    for i in range(40):
        report.kept(f"topic/{i:03d}.json", 1)
    report.kept("chat.jsonl", 5)
    table = report.format_table()
    assert "topic/" in table and "40 in 40 files" in table and "topic/001.json" not in table


def test_data_arguments_do_not_clash_with_training_arguments() -> None:
    data_fields = {f.name for f in dataclasses.fields(DataArguments)}
    training_fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    assert data_fields & training_fields == set()


def test_data_arguments_cli_flags() -> None:
    parser = HfArgumentParser(DataArguments)
    (args,) = parser.parse_args_into_dataclasses(
        args=[
            "--data",
            "a.csv",
            "b",
            "--question-column",
            "질문",
            "--no_lowercase",
            "--role_swap",
            "--silence_minutes",
            "30",
            "--max_dialogue_turns",
            "4",
        ]  # fmt: skip
    )
    assert args.data == ["a.csv", "b"]
    assert args.question_column == "질문"
    assert args.lowercase is False and args.role_swap is True
    assert args.silence_minutes == 30.0 and args.max_dialogue_turns == 4
    assert args.cleaning_options().lowercase is False
    assert args.turn_options().role_swap is True


def test_data_arguments_validate() -> None:
    with pytest.raises(UsageError, match="unknown format 'xml'"):  # an option: exit 2, not bad data (exit 1)
        DataArguments(format="xml")
    with pytest.raises(UsageError, match="first_speaker_role must be 'user' or 'assistant'"):
        DataArguments(first_speaker_role="system")
