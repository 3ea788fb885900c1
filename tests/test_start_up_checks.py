"""Options that cannot work end in one ``error:`` line (exit 2) before any work, not in a traceback or a failure an
epoch or a request later (issue 34, items 1-6)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from chathuman_hf.core.cli import UsageError
from tests.test_cli_errors import quickstart, run_entry_point


@pytest.fixture(autouse=True)
def no_server(monkeypatch):
    """serve.py must stop before it serves: a server started here would block the test."""
    uvicorn = pytest.importorskip("uvicorn")

    def refuse(*args, **kwargs):
        raise AssertionError("serve.py started the server instead of refusing its options")

    monkeypatch.setattr(uvicorn, "run", refuse)


def _one_line(code: int, err: list[str], expected: str) -> None:
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert expected in err[0], err


# ---------------------------------------------------------------- 1. --metric_for_best_model


@pytest.mark.parametrize("argv, expected", [
    (["--metric_for_best_model", "eval_assistant_perplexit"],
     "--metric_for_best_model eval_assistant_perplexit: no evaluation reports it; did you mean "
     "eval_assistant_perplexity?"),
    (["--metric_for_best_model", "assistant_perplexit"], "did you mean eval_assistant_perplexity?"),
    (["--metric_for_best_model", "eval_selection_hits_at_1"],  # quickstart: --selection_every_eval false
     "--metric_for_best_model eval_selection_hits_at_1 needs --conversation_metrics true and --selection_every_eval "
     "true; or pick another metric"),
    (["--metric_for_best_model", "speech_control_plain", "--greater_is_better", "true"],
     "speech_control_plain is measured only in the evaluation after training"),
    (["--metric_for_best_model", "gen_distinct_2", "--generation_prompts", "0"], "needs --generation_prompts above 0"),
    (["--metric_for_best_model", "bleu"], "no evaluation reports it; the evaluations report eval_loss, eval_perplex"),
])
def test_a_best_model_metric_no_evaluation_reports_is_one_line_before_training(repo_root, tmp_path, capsys,
                                                                                 monkeypatch, argv, expected):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "o"
    code, err = run_entry_point(repo_root, "train", [*quickstart(repo_root), *argv, "--output_dir", str(out)], capsys)
    _one_line(code, err, expected)
    assert not out.exists()  # nothing trained, nothing written


@pytest.mark.parametrize("metric", ["assistant_perplexity", "eval_loss", "eval_gen_distinct_2", "context_sensitivity",
                                    "eval_distinct_1"])
def test_best_model_metrics_the_evaluations_report_are_accepted(repo_root, metric):
    from chathuman_hf.training.parsing import parse_args

    *_, training_args = parse_args([*quickstart(repo_root), "--metric_for_best_model", metric])
    assert training_args.metric_for_best_model == metric
    parse_args(["--config", str(repo_root / "recipes/configs/chatbotdata.yaml")])  # eval_selection_hits_at_1


def test_the_metric_names_are_what_an_evaluation_reports(tiny_model_dir, tmp_path):
    """The checked names come from a list: a real evaluation during training reports exactly those."""
    pytest.importorskip("kiwipiepy")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from chathuman_hf.data.options import DataArguments
    from chathuman_hf.evaluation.metric_names import eval_metrics
    from chathuman_hf.tokens.tokenizer import prepare_tokenizer
    from chathuman_hf.training.arguments import ChatArguments
    from chathuman_hf.training.build import build_trainer
    from chathuman_hf.training.data_steps import load_data, tokenize_data
    from chathuman_hf.training.training_arguments import ChatTrainingArguments

    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(tiny_model_dir))
    chat = ChatArguments(max_length=64, generation_prompts=1, conversation_metrics=True, selection_contexts=1)
    data = tokenize_data(load_data(DataArguments(), chat), tokenizer, chat)
    args = ChatTrainingArguments(output_dir=str(tmp_path / "o"), report_to="none", disable_tqdm=True,
                                 per_device_eval_batch_size=64)
    trainer = build_trainer(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tokenizer, data, chat, args)
    metrics = trainer.evaluate()
    reported, missing = eval_metrics(generation=True, conversation=True, selection_every_eval=True, kiwi=True)
    # (eval_model_preparation_time: only when evaluate() runs before any training step, as here)
    assert sorted(set(metrics) - {"epoch", "eval_model_preparation_time"}) == sorted(reported)
    assert sorted(missing) == sorted(f"eval_speech_control_{k}" for k in (
        "plain", "plain_undetermined", "polite", "polite_undetermined", "prompts"))


# ---------------------------------------------------------------- 2. --early_stopping_patience


@pytest.mark.parametrize("patience", ["-1", "-7"])
def test_a_negative_early_stopping_patience_is_one_line(repo_root, tmp_path, capsys, monkeypatch, patience):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "o"
    code, err = run_entry_point(repo_root, "train", [*quickstart(repo_root), "--early_stopping_patience", patience,
                                                     "--output_dir", str(out)], capsys)
    assert code == 2 and err == [f"error: --early_stopping_patience must be at least 1 (evaluations without "
                                 f"improvement before stopping) or 0 (off), got {patience}"], err
    assert not out.exists()


def test_early_stopping_patience_zero_is_off(repo_root):
    from chathuman_hf.training.parsing import parse_args

    _, _, chat_args, _ = parse_args([*quickstart(repo_root), "--early_stopping_patience", "0"])
    assert chat_args.early_stopping_patience == 0


# ---------------------------------------------------------------- 3. --max-new-tokens


@pytest.mark.parametrize("recipe", ["chat", "serve"])
@pytest.mark.parametrize("value, expected", [
    ("0", "error: --max-new-tokens must be at least 1 (tokens per reply), got 0"),
    ("-5", "error: --max-new-tokens must be at least 1 (tokens per reply), got -5"),
    ("300", "error: --max-new-tokens 300 leaves no room for a prompt within the model's 256 positions: at most 248"),
    ("249", "error: --max-new-tokens 249 leaves no room for a prompt within the model's 256 positions: at most 248"),
])
def test_a_reply_length_the_model_cannot_give_is_refused_at_start_up(repo_root, tiny_model_dir, capsys, recipe,
                                                                      value, expected, monkeypatch):
    monkeypatch.setattr(sys, "stdin", None)  # chat.py must stop before it reads a message
    code, err = run_entry_point(repo_root, recipe, ["--model", str(tiny_model_dir), f"--max-new-tokens={value}"],
                                capsys)
    assert code == 2 and err == [expected], err


@pytest.mark.parametrize("max_new_tokens, expected", [
    (300, r"^--max-new-tokens 300 leaves no room for a prompt within the model's 256 positions: at most 248$"),
    (0, r"^--max-new-tokens must be at least 1 \(tokens per reply\), got 0$"),
])
def test_the_python_api_refuses_the_same_reply_lengths_when_it_starts(tiny_model_dir, max_new_tokens, expected):
    """One rule (``ChatEngine.check_max_new_tokens``) for chat.py, serve.py, ``ChatSession`` and ``create_app``."""
    from chathuman_hf.chat import ChatEngine, ChatSession
    from chathuman_hf.serving import create_app

    engine = ChatEngine.from_pretrained(tiny_model_dir)
    for start in (lambda: ChatSession(engine, preset="greedy", max_new_tokens=max_new_tokens),
                  lambda: create_app(engine=engine, preset_overrides={"max_new_tokens": max_new_tokens})):
        with pytest.raises(ValueError, match=expected):
            start()
    assert ChatSession(engine, preset="greedy", max_new_tokens=248).preset.max_new_tokens == 248


# ---------------------------------------------------------------- 4. --device, --port


@pytest.mark.parametrize("recipe", ["chat", "serve"])
@pytest.mark.parametrize("device, expected", [
    ("gpu", "error: --device gpu: not a device to chat on; use auto, cpu, cuda or cuda:N (N a GPU index)"),
    ("meta", "error: --device meta: not a device to chat on"),
    ("cuda:x", "error: --device cuda:x: not a device to chat on"),
    pytest.param("cuda", "error: --device cuda: this machine has no CUDA device",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
    pytest.param("cuda:1", "error: --device cuda:1: this machine has no CUDA device",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
])
def test_a_device_that_is_not_here_is_one_line(repo_root, tiny_model_dir, capsys, monkeypatch, recipe, device,
                                               expected):
    monkeypatch.setattr(sys, "stdin", None)
    code, err = run_entry_point(repo_root, recipe, ["--model", str(tiny_model_dir), "--device", device], capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith(expected), err


def test_devices_that_are_here_resolve():
    from chathuman_hf.chat.saved_model import resolve_device

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu" and resolve_device(None) in ("cpu", "cuda")
    with pytest.raises(UsageError):
        resolve_device("cuda:99")


@pytest.mark.parametrize("port", ["70000", "65536", "-1"])
def test_a_port_outside_the_tcp_range_is_one_line(repo_root, tiny_model_dir, capsys, port):
    code, err = run_entry_point(repo_root, "serve", ["--model", str(tiny_model_dir), "--port", port], capsys)
    assert code == 2 and err == [f"error: --port must be between 1 and 65535 (0: any free port), got {port}"], err


# ---------------------------------------------------------------- 5. --lora_target_modules


@pytest.mark.parametrize("targets, named", [
    (["attn"], "attn is GPT2Attention"),
    (["c_attn", "mlp"], "mlp is GPT2MLP"),
    (["h.0"], "h.0 is GPT2Block"),
    (["ln_f"], "ln_f is LayerNorm"),
])
def test_a_lora_target_that_is_no_lora_layer_is_one_line(tiny_model_dir, targets, named):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from chathuman_hf.models.lora import LoraArguments, PeftSetupError, apply_lora

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    with pytest.raises(PeftSetupError) as info:
        apply_lora(model, LoraArguments(use_peft=True, lora_r=2, lora_target_modules=targets), tokenizer,
                   base_vocab_size=len(tokenizer))
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"--lora_target_modules {targets[-1]}: not a layer LoRA can "
                                                      f"wrap ({named}"), message
    assert "layer names here: c_attn, c_fc, c_proj" in message


def test_lora_on_a_container_module_stops_the_recipe_in_one_line(repo_root, tiny_model_dir, tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = run_entry_point(repo_root, "train", [
        "--model_name_or_path", str(tiny_model_dir), "--use_peft", "--lora_target_modules", "attn", "--output_dir",
        str(tmp_path / "o"), "--max_steps", "1", "--generation_prompts", "0", "--report_to", "none"], capsys)
    _one_line(code, err, "--lora_target_modules attn: not a layer LoRA can wrap (attn is GPT2Attention")


# ---------------------------------------------------------------- 6. bench.chat_samples


@pytest.mark.parametrize("which, expected", [
    ("missing", "no such directory; pass a saved chat model directory"),
    ("not_a_model", "not a saved chat model directory (no config.json)"),
])
def test_chat_samples_with_a_missing_model_dir_is_one_line(repo_root, tiny_model_dir, tmp_path, which, expected):
    (tmp_path / "not_a_model").mkdir()
    proc = subprocess.run([sys.executable, "-m", "bench.chat_samples", "--models", str(tiny_model_dir),
                           str(tmp_path / which)], capture_output=True, text=True, cwd=repo_root, timeout=300)
    err = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(err) == 1, proc.stderr[-2000:]
    assert err[0] == f"error: --models {tmp_path / which}: {expected}" + (
        " (e.g. outputs/quickstart, written by recipes/train.py)" if which == "missing" else
        "; pass the output directory of recipes/train.py"), err
    assert proc.stdout == ""
