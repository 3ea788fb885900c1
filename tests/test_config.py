"""Argument parsing of the training recipe: YAML recipes, command-line overrides, label-mode spellings."""

from __future__ import annotations

import dataclasses
import os

import pytest
from transformers import TrainingArguments

from chathuman_hf.data.options import DataArguments
from chathuman_hf.training.parsing import field_names, parse_args
from chathuman_hf.training.training_arguments import ChatTrainingArguments


def write(tmp_path, text: str):
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_values_and_command_line_wins(tmp_path):
    cfg = write(tmp_path, "label_mode: -100+sys\nmax_length: 128\nlearning_rate: 2.0e-05\nnum_train_epochs: 3\n")
    model, data, chat, train = parse_args(["--config", str(cfg), "--max-length", "64", "--output_dir", str(tmp_path)])
    assert chat.label_mode == "-100+sys"
    assert chat.max_length == 64  # command line over YAML
    assert train.learning_rate == 2.0e-05
    assert train.num_train_epochs == 3
    assert train.output_dir == str(tmp_path)


def test_unknown_yaml_key_names_key_and_file(tmp_path):
    cfg = write(tmp_path, "max_lenght: 128\n")
    with pytest.raises(ValueError, match=r"recipe\.yaml: unknown key 'max_lenght'"):
        parse_args(["--config", str(cfg)])


def test_yaml_float_written_as_string_is_refused(tmp_path):
    cfg = write(tmp_path, "learning_rate: 2e-5\n")
    with pytest.raises(ValueError, match="2.0e-05"):
        parse_args(["--config", str(cfg)])


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--label-mode", "-100"], "-100"),
        (["--label-mode", "-100+sys"], "-100+sys"),
        (["--label_mode=last_sys"], "last_sys"),
        (["--label-mode", "all_sys"], "all_sys"),
        (["--label-mode", "shift"], "shift"),
    ],
)
def test_label_mode_spellings(argv, expected):
    assert parse_args(argv)[2].label_mode == expected


def test_bad_label_mode_is_an_error():
    with pytest.raises(SystemExit):
        parse_args(["--label-mode", "everything"])


def test_every_training_argument_is_accepted(tmp_path):
    _, _, _, train = parse_args(
        ["--gradient_accumulation_steps", "4", "--lr_scheduler_type", "cosine", "--save_steps", "7",
         "--save_strategy", "steps", "--eval_strategy", "steps", "--eval_steps", "7", "--report_to", "tensorboard",
         "--train_sampling_strategy", "group_by_length", "--output_dir", str(tmp_path)]
    )
    assert isinstance(train, TrainingArguments)
    assert (train.gradient_accumulation_steps, train.save_steps, train.report_to) == (4, 7, ["tensorboard"])


def test_chat_defaults():
    _, _, chat, train = parse_args([])
    assert train.eval_strategy == "epoch" and train.save_strategy == "epoch"
    assert train.load_best_model_at_end and train.metric_for_best_model == "eval_assistant_perplexity"
    assert train.greater_is_better is False and train.save_total_limit == 2
    assert train.remove_unused_columns is False
    assert (chat.label_mode, chat.max_length, chat.eval_split) == ("input", 256, 0.1)


def test_no_option_name_is_defined_twice():
    owners = field_names()
    for f in dataclasses.fields(DataArguments):
        assert owners[f.name] == "DataArguments"
    assert owners["seed"] == "ChatTrainingArguments"
    assert owners["label_mode"] == "ChatArguments"


def test_data_options_are_parsed(tmp_path):
    _, data, _, _ = parse_args(["--data", "a.csv", "b.jsonl", "--no_lowercase", "--role_swap"])
    assert data.data == ["a.csv", "b.jsonl"]
    assert data.lowercase is False and data.role_swap is True


def test_model_from_scratch_and_pretrained_conflict():
    with pytest.raises(ValueError, match="either --model_name_or_path"):
        parse_args(["--model_name_or_path", "some/model", "--model_type", "gpt2"])
    model = parse_args(["--model_type", "gpt2", "--config_overrides", "n_layer=2"])[0]
    assert model.from_scratch


def test_shipped_recipes_parse(repo_root):
    model, _, chat, train = parse_args(["--config", str(repo_root / "recipes/configs/quickstart.yaml")])
    assert model.from_scratch and model.train_tokenizer and chat.label_mode == "input"
    model, _, chat, train = parse_args(["--config", str(repo_root / "recipes/configs/kogpt2.yaml")])
    assert model.model_name_or_path == "skt/kogpt2-base-v2"
    assert (chat.max_length, train.learning_rate, train.num_train_epochs) == (256, 5.0e-05, 5)
    assert train.auto_bf16 is True  # bf16 where the accelerator supports it; fp32 on this CPU
    assert isinstance(train, ChatTrainingArguments)


def test_report_to_an_integration_that_is_not_installed_names_the_fix(monkeypatch):
    import transformers.integrations

    assert parse_args(["--report_to", "none"])[3].report_to == []
    monkeypatch.setattr(transformers.integrations, "get_available_reporting_integrations", lambda: ["wandb"])
    assert parse_args(["--report_to", "wandb"])[3].report_to == ["wandb"]
    with pytest.raises(ValueError, match=r"--report_to tensorboard: not installed here; .*pip install tensorboard"):
        parse_args(["--report_to", "tensorboard"])


def test_hub_token_is_moved_to_the_environment(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.warns(UserWarning, match="HF_TOKEN"):
        train = parse_args(["--hub_token", "hf_not_a_real_token"])[3]
    assert train.hub_token is None
    assert os.environ["HF_TOKEN"] == "hf_not_a_real_token"
