"""One real (tiny) run of recipes/train.py: the output directory a user gets, the pipeline test and the Hub dry run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, pipeline

from chathuman_hf.core.window import ChatWindow
from chathuman_hf.publishing.model_card import ModelCardInfo, render_model_card

SECRET = "hf_chathumanTESTsecret0123456789"
TINY = ["--model_type", "gpt2", "--config_overrides", "n_layer=2,n_embd=32,n_head=2,n_positions=128",
        "--train-tokenizer", "--vocab-size", "1000", "--max-length", "96", "--max-turns", "2"]


def recipe_env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("HF_TOKEN", None)
    return env


@pytest.fixture(scope="module")
def trained(tmp_path_factory, repo_root):
    out = tmp_path_factory.mktemp("run") / "tiny-chat"
    cmd = [sys.executable, str(repo_root / "recipes/train.py"), *TINY, "--output_dir", str(out),
           "--num_train_epochs", "2", "--per_device_train_batch_size", "16", "--learning_rate", "3.0e-03",
           "--save_total_limit", "1", "--generation_prompts", "3", "--logging_steps", "2", "--disable_tqdm", "true",
           "--push_to_hub", "--hub_model_id", "tester/tiny-chat"]
    proc = subprocess.run(cmd, env=dict(recipe_env(), HF_TOKEN=SECRET), capture_output=True, text=True, timeout=300,
                          cwd=repo_root)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc.stdout + proc.stderr


def test_output_directory_is_complete(trained):
    out, _ = trained
    for name in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                 "generation_config.json", "chat_window.json", "train_results.json", "eval_results.json",
                 "loss_curve.png", "README.md", "report.json", "run_args.json"):
        assert (out / name).is_file(), name
    assert (out / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tok = AutoTokenizer.from_pretrained(out)
    assert "<usr>" in tok.chat_template
    gen = GenerationConfig.from_pretrained(out)
    assert gen.eos_token_id == [tok.eos_token_id, tok.convert_tokens_to_ids("<usr>")]
    assert gen.pad_token_id == tok.pad_token_id and gen.repetition_penalty > 1.0 and gen.max_new_tokens > 0
    assert ChatWindow.from_pretrained(out) == ChatWindow(max_turns=2, max_length=96)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.get_input_embeddings().weight.shape[0] >= len(tok)


def test_results_checkpoints_and_best_model(trained):
    out, _ = trained
    train = json.loads((out / "train_results.json").read_text())
    evals = json.loads((out / "eval_results.json").read_text())
    assert train["train_examples"] > 0 and train["epoch"] == 2.0
    for key in ("eval_loss", "eval_perplexity", "eval_assistant_perplexity", "eval_tokens", "eval_assistant_tokens",
                "eval_gen_stopped_share", "eval_gen_empty_share", "eval_gen_distinct_2", "eval_gen_mean_length"):
        assert key in evals, key
    state = json.loads((out / "trainer_state.json").read_text())
    history = [e["eval_assistant_perplexity"] for e in state["log_history"] if "eval_assistant_perplexity" in e]
    assert len(history) == 2  # one per epoch (the state is saved before the final evaluation)
    assert state["best_metric"] == pytest.approx(min(history))
    assert evals["eval_assistant_perplexity"] == pytest.approx(state["best_metric"], rel=1e-6)
    checkpoints = sorted(p.name for p in out.glob("checkpoint-*"))
    assert 1 <= len(checkpoints) <= 2  # save_total_limit 1, plus the best one when it is older
    assert Path(state["best_model_checkpoint"]).name in checkpoints
    for ckpt in checkpoints:
        assert (out / ckpt / "chat_window.json").is_file()


def test_report_and_model_card(trained):
    out, logs = trained
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["dialogues"] > 100 and report["sources"]
    assert "trailing_user_turn" in report["dropped"]
    assert "kept dialogues per source" in logs  # the data report is printed too
    card = (out / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n") and "license: apache-2.0" in card
    for text in ("label mode: **input**", "sample_data/chat.jsonl", "eval_assistant_perplexity", "learning_rate",
                 'pipeline("text-generation", model="tester/tiny-chat")', "trailing_user_turn", "provenance"):
        assert text in card, text


def test_pipeline_answers_as_the_assistant(trained):
    out, _ = trained
    chat = pipeline("text-generation", model=str(out))
    result = chat([{"role": "user", "content": "안녕"}], max_new_tokens=12)
    conversation = result[0]["generated_text"]
    assert conversation[0] == {"role": "user", "content": "안녕"}
    assert conversation[-1]["role"] == "assistant"
    assert "<usr>" not in conversation[-1]["content"] and "<sys>" not in conversation[-1]["content"]


def test_hub_folder_is_ready_and_the_token_never_leaks(trained):
    out, logs = trained
    assert "ready to push to tester/tiny-chat" in logs
    assert SECRET not in logs
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    # what Trainer would upload: everything except checkpoint-* and _* folders; it loads on its own
    pushed = [p for p in out.iterdir() if not p.name.startswith(("checkpoint-", "_"))]
    assert {"model.safetensors", "README.md", "tokenizer.json", "chat_window.json"} <= {p.name for p in pushed}


def test_model_card_inherits_the_kogpt2_license():
    info = ModelCardInfo(
        model_name="kogpt2-chat", base_model="skt/kogpt2-base-v2", model_config={}, label_mode="input",
        chat_options={"max_length": 256, "max_turns": 3}, cleaning={}, report={"dialogues": 2, "sources": {
            "/data/ChatbotData.csv": 2}, "files": {"/data/ChatbotData.csv": {"format": "qa_table"}}},
        hyperparameters={"learning_rate": 5.0e-05}, eval_metrics={"eval_assistant_perplexity": 12.5},
    )
    card = render_model_card(info)
    assert "license: cc-by-nc-sa-4.0" in card and "base_model: skt/kogpt2-base-v2" in card
    assert "songys/Chatbot_data (MIT)" in card and "| eval_assistant_perplexity | 12.5 |" in card


def test_model_card_names_the_template_the_model_was_trained_with():
    common = dict(model_name="qwen-chat", base_model=None, model_config={}, label_mode="last_sys",
                  chat_options={"max_length": 256, "max_turns": 3}, cleaning={}, report={}, hyperparameters={})
    ours = render_model_card(ModelCardInfo(**common))
    own = render_model_card(ModelCardInfo(**common, chathuman_template=False))
    assert "`<usr>user<sys>assistant</s>`" in ours and "a new `<usr>`" in ours
    assert "<usr>" not in own and "the chat template it was trained with" in own


def test_epoch_table_groups_logs_by_epoch():
    from chathuman_hf.publishing.model_card import epoch_table

    history = [{"loss": 3.0, "epoch": 0.5}, {"loss": 2.0, "epoch": 1.0},
               {"eval_loss": 2.5, "eval_assistant_perplexity": 10.0, "epoch": 1.0}, {"loss": 1.0, "epoch": 2.0},
               {"eval_loss": 2.0, "eval_assistant_perplexity": 8.0, "epoch": 2.0}]
    assert epoch_table(history) == [
        {"epoch": 1, "train_loss": 2.5, "eval_loss": 2.5, "eval_assistant_perplexity": 10.0},
        {"epoch": 2, "train_loss": 1.0, "eval_loss": 2.0, "eval_assistant_perplexity": 8.0},
    ]


def test_weights_modes_warnings_and_what_to_run_next(trained):
    out, log = trained
    mask = os.umask(0)
    os.umask(mask)
    weights = [out / "model.safetensors", *out.glob("checkpoint-*/model.safetensors")]
    assert len(weights) >= 2
    assert {oct(p.stat().st_mode & 0o777) for p in weights} == {oct(0o666 & ~mask)}  # like every other file
    assert f"python recipes/chat.py --model {out}" in log and f"python recipes/serve.py --model {out}" in log
    assert "pipeline('text-generation'" in log
    filled = len(AutoTokenizer.from_pretrained(out))
    assert ("--vocab-size 1000 was asked; the training text only fills" in log) == (filled < 1000)
    for alarming in ("got 50256", "missing keys", "lm_head.weight", "kernels-community", "loss_type=None"):
        assert alarming not in log, alarming
