"""recipes/configs/chatbotdata.yaml parses, and a short real run on ChatbotData reports the conversation metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from chathuman_hf.training.parsing import parse_args


def test_chatbotdata_config_parses(repo_root):
    model, data, chat, train = parse_args(["--config", str(repo_root / "recipes/configs/chatbotdata.yaml")])
    assert model.from_scratch and model.train_tokenizer and data.data == ["ChatbotData.csv"]
    assert chat.conversation_metrics is True and chat.generation_prompts == 20 and chat.label_mode == "-100+sys"
    _, _, chat, _ = parse_args(["--config", str(repo_root / "recipes/configs/chatbotdata.yaml"),
                                "--conversation_metrics", "false", "--metric_for_best_model", "assistant_perplexity"])
    assert chat.conversation_metrics is False
    with pytest.raises(ValueError, match="eval_selection_hits_at_1 needs --conversation_metrics true"):
        parse_args(["--config", str(repo_root / "recipes/configs/chatbotdata.yaml"), "--conversation_metrics",
                    "false"])


@pytest.mark.slow
def test_chatbotdata_recipe_short_run(chatbot_csv, repo_root, tmp_path):
    pytest.importorskip("kiwipiepy")
    out = tmp_path / "chatbotdata"
    config = repo_root / "recipes/configs/chatbotdata.yaml"
    cmd = [sys.executable, str(repo_root / "recipes/train.py"), "--config", str(config),
           "--data", str(chatbot_csv), "--output_dir", str(out), "--max_steps", "40", "--eval_strategy", "steps",
           "--eval_steps", "20", "--save_strategy", "steps", "--save_steps", "20", "--selection_contexts", "40",
           "--generation_prompts", "10", "--disable_tqdm", "true"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, env=env, cwd=repo_root, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    evals = json.loads((out / "eval_results.json").read_text(encoding="utf-8"))
    for key in ("eval_selection_hits_at_1", "eval_selection_mrr", "eval_context_sensitivity", "eval_speech_agreement",
                "eval_distinct_1", "eval_distinct_2", "eval_repeat_rate"):
        assert key in evals, key
    assert evals["eval_selection_contexts"] == 40 and evals["eval_selection_candidates"] == 20
    assert 0 <= evals["eval_selection_hits_at_1"] <= 1
    if evals["eval_context_sensitivity"] < 0.5:  # 40 steps are not enough to stop collapsing: the warning says so
        assert "eval_context_sensitivity" in proc.stdout + proc.stderr
    assert "eval_selection_hits_at_1" in (out / "README.md").read_text(encoding="utf-8")
