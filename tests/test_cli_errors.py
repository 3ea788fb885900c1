"""Every recipe's entry point turns a configuration mistake into one ``error:`` line and exit status 2."""

from __future__ import annotations

import json
import logging
import runpy
import sys

import pytest


def run_entry_point(repo_root, recipe: str, argv: list[str], capsys) -> tuple[int, list[str]]:
    """Run ``recipes/<recipe>.py`` as ``__main__`` in this process; its exit status and non-empty stderr lines."""
    path = repo_root / "recipes" / f"{recipe}.py"
    old_argv = sys.argv
    sys.argv = [str(path), *argv]
    try:
        with pytest.raises(SystemExit) as exit_info:
            runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.argv = old_argv
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return exit_info.value.code, err


def quickstart(repo_root) -> list[str]:
    return ["--config", str(repo_root / "recipes/configs/quickstart.yaml")]


def test_train_config_mistakes_are_one_line_exit_2(repo_root, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    typo = tmp_path / "typo.yaml"
    typo.write_text("learning_rat: 1.0e-03\n", encoding="utf-8")
    as_string = tmp_path / "string.yaml"
    as_string.write_text("learning_rate: 1e-3\n", encoding="utf-8")
    not_yaml = tmp_path / "broken.yaml"
    not_yaml.write_text("learning_rate: [1\n", encoding="utf-8")
    cases = {
        "unknown key 'learning_rat'": ["--config", str(typo)],
        "'1e-3' is read as a string": ["--config", str(as_string)],
        "not valid YAML": ["--config", str(not_yaml)],
        "--config nope.yaml: no such file": ["--config", "nope.yaml"],
        "--eval-split must be in [0, 1), got 1.5": [*quickstart(repo_root), "--eval-split", "1.5"],
        "--resume_from_checkpoint missing/checkpoint-5: no such directory": [
            *quickstart(repo_root), "--output_dir", str(tmp_path / "o"),
            "--resume_from_checkpoint", "missing/checkpoint-5"],
    }
    for expected, argv in cases.items():
        code, err = run_entry_point(repo_root, "train", argv, capsys)
        assert code == 2, (expected, err)
        assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], (expected, err)


def test_train_one_dialogue_is_one_line(repo_root, tmp_path, capsys):
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"messages": [{"role": "user", "content": "안녕"},
                                            {"role": "assistant", "content": "안녕!"}]}, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    code, err = run_entry_point(repo_root, "train", [*quickstart(repo_root), "--data", str(one), "--output_dir",
                                                     str(tmp_path / "o")], capsys)
    assert code == 2
    assert err == ["error: Need at least 2 dialogues to hold some out; pass --eval-data or --eval-split 0."]


@pytest.mark.parametrize("recipe", ["evaluate_model", "chat", "serve", "export", "inspect_labels", "train"])
def test_a_mistyped_model_dir_is_one_line(repo_root, tmp_path, capsys, recipe):
    option = "--model_name_or_path" if recipe == "train" else "--model"
    extra = {"export": ["--output", str(tmp_path / "merged")], "train": ["--output_dir", str(tmp_path / "o")]}
    argv = [option, str(tmp_path / "outputs/quickstrat"), *extra.get(recipe, [])]
    code, err = run_entry_point(repo_root, recipe, argv, capsys)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and "quickstrat" in err[0], err
    assert "Repo id must be" not in err[0]  # the Hub client's words for a missing directory


@pytest.mark.parametrize("argv", [["--format", "yaml"], ["--pii_replacement", "mask"],
                                  ["--first_speaker_role", "bot"]])
def test_a_wrong_data_option_is_a_configuration_mistake(repo_root, tmp_path, capsys, argv):
    """Exit 2 like every option, not 1 (bad data), in train and prepare alike."""
    for recipe, out in (("prepare", "--output"), ("train", "--output_dir")):
        code, err = run_entry_point(repo_root, recipe, [*argv, out, str(tmp_path / recipe)], capsys)
        assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and argv[1] in err[0], (recipe, err)


