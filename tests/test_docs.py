"""Every command in README.md and docs/*.md is run or checked, so the docs cannot drift from the code.

Convention (tests/helpers/docs_commands.py): each line of a ```bash block is one command; output, Python and
third-party commands go in ```text / ```python / ```console blocks. Each command falls in exactly one category:

- ``Run``: cheap; run as written in a scratch copy of the repository (recipes, package, configs and bench linked,
  ``../shared`` linked, ``outputs/quickstart`` = the tiny test model); ``python recipes/X.py`` goes through
  ``runpy`` as ``__main__`` in this process (same argv, same entry point, no interpreter start), pipelines
  through ``bash -c``.
- ``ByTest``: an existing test (or ``.ci/run``) runs the same script with the same options: checked against that
  test's source, and parsed by the recipe's own parser here.
- ``Slow``: worth running for real but long: parsed by the recipe's parser here, run as written under ``-m slow``.
- ``Parse``: cannot run here (a GPU, the Hub, a download, placeholder data): parsed by the real argument parser
  (the recipe's, and accelerate's for ``accelerate launch``), nothing trained.
- every ``python -m bench.NAME …`` (bench): ``bench/NAME.py`` exists, and once ``bench/`` is a package its
  ``--help`` lists the options used.
- every ``pip install …`` (install): the extras exist in pyproject.toml, the torch pin is the one .ci/run installs.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import io
import json
import os
import re
import runpy
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from tests.helpers.docs_commands import REPO, DocCommand, all_commands, doc_files


@dataclass(frozen=True)
class Run:
    rc: int = 0  # the documented exit status (2: a usage error the docs show)


@dataclass(frozen=True)
class ByTest:
    node: str  # tests/test_x.py::test_name, or .ci/run
    via: tuple[str, ...] = ()  # other files the test runs the script through (e.g. tests/shard_probe.py)


@dataclass(frozen=True)
class Slow:
    before: tuple[str, ...] = ()  # commands (registry keys) whose outputs this one reads
    model: bool = False  # outputs/quickstart = the tiny test model (else the command trains what it reads)


@dataclass(frozen=True)
class Parse:
    why: str


QUICKSTART = "accelerate launch recipes/train.py --config recipes/configs/quickstart.yaml"
PREPARE_SAMPLE = "python recipes/prepare.py --data chathuman_hf/sample_data/ --output out/prepared"
SAMPLE_KAKAO = "python recipes/prepare.py --data chathuman_hf/sample_data/kakao_pc.txt --assistant 이랑"
PAIRS_FROM_QA = "python recipes/prepare.py --data chathuman_hf/sample_data/qa.csv --rejected other --output out/pairs"
PREFERENCE_PLACEHOLDERS = "an SFT output (outputs/sft, outputs/sft-lora) and preference files of the user's"
HUB = "a real Hub model id (no Hub here) and placeholder data"
GPU = "needs GPUs"
KOGPT2_GPU = "needs GPUs and the Hub (skt/kogpt2-base-v2)"
MULTI_NODE = ("accelerate launch --config_file accelerate_configs/multi_node.yaml --machine_rank {} --main_process_ip "
              "10.0.0.1 --main_process_port 29500 --num_machines 2 --num_processes 8 recipes/train.py --config "
              "recipes/configs/kogpt2.yaml")
LORA = ("accelerate launch --config_file accelerate_configs/single_gpu.yaml recipes/train.py --model_name_or_path "
        "LGAI-EXAONE/EXAONE-4.0-1.2B --chat_template model --use_peft")

REGISTRY: dict[str, Run | ByTest | Slow | Parse] = {
    # README: quickstart, tests, tour
    f"{QUICKSTART} --label-mode input": Slow(),
    "python recipes/chat.py --model outputs/quickstart": ByTest("tests/test_chat_cli.py::test_chat_through_a_pipe"),
    "python recipes/serve.py --model outputs/quickstart --port 8000":
        ByTest("tests/test_server.py::test_serve_recipe_logs_no_message_bodies"),
    "python -m pytest -m not slow": ByTest(".ci/run"),
    PREPARE_SAMPLE: Run(),
    f"{QUICKSTART} --data out/prepared/dialogues.jsonl --output_dir outputs/mine": Slow(before=(PREPARE_SAMPLE,)),
    "python recipes/train.py --help": Run(),
    "python recipes/inspect_labels.py --model outputs/quickstart --label-mode -100+sys --limit 1": Run(),
    "python recipes/evaluate_model.py --model outputs/quickstart --output metrics.json":
        ByTest("tests/test_evaluation.py::test_evaluate_recipe_writes_json"),
    r"printf 안녕\n지금 몇 시야\n | python recipes/chat.py --model outputs/quickstart --preset greedy": Run(),
    "python recipes/export.py --model outputs/quickstart --output outputs/quickstart-export": Run(),
    # docs/data.md
    "python recipes/prepare.py --output out/prepared": Run(),
    "python recipes/prepare.py --data chathuman_hf/sample_data/ --format auto --output out/prepared": Run(),
    f"{SAMPLE_KAKAO} --silence_minutes 60 --strict --output out/kakao": Run(),
    "python recipes/prepare.py --data chathuman_hf/sample_data/qa.csv --format auto --role_swap "
    "--max_dialogue_turns 4 --output out/qa": Run(),
    f"{SAMPLE_KAKAO} --output out/kakao": Run(),
    "python recipes/prepare.py --data chathuman_hf/sample_data/ --scrub_pii --output out/all": Run(),
    f"{SAMPLE_KAKAO} --no_scrub_pii --output out/raw": Run(),
    f"{SAMPLE_KAKAO} --pii_replacement fake --output out/fake": Run(),
    "python recipes/prepare.py --speech_levels true --output out/levels": Run(),
    # docs/preference.md
    "python recipes/prepare.py --data tests/data/fixtures/preference/ --output out/preferences": Run(),
    PAIRS_FROM_QA: Run(),
    "python recipes/prepare.py --data chathuman_hf/sample_data/qa.csv --rejected other-similar --rejected_seed 7 "
    "--output out/pairs-similar": Run(),
    "python recipes/prepare.py --data chathuman_hf/sample_data/qa.csv --rejected self --rejected_model "
    "outputs/quickstart --output out/pairs-self": Run(),
    "accelerate launch recipes/train.py --stage dpo --model_name_or_path outputs/quickstart --data "
    "out/pairs/preferences.jsonl --output_dir outputs/dpo": Slow(
        before=(PAIRS_FROM_QA,), model=True),
    "accelerate launch recipes/train.py --stage dpo --model_name_or_path outputs/sft-lora --use_peft --data "
    "prefs.jsonl --output_dir outputs/dpo-lora": Parse(PREFERENCE_PLACEHOLDERS),
    "accelerate launch recipes/train.py --stage kto --model_name_or_path outputs/sft --data ratings.jsonl "
    "--output_dir outputs/kto": Parse(PREFERENCE_PLACEHOLDERS),
    "accelerate launch recipes/train.py --stage orpo --model_name_or_path outputs/sft --data prefs.jsonl --beta 0.1 "
    "--output_dir outputs/orpo": Parse(PREFERENCE_PLACEHOLDERS),
    "accelerate launch recipes/train.py --stage dpo --model_name_or_path outputs/sft --data "
    "../shared/data/ChatbotData.csv --rejected other --output_dir outputs/dpo": Parse(PREFERENCE_PLACEHOLDERS),
    "python recipes/prepare.py --data feedback.jsonl feedback-history-export.json --feedback_model sft --output "
    "out/feedback": Parse("the user's feedback log and Open WebUI export"),
    "python recipes/prepare.py --data tests/data/fixtures/feedback/ --feedback_model chatbot --output out/feedback":
        Run(),
    "accelerate launch recipes/train.py --stage kto --model_name_or_path outputs/sft --data "
    "out/feedback/ratings.jsonl out/feedback/preferences.jsonl --output_dir outputs/kto-feedback":
        ByTest("tests/test_feedback_loop.py::test_log_to_prepare_to_kto_to_a_saved_model"),
    "accelerate launch recipes/train.py --stage dpo --model_name_or_path outputs/sft --data "
    "out/feedback/preferences.jsonl --output_dir outputs/dpo-feedback":
        ByTest("tests/test_preference_recipe.py::test_dpo_stage_runs_and_says_what_it_did"),
    "python recipes/inspect_labels.py --stage dpo --model outputs/quickstart --data "
    "tests/data/fixtures/preference/trl_pairs.jsonl --limit 2": Run(),
    "python recipes/evaluate_model.py --model outputs/sft --data ../shared/data/ChatbotData.csv --eval-split 0.1 "
    "--output sft.json": Parse(PREFERENCE_PLACEHOLDERS),
    "python recipes/evaluate_model.py --model outputs/dpo --data ../shared/data/ChatbotData.csv --eval-split 0.1 "
    "--output dpo.json": Parse(PREFERENCE_PLACEHOLDERS),
    # docs/base-models.md
    "accelerate launch recipes/train.py --model_name_or_path LGAI-EXAONE/EXAONE-4.0-1.2B --data my_folder/ "
    "--output_dir outputs/exaone --dtype bfloat16 --auto_bf16 true": Parse(HUB),
    "accelerate launch recipes/train.py --model_name_or_path kakaocorp/kanana-1.5-2.1b-instruct-2505 --data "
    "my_folder/ --output_dir outputs/kanana": Parse(HUB),
    "accelerate launch recipes/train.py --model_name_or_path naver-hyperclovax/HyperCLOVAX-SEED-Text-Instruct-1.5B "
    "--data my_folder/ --output_dir outputs/seed": Parse(HUB),
    "accelerate launch recipes/train.py --model_name_or_path Qwen/Qwen2.5-1.5B-Instruct --data my_folder/ "
    "--output_dir outputs/qwen": Parse(HUB),
    "accelerate launch --config_file accelerate_configs/fsdp.yaml recipes/train.py --model_name_or_path "
    "skt/A.X-4.0-Light --data my_folder/ --output_dir outputs/ax": Parse(f"{GPU}; {HUB}"),
    "accelerate launch recipes/train.py --model_name_or_path google/gemma-3-1b-it --data my_folder/ "
    "--output_dir outputs/gemma": Parse(HUB),
    "accelerate launch --config_file accelerate_configs/single_gpu.yaml recipes/train.py --config "
    "recipes/configs/kogpt2.yaml --data /path/to/aihub --output_dir outputs/kogpt2-chat": Parse(KOGPT2_GPU),
    "python recipes/inspect_labels.py --model Qwen/Qwen2.5-1.5B-Instruct --data my_folder/ --label-mode -100+sys "
    "--limit 2": Parse(HUB),
    "python recipes/inspect_labels.py --model outputs/quickstart --data chathuman_hf/sample_data/chat.jsonl --json "
    "--limit 2": Run(),
    "python recipes/train_tokenizer.py --data ../shared/data/ChatbotData.csv --vocab-size 8000 --output out/tok":
        ByTest("tests/test_tokenizer_training.py::test_recipe_cli_saves_a_loadable_tokenizer"),
    "python recipes/train_tokenizer.py --library sentencepiece --model-type unigram --vocab-size 8000 "
    "--output out/spm": ByTest("tests/test_tokenizer_training.py::test_recipe_cli_saves_a_loadable_tokenizer"),
    f"{LORA} --lora_r 16 --lora_alpha 32 --lora_dropout 0.05 --lora_target_modules all-linear "
    "--activation_checkpointing true --auto_bf16 true --learning_rate 2.0e-04 --data /path/to/dialogues "
    "--output_dir outputs/exaone-lora": Parse(f"{GPU}; {HUB}"),
    f"{LORA} --load_in_4bit --activation_checkpointing true --auto_bf16 true --learning_rate 2.0e-04 "
    "--data /path/to/dialogues --output_dir outputs/exaone-qlora": Parse(f"{GPU}; {HUB}"),
    "python recipes/chat.py --model outputs/exaone-lora": Parse("the adapter of the GPU run above"),
    "python recipes/export.py --model outputs/exaone-lora --output outputs/exaone-chat --push_to_hub "
    "--hub_model_id me/exaone-chat": Parse("the adapter of the GPU run above; a Hub upload"),
    # docs/serving.md: Run it locally (GGUF)
    "python -m chathuman_hf.publishing.llama_cpp_source": ByTest(".ci/run"),
    "python recipes/export.py --model outputs/quickstart --output outputs/quickstart-gguf --gguf q8_0":
        ByTest("tests/test_gguf_export.py::test_export_recipe_writes_gguf_and_modelfile"),
    # docs/benchmarks.md (python -m bench.* and pip are categorised by their form)
    "bash bench/run_all.sh": Parse("every benchmark in full (hours on 2 cores)"),
    # docs/conversation-quality.md
    "python recipes/evaluate_model.py --model outputs/quickstart --data chathuman_hf/sample_data/chat.jsonl "
    "--eval-split 0.1 --output metrics.json": Slow(model=True),
    r"printf 밥 먹었어?\n저도요\n교수님께서 오셨어?\nㅋㅋㅋ\n | python -m chathuman_hf.korean speech-level": Run(),
    "curl -LO https://raw.githubusercontent.com/songys/Chatbot_data/master/ChatbotData.csv": Parse("a download"),
    "python recipes/train.py --config recipes/configs/chatbotdata.yaml --data ChatbotData.csv":
        ByTest("tests/test_chatbotdata_recipe.py::test_chatbotdata_recipe_short_run"),
    "python recipes/train.py --config recipes/configs/chatbotdata.yaml --data ChatbotData.csv "
    "--speech_level_control true --speech_level_balance 1.0 --output_dir outputs/chatbotdata-control":
        Parse("about 15 minutes on 2 CPU cores"),
    "python recipes/chat.py --model outputs/chatbotdata-control --speech_level plain":
        ByTest("tests/test_speech_control.py::test_chat_cli_speech_level"),
    # docs/developing.md
    "python -m ruff check chathuman_hf recipes bench tests": ByTest(".ci/run"),
    # docs/label-modes.md
    f"{QUICKSTART} --label-mode -100+sys --output_dir outputs/quickstart-sys": Slow(),
    "python recipes/compare.py --config recipes/configs/quickstart.yaml --output_dir outputs/compare":
        ByTest("tests/test_compare.py::test_compare_all_modes_on_the_quickstart_config"),
    f"{QUICKSTART} --packing --output_dir outputs/packed": Slow(),
    # docs/scaling-out.md
    "GLOO_SOCKET_IFNAME=lo OMP_NUM_THREADS=1 accelerate launch --config_file accelerate_configs/multi_cpu.yaml "
    "--main_process_port 29511 recipes/train.py --config recipes/configs/quickstart.yaml --output_dir outputs/ddp":
        Slow(),
    "GLOO_SOCKET_IFNAME=lo OMP_NUM_THREADS=1 accelerate launch --config_file accelerate_configs/fsdp_cpu.yaml "
    "--main_process_port 29512 recipes/train.py --config recipes/configs/quickstart.yaml --output_dir outputs/fsdp":
        Slow(),
    "accelerate launch --config_file accelerate_configs/multi_gpu.yaml --num_processes 8 recipes/train.py "
    "--config recipes/configs/kogpt2.yaml": Parse(KOGPT2_GPU),
    "accelerate launch --config_file accelerate_configs/fsdp.yaml --num_processes 8 recipes/train.py "
    "--model_name_or_path Qwen/Qwen2.5-7B-Instruct --dtype bfloat16 --activation_checkpointing true --data my_folder/":
        Parse(f"{GPU}; {HUB}"),
    "accelerate launch --config_file accelerate_configs/deepspeed_zero2.yaml --num_processes 8 recipes/train.py "
    "--config recipes/configs/kogpt2.yaml": Parse(KOGPT2_GPU),
    MULTI_NODE.format(0): Parse("two machines"),
    MULTI_NODE.format(1): Parse("two machines"),
    "bash bench/gpu_check.sh results/gpu_check":
        ByTest("tests/test_scale_out.py::test_gpu_check_without_a_gpu_stops_with_one_line"),
    # docs/serving.md
    "python recipes/serve.py --model outputs/quickstart --host 127.0.0.1 --port 8000":
        ByTest("tests/test_server.py::test_serve_recipe_logs_no_message_bodies"),
    'curl http://127.0.0.1:8000/v1/chat/completions -H Content-Type: application/json -d {"model": "quickstart", '
    '"messages": [{"role": "user", "content": "안녕"}]}': Parse("needs the server above running"),
    # docs/troubleshooting.md
    "accelerate launch --config_file accelerate_configs/cpu.yaml --num_cpu_threads_per_process 2 recipes/train.py "
    "--config recipes/configs/quickstart.yaml": Slow(),
    "CHATHUMAN_TRACEBACK=1 python recipes/train.py --config recipes/configs/quickstart.yaml --eval-split 1.5":
        Run(rc=1),
}

COMMANDS: dict[str, DocCommand] = {}
for _command in all_commands():
    COMMANDS.setdefault(_command.key, _command)


def split_env(argv: tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    """Leading ``NAME=value`` words (the command's environment) and the rest."""
    env, rest = {}, list(argv)
    while rest and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", rest[0]):
        name, value = rest.pop(0).split("=", 1)
        env[name] = value
    return env, rest


def is_bench(argv: tuple[str, ...]) -> bool:
    return argv[:2] == ("python", "-m") and len(argv) > 2 and argv[2].startswith("bench.")


def is_install(argv: tuple[str, ...]) -> bool:
    return argv[:2] == ("pip", "install")


def category(key: str) -> Run | ByTest | Slow | Parse | str:
    argv = COMMANDS[key].argv
    auto = "bench" if is_bench(argv) else "install" if is_install(argv) else None
    entry = REGISTRY.get(key)
    where = f"{COMMANDS[key].doc}:{COMMANDS[key].line}"
    assert not (auto and entry), f"{where}: {key!r} is a {auto} command; remove it from REGISTRY in tests/test_docs.py"
    assert auto or entry, (
        f"{where}: the command {key!r} is not checked. Add it to REGISTRY in tests/test_docs.py as Run() if it is "
        "cheap (≤ ~10 s), ByTest('tests/test_x.py::test_name') if a test runs the same script with the same "
        "options, Slow() if it is worth running but long, or Parse('why it cannot run here'); or put it in a "
        "```text/```console block if it is not a command of this project.")
    return auto or entry


# ----------------------------------------------------------------------------------------------- parsing

class _Parsed(Exception):
    """Raised right after a recipe's parser succeeded: nothing after parsing runs."""


def python_script(rest: list[str]) -> tuple[str, list[str]]:
    """(script, its arguments) of ``python recipes/X.py …`` or ``accelerate launch [opts] recipes/X.py …``."""
    if rest[:2] == ["accelerate", "launch"]:
        from accelerate.commands.config.config_args import load_config_from_file
        from accelerate.commands.launch import launch_command_parser

        launch = launch_command_parser().parse_args(rest[2:])
        if launch.config_file:
            assert (REPO / launch.config_file).is_file(), launch.config_file
            load_config_from_file(str(REPO / launch.config_file))
        return launch.training_script, list(launch.training_script_args)
    assert rest[0] == "python" and rest[1].startswith("recipes/"), f"no parser for {rest}"
    return rest[1], rest[2:]


def parse_recipe(script: str, args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse ``args`` with the recipe's own parser (YAML config, dataclass checks), stopping before any work."""
    assert (REPO / script).is_file(), f"{script} does not exist"
    monkeypatch.chdir(REPO)  # configs and placeholders are named relative to the repository root
    if script == "recipes/train.py":
        from chathuman_hf.training.parsing import parse_args

        parse_args(args)
        return
    from transformers import HfArgumentParser

    into_dataclasses = HfArgumentParser.parse_args_into_dataclasses
    known_args = argparse.ArgumentParser.parse_known_args

    def stop_after_dataclasses(self, *a, **k):
        raise _Parsed(into_dataclasses(self, *a, **k))

    def stop_after_plain(self, *a, **k):  # compare.py's plain argparse parser (not HfArgumentParser's own call)
        result = known_args(self, *a, **k)
        if type(self) is argparse.ArgumentParser:
            raise _Parsed(result)
        return result

    monkeypatch.setattr(HfArgumentParser, "parse_args_into_dataclasses", stop_after_dataclasses)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", stop_after_plain)
    main = runpy.run_path(str(REPO / script), run_name="docs_parse")["main"]
    with pytest.raises(_Parsed):
        main(args)


def parse_command(command: DocCommand, monkeypatch: pytest.MonkeyPatch) -> None:
    _, rest = split_env(command.argv)
    if "|" in rest:
        rest = rest[len(rest) - rest[::-1].index("|"):]
    if rest[0] == "curl":
        url = next(w for w in rest if w.startswith("http"))
        if "-d" in rest:  # a request to serve.py: a valid body for a route the server has
            from chathuman_hf.serving.schemas import ChatCompletionRequest

            path = "/" + url.split("/", 3)[3]
            routes = "".join((REPO / "chathuman_hf/serving" / f).read_text() for f in ("app.py", "openai_api.py"))
            assert f'"{path}"' in routes, f"{command.doc}:{command.line}: serve.py has no route {path}"
            ChatCompletionRequest.model_validate(json.loads(rest[rest.index("-d") + 1]))
        else:
            assert url.startswith("https://") and "-LO" in rest
        return
    if rest[0] == "bash":
        script = REPO / rest[1]
        assert script.is_file(), rest[1]
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
        return
    if rest[:2] == ["python", "-m"]:
        assert importlib.util.find_spec(rest[2]) is not None, rest[2]
        return
    parse_recipe(*python_script(rest), monkeypatch)


# ------------------------------------------------------------------------------------------------ running

def make_scratch(root: Path, model: Path | None) -> Path:
    """A scratch copy of the repository in ``root``: code and ../shared linked, outputs/quickstart = ``model``."""
    repo = root / "repo"
    repo.mkdir()
    for name in ("recipes", "chathuman_hf", "accelerate_configs", "bench", "tests", "pyproject.toml"):
        (repo / name).symlink_to(REPO / name)
    (repo / "outputs").mkdir()
    if model is not None:
        (repo / "outputs" / "quickstart").symlink_to(model)
    if (REPO.parent / "shared").is_dir():
        (root / "shared").symlink_to(REPO.parent / "shared")
    return repo


@pytest.fixture(scope="module")
def scratch(tmp_path_factory, tiny_model_dir) -> Path:
    return make_scratch(tmp_path_factory.mktemp("docs"), tiny_model_dir)


def check_outputs(command: DocCommand, repo: Path) -> None:
    """What the command says it writes is there: a model for --output_dir, a file or folder for --output."""
    args = list(command.argv)
    for option, inside in (("--output_dir", "model.safetensors"), ("--output", "")):
        if option in args:
            written = repo / args[args.index(option) + 1] / inside
            assert written.exists(), f"{command.doc}:{command.line}: {written} was not written"
    if command.key.startswith("accelerate launch") and "--output_dir" not in args:  # the config's output_dir
        assert (repo / "outputs/quickstart/model.safetensors").exists()


def command_env(extra: dict[str, str]) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                TOKENIZERS_PARALLELISM="false", **extra)


def run_in_shell(command: DocCommand, cwd: Path, timeout: float) -> tuple[int, str]:
    proc = subprocess.run(["bash", "-c", command.text], cwd=cwd, env=command_env({}), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout[-3000:] + proc.stderr[-3000:]


def run_in_process(command: DocCommand, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """``python recipes/X.py ARGS`` as ``__main__`` in this process: the same argv through the same entry point."""
    env, rest = split_env(command.argv)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", rest[1:])
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    try:
        runpy.run_path(str(cwd / rest[1]), run_name="__main__")
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except Exception:  # what an uncaught exception does to a process (CHATHUMAN_TRACEBACK=1 shows one)
        return 1
    return 0


def run_as_written(command: DocCommand, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    _, rest = split_env(command.argv)
    if rest[0] == "python" and rest[1].startswith("recipes/") and "|" not in rest:
        return run_in_process(command, cwd, monkeypatch), ""
    if "chathuman_hf.korean" in rest:
        pytest.importorskip("kiwipiepy", reason='the speech-level CLI needs pip install -e ".[korean]"')
    return run_in_shell(command, cwd, timeout=300)


# -------------------------------------------------------------------------------------------------- checks

def option_names(args: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in args if a.startswith("--")]


def check_tested(command: DocCommand, entry: ByTest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The named test exists and passes this script every option the docs use (either spelling, - or _)."""
    path, _, name = entry.node.partition("::")
    source = "\n".join((REPO / p).read_text(encoding="utf-8") for p in (path, *entry.via))
    if name:
        assert re.search(rf"^(async )?def {name}\(", source, re.M), f"{entry.node} does not exist"
    env, rest = split_env(command.argv)
    if path == ".ci/run":
        assert command.text in source, f".ci/run does not run {command.text!r}"
        return
    if rest[0] == "bash":
        assert rest[1] in source, f"{entry.node} does not run {rest[1]}"
        return
    script, args = python_script(rest[rest.index("|") + 1:] if "|" in rest else rest)
    assert Path(script).name in source, f"{entry.node} does not run {script}"
    for option in option_names(args):
        spellings = {option, "--" + option[2:].replace("-", "_"), "--" + option[2:].replace("_", "-")}
        assert any(f'"{s}"' in source or f"'{s}'" in source for s in spellings), (
            f"{command.doc}:{command.line}: {entry.node} does not pass {option}; make the test pass it, or change "
            "the command's category in tests/test_docs.py")
    parse_recipe(script, args, monkeypatch)


@cache
def bench_help(module: str) -> str:
    proc = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, env=command_env({}),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def check_bench(command: DocCommand) -> None:
    module = command.argv[2]
    assert (REPO / (module.replace(".", "/") + ".py")).is_file(), f"{module}: no such bench script"
    text = bench_help(module)
    for option in option_names(list(command.argv[3:])):
        assert option in text, f"{command.doc}:{command.line}: {module} has no option {option}"


def check_install(command: DocCommand) -> None:
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    ci = (REPO / ".ci/run").read_text(encoding="utf-8")
    for word in command.argv[2:]:
        if word.startswith("torch=="):
            assert f"pip install -q {word}" in ci, f"{word}: .ci/run installs another torch"
        elif "[" in word:
            extras = word[word.index("[") + 1:word.index("]")].split(",")
            missing = set(extras) - set(project["optional-dependencies"])
            assert not missing, f"{command.doc}:{command.line}: no extra {sorted(missing)} in pyproject.toml"
        else:
            assert word in ("-e", "."), f"{command.doc}:{command.line}: unexpected pip argument {word}"


@pytest.mark.parametrize("key", sorted(COMMANDS))
def test_doc_command(key, scratch, monkeypatch):
    command, entry = COMMANDS[key], category(key)
    if entry == "bench":
        check_bench(command)
    elif entry == "install":
        check_install(command)
    elif isinstance(entry, Run):
        code, log = run_as_written(command, scratch, monkeypatch)
        assert code == entry.rc, f"{command.doc}:{command.line}: exit {code}, the docs expect {entry.rc}\n{log}"
        if entry.rc == 0:
            check_outputs(command, scratch)
    elif isinstance(entry, ByTest):
        check_tested(command, entry, monkeypatch)
    else:  # Slow and Parse: the real parser accepts it
        parse_command(command, monkeypatch)


SLOW_KEYS = sorted(k for k, v in REGISTRY.items() if isinstance(v, Slow))


@pytest.mark.slow
@pytest.mark.parametrize("key", SLOW_KEYS)
def test_slow_doc_command_runs_as_written(key, tmp_path, tiny_model_dir):
    entry, command = REGISTRY[key], COMMANDS[key]
    repo = make_scratch(tmp_path, tiny_model_dir if entry.model else None)
    for before in entry.before:
        code, log = run_in_shell(COMMANDS[before], repo, timeout=300)
        assert code == 0, log
    code, log = run_in_shell(command, repo, timeout=1200)
    assert code == 0, f"{command.doc}:{command.line}\n{log}"
    check_outputs(command, repo)


def test_registry_has_no_stale_commands():
    stale = sorted(set(REGISTRY) - set(COMMANDS))
    assert not stale, f"tests/test_docs.py REGISTRY names commands no doc has any more: {stale}"


# ------------------------------------------------------------------------------------- links, paths, modules

def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


DOCS = doc_files()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_links_and_anchors_resolve(doc):
    text = doc.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        assert path.exists(), f"{doc.name}: link to {target}: no such file"
        if anchor and path.suffix == ".md":
            assert anchor in anchors(path), f"{doc.name}: link to {target}: no such heading in {path.name}"


PATH_MENTION = re.compile(r"`((?:chathuman_hf|recipes|tests|bench|accelerate_configs|docs)/[^`\s]*)`")
PLACEHOLDER = re.compile(r"NAME|\*|…|\{|<")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_paths_and_modules_named_exist(doc):
    text = doc.read_text(encoding="utf-8")
    for mention in PATH_MENTION.findall(text):
        path = mention.split("::")[0].split(" ")[0].rstrip(".,")
        if not PLACEHOLDER.search(path):
            assert (REPO / path).exists(), f"{doc.name} names {path}, which does not exist"
    for dotted in set(re.findall(r"`(chathuman_hf(?:\.\w+)+)", text)):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                if importlib.util.find_spec(".".join(parts[:cut])) is not None:
                    break
            except ModuleNotFoundError:  # a name inside a module, not a submodule
                continue
        obj = importlib.import_module(".".join(parts[:cut]))
        for attr in parts[cut:]:
            assert hasattr(obj, attr), f"{doc.name} names {dotted}: {obj.__name__} has no {attr}"
            obj = getattr(obj, attr)


def test_readme_is_a_guide_of_at_most_250_lines():
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= 250
