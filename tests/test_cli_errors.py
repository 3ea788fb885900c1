"""Every recipe's entry point turns a configuration mistake into one ``error:`` line and exit status 2."""

from __future__ import annotations

import json
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


@pytest.mark.parametrize("recipe", ["evaluate", "chat", "serve"])
def test_a_mistyped_model_dir_is_one_line(repo_root, tmp_path, capsys, recipe):
    code, err = run_entry_point(repo_root, recipe, ["--model", str(tmp_path / "outputs/quickstrat")], capsys)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and "quickstrat" in err[0], err


def test_other_recipes_share_the_mechanism(repo_root, tmp_path, capsys):
    code, err = run_entry_point(repo_root, "train_tokenizer", ["--vocab-size", "3", "--output", str(tmp_path)], capsys)
    assert code == 2 and len(err) == 1 and "vocab_size=3 is too small" in err[0], err
    code, err = run_entry_point(repo_root, "prepare", ["--config", str(tmp_path / "none.yaml"), "--output",
                                                       str(tmp_path / "p")], capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and "none.yaml" in err[0], err