def test_other_recipes_share_the_mechanism(repo_root, tmp_path, capsys):
    code, err = run_entry_point(repo_root, "train_tokenizer", ["--vocab-size", "3", "--output", str(tmp_path)], capsys)
    assert code == 2 and len(err) == 1 and "vocab_size=3 is too small" in err[0], err
    code, err = run_entry_point(repo_root, "prepare", ["--config", str(tmp_path / "none.yaml"), "--output",
                                                       str(tmp_path / "p")], capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and "none.yaml" in err[0], err


def test_evaluate_scores_all_of_data_unless_a_split_is_asked(repo_root, tiny_model_dir, tmp_path):
    evaluate = runpy.run_path(str(repo_root / "recipes" / "evaluate_model.py"), run_name="evaluate_recipe")["main"]
    data = tmp_path / "four.jsonl"
    rows = [[{"role": "user", "content": f"오늘 {i}번째 질문이야"}, {"role": "assistant", "content": "좋아 대답할게"}]
            for i in range(4)]
    data.write_text("".join(json.dumps({"messages": r}, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    common = ["--model", str(tiny_model_dir), "--data", str(data), "--generation_prompts", "1"]
    whole = evaluate(common)
    assert whole["eval_dialogues"] == 4 and whole["scored"] == f"all of {data}"
    split = evaluate([*common, "--eval-split", "0.5"])
    assert split["eval_dialogues"] == 2 and split["scored"] == f"the held-out 0.5 split (seed 42) of {data}"


def test_hopeless_max_length_stops_before_training_in_one_line(repo_root, tiny_model_dir, tmp_path, capsys):
    out, data = tmp_path / "o", tmp_path / "ten.jsonl"
    rows = [[{"role": "user", "content": f"오늘 {i}번째 질문이야"}, {"role": "assistant", "content": "좋아 대답할게"}]
            for i in range(10)]
    data.write_text("".join(json.dumps({"messages": r}, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    code, err = run_entry_point(repo_root, "train", ["--model_name_or_path", str(tiny_model_dir), "--data", str(data),
                                                     "--max-length", "8", "--output_dir", str(out)], capsys)
    assert code == 2
    assert (
        len(err) == 1
        and err[0].startswith("error: --max-length 8 leaves ")
        and "too_long_single_exchange" in err[0]
    )
    assert "at least 10% must be left to train" in err[0] and "raise --max-length" in err[0], err
    assert not list(out.glob("checkpoint-*")) and not (out / "model.safetensors").exists()


def test_a_vocab_size_the_data_cannot_fill_is_logged(caplog):
    from chathuman_hf.tokens.tokenizer_training import train_tokenizer
    from chathuman_hf.training.preflight import log_vocab_fill

    tok = train_tokenizer(["안녕 반가워", "밥 먹었어"] * 3, vocab_size=2000)
    with caplog.at_level("WARNING", logger="chathuman_hf.training.preflight"):
        log_vocab_fill(tok, 2000)
    assert len(tok) < 2000
    assert f"--vocab-size 2000 was asked; the training text only fills {len(tok)} tokens" in caplog.text


def test_rerunning_into_a_run_sets_it_aside_and_piped_output_has_no_progress_bars(tmp_path, caplog):
    import io

    from chathuman_hf.training.checkpoints import latest_complete_checkpoint
    from chathuman_hf.training.preflight import quiet_progress_when_piped, set_aside_previous_run
    from chathuman_hf.training.training_arguments import ChatTrainingArguments

    for step in (2, 3):  # an earlier run of 3 epochs; a new run of 1 would keep checkpoint-3 beside its checkpoint-1
        (tmp_path / f"checkpoint-{step}").mkdir()
        for name in ("model.safetensors", "optimizer.pt", "scheduler.pt"):
            (tmp_path / f"checkpoint-{step}" / name).write_text("{}")
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    for name in ("config.json", "model.safetensors", "chats.jsonl"):
        (tmp_path / name).write_text("{}")
    assert latest_complete_checkpoint(tmp_path) is not None
    with caplog.at_level("WARNING", logger="chathuman_hf.training.preflight"):
        assert set_aside_previous_run(tmp_path, resume=str(tmp_path / "checkpoint-3")) == []
        assert set_aside_previous_run(tmp_path / "new", resume=None) == []
        assert set_aside_previous_run(tmp_path, resume=None) == [
            "checkpoint-2", "checkpoint-3", "config.json", "model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_previous_run", "chats.jsonl"]  # not the user's file
    assert latest_complete_checkpoint(tmp_path) is None  # --resume_from_checkpoint auto: nothing stale to pick
    assert (tmp_path / "_previous_run" / "checkpoint-3" / "trainer_state.json").is_file()
    assert "already held a run (checkpoint-2, checkpoint-3, config.json …)" in caplog.text
    assert "--resume_from_checkpoint auto" in caplog.text
    args = ChatTrainingArguments(output_dir=str(tmp_path), report_to="none")
    assert quiet_progress_when_piped(args, io.StringIO()) is True and args.disable_tqdm is True
    import datasets
    import transformers

    assert not datasets.is_progress_bar_enabled() and not transformers.utils.logging.is_progress_bar_enabled()
    datasets.enable_progress_bars()
    transformers.utils.logging.enable_progress_bar()


def test_a_missing_local_model_path_is_told_from_a_hub_id(tmp_path, monkeypatch):
    from chathuman_hf.core.cli import UsageError, require_model

    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs" / "quickstart").mkdir(parents=True)
    assert require_model("outputs/quickstart", "--model") == "outputs/quickstart"
    assert require_model("skt/kogpt2-base-v2", "--model") == "skt/kogpt2-base-v2"  # left to the Hub
    for typo in ("outputs/quickstrat", "./quickstart", str(tmp_path / "nope"), "outputs/quickstart/final"):
        with pytest.raises(UsageError, match="no such directory"):
            require_model(typo, "--model")


def test_an_invalid_choice_is_two_lines_not_the_whole_usage(repo_root, capsys):
    """argparse prints the usage first: the recipes print a one-line usage, not ~150 lines of TrainingArguments."""
    code, err = run_entry_point(repo_root, "train", ["--label-mode", "foo"], capsys)
    assert code == 2 and len(err) == 2, err
    assert err[0] == "usage: train.py [options]   (every option: --help)"
    assert err[1].startswith("train.py: error: argument --label_mode/--label-mode: invalid choice: 'foo'")


def _word_model_and_data(tmp_path, lines: list[str]) -> tuple[str, str]:
    """A word-level tokenizer directory (the <usr>/<sys> template) and a JSONL file of ``lines``."""
    from tests.helpers.tiny_models import THREE_TURN_WORDS, make_word_tokenizer

    make_word_tokenizer(THREE_TURN_WORDS).save_pretrained(tmp_path / "tok")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(tmp_path / "tok"), str(data)


@pytest.mark.parametrize("limit", ["0", "-1", "-7"])
def test_inspect_labels_a_limit_below_one_is_one_line(repo_root, tmp_path, capsys, limit):
    from tests.helpers.tiny_models import THREE_TURNS

    tok, data = _word_model_and_data(tmp_path, [json.dumps({"messages": THREE_TURNS}, ensure_ascii=False)])
    code, err = run_entry_point(repo_root, "inspect_labels", ["--model", tok, "--data", data, "--limit", limit],
                                capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0] == f"error: --limit must be at least 1 (examples to show), got {limit}"


def test_inspect_labels_reports_dropped_records_as_training_does(repo_root, tmp_path, capsys):
    """A malformed JSONL line and a record without an assistant reply are counted on stderr; stdout stays JSON."""
    from tests.helpers.tiny_models import THREE_TURNS

    good = json.dumps({"messages": THREE_TURNS}, ensure_ascii=False)
    no_reply = json.dumps({"messages": [{"role": "user", "content": "안녕"}]}, ensure_ascii=False)
    tok, data = _word_model_and_data(tmp_path, [good, "{not json", good, no_reply])
    inspect = runpy.run_path(str(repo_root / "recipes" / "inspect_labels.py"), run_name="inspect_recipe")["main"]
    views = inspect(["--model", tok, "--data", data, "--json"])
    captured = capsys.readouterr()
    assert len(views) == 2 and len(json.loads(captured.out)) == 2
    assert "dropped (reason: count)" in captured.err, captured.err
    assert "records read 4 = kept 2 + lost 2" in captured.err, captured.err
    assert "data.jsonl" in captured.err  # the first example per reason names the file
    clean_tok, clean = _word_model_and_data(tmp_path / "clean", [good])
    inspect(["--model", clean_tok, "--data", clean, "--json"])
    assert "dropped" not in capsys.readouterr().err  # nothing dropped: nothing said


@pytest.mark.parametrize("argv, expected", [
    (["--eval_strategy", "no", "--load_best_model_at_end", "false"],
     "--early_stopping_patience 3 compares evaluations: it needs --eval_strategy steps or epoch"),
    (["--load_best_model_at_end", "false"], "--early_stopping_patience 3 compares evaluations: it needs"),
    (["--early_stopping_patience", "1", "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end",
      "false"], "--early_stopping_patience 1 compares evaluations: it needs --eval_strategy steps or epoch (got no)"),
    (["--eval_strategy", "no"], "--load_best_model_at_end requires the save and eval strategy to match"),
    (["--eval_strategy", "steps", "--save_strategy", "epoch"], "Evaluation strategy: IntervalStrategy.STEPS"),
])
def test_contradicting_training_options_are_one_line_before_any_work(repo_root, tmp_path, capsys, monkeypatch,
                                                                      argv, expected):
    """Caught at parsing: no tokenizer trained, no output folder written (quickstart: early stopping, patience 3)."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "o"
    code, err = run_entry_point(repo_root, "train", [*quickstart(repo_root), *argv, "--output_dir", str(out)], capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert expected in err[0], err
    assert not out.exists()


@pytest.mark.parametrize("extra", [[], ["--lora_target_modules", "c_attn"]])
def test_use_peft_on_a_model_built_from_scratch_stops_before_training(repo_root, tmp_path, capsys, extra):
    out = tmp_path / "o"
    code, err = run_entry_point(repo_root, "train", [*quickstart(repo_root), "--use_peft", *extra, "--output_dir",
                                                     str(out)], capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: --use_peft trains an adapter for a pretrained base") and "--model_type" in err[0]
    assert not out.exists()


def test_the_kernels_offline_trust_notice_is_silenced_other_kernels_messages_are_not(caplog):
    """``kernels`` (pulled in by bitsandbytes) logs 'Skipping publisher trust check …' on every offline start."""
    hf_hub = pytest.importorskip("kernels._internals.hf_hub")
    import chathuman_hf  # noqa: F401  (installs the filter)

    with caplog.at_level("INFO"):
        hf_hub._check_trust_remote_code("kernels-community/quantization-bitsandbytes", True, False)
        logging.getLogger(hf_hub.__name__).warning("Kernel repository could not be loaded")
    messages = [r.getMessage() for r in caplog.records]
    assert not any("publisher trust check" in m for m in messages), messages
    assert "Kernel repository could not be loaded" in messages
