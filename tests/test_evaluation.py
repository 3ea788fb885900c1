"""Fair evaluation: token-weighted perplexity (batch size / packing / label mode invariant) and generation health."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer

from chathuman_hf.data.options import DataArguments
from chathuman_hf.evaluation.perplexity import generate_replies, generation_health, load_metric, summarize_stats
from chathuman_hf.tokens.collators import IGNORE_INDEX, ChatCollator
from chathuman_hf.tokens.features import tokenize_dialogues
from chathuman_hf.tokens.tokenizer import prepare_tokenizer
from chathuman_hf.training.arguments import ChatArguments
from chathuman_hf.training.build import evaluate_saved_model
from chathuman_hf.training.data_steps import load_data

METRIC_KEYS = ("eval_loss", "eval_perplexity", "eval_assistant_loss", "eval_assistant_perplexity")


def run_eval(model_dir, **chat):
    chat_args = ChatArguments(generation_prompts=0, **{k: v for k, v in chat.items() if k != "batch_size"})
    return evaluate_saved_model(model_dir, DataArguments(), chat_args, batch_size=chat.get("batch_size", 8))


def test_metric_modules_load_offline():
    health = load_metric("generation_health")
    assert health.compute(predictions=[[5, 6, 7], [], [5, 6, 5, 6]], references=[1, 1, 0]) == {
        "stopped_share": 2 / 3,
        "empty_share": 1 / 3,
        "distinct_2": 3 / 5,
        "mean_length": 7 / 3,
    }
    ppl = load_metric("token_perplexity")
    assert ppl.compute(predictions=[2.0, 4.0], references=[1, 3]) == {"loss": 1.5, "perplexity": math.exp(1.5),
                                                                     "tokens": 4}


def test_summarize_stats_is_token_weighted():
    # two batches: 1 token with loss 3.0, and 3 tokens with total loss 3.0 -> token mean 1.5 (batch-mean mean: 2.0)
    stats = torch.tensor([[3.0, 1.0, 2.0, 1.0], [3.0, 3.0, 1.0, 1.0]], dtype=torch.float64)
    out = summarize_stats(stats)
    assert out["loss"] == 1.5 and out["tokens"] == 4
    assert out["assistant_loss"] == 1.5 and out["assistant_tokens"] == 2
    assert out["perplexity"] == pytest.approx(math.exp(1.5))


def test_same_numbers_for_batch_sizes_and_packing(tiny_model_dir):
    one = run_eval(tiny_model_dir, batch_size=1)
    eight = run_eval(tiny_model_dir, batch_size=8)
    packed = run_eval(tiny_model_dir, batch_size=8, packing=True)
    assert one["eval_tokens"] == eight["eval_tokens"] == packed["eval_tokens"] > 0
    assert one["eval_assistant_tokens"] == eight["eval_assistant_tokens"] == packed["eval_assistant_tokens"] > 0
    for key in METRIC_KEYS:
        assert eight[key] == pytest.approx(one[key], rel=1e-6), key
        assert packed[key] == pytest.approx(one[key], rel=1e-5), key
    assert one["perplexity"] == one["eval_perplexity"]


def test_assistant_perplexity_is_the_same_in_every_label_mode(tiny_model_dir):
    results = {mode: run_eval(tiny_model_dir, label_mode=mode) for mode in ("input", "-100", "-100+sys", "shift")}
    base = results["input"]["eval_assistant_loss"]
    for mode, res in results.items():
        assert res["eval_assistant_loss"] == pytest.approx(base, rel=1e-6), mode
    assert results["shift"]["eval_loss"] == pytest.approx(results["input"]["eval_loss"], rel=1e-6)
    assert results["-100"]["eval_tokens"] < results["-100+sys"]["eval_tokens"] < results["input"]["eval_tokens"]


def test_assistant_loss_matches_a_per_dialogue_reference(tiny_model_dir):
    """The metric equals sum(token NLL)/count over assistant tokens, computed one dialogue at a time."""
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    data = load_data(DataArguments(), ChatArguments())
    examples = tokenize_dialogues(data.eval_dialogues, tokenizer, max_length=256)
    collate = ChatCollator(tokenizer.pad_token_id, "-100+sys")
    total, count, batch_means = 0.0, 0, []
    with torch.no_grad():
        for ex in examples:
            batch = collate([ex])
            logits = model(input_ids=batch["input_ids"]).logits[0, :-1]
            labels = batch["labels"][0, 1:]
            nll = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="sum").item()
            n = int((labels != IGNORE_INDEX).sum())
            total, count = total + nll, count + n
            batch_means.append(nll / n)
    result = run_eval(tiny_model_dir, batch_size=1)
    assert result["eval_assistant_tokens"] == count
    assert result["eval_assistant_loss"] == pytest.approx(total / count, rel=1e-5)
    # the mean of per-dialogue means is a different number: the metric is really token-weighted
    assert sum(batch_means) / len(batch_means) != pytest.approx(total / count, rel=1e-5)


def test_generation_health_detects_an_eos_only_model(tiny_model_dir):
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    prompts = [[{"role": "user", "content": "안녕"}], [{"role": "user", "content": "오늘 뭐 먹지?"}]]
    replies, stopped, _ = generate_replies(model, tokenizer, prompts, max_new_tokens=6)
    assert len(replies) == 2 and all(len(r) <= 6 for r in replies)
    assert all(s == 0 or len(r) < 6 for r, s in zip(replies, stopped, strict=True))
    # make the final layer norm output point at the eos embedding: the model then only emits eos, like seed run 3
    eos = tokenizer.eos_token_id
    with torch.no_grad():
        direction = model.get_input_embeddings().weight[eos].clone()
        model.get_input_embeddings().weight[eos] *= 10
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(direction * 100)
    replies, stopped, texts = generate_replies(model, tokenizer, prompts, max_new_tokens=6)
    assert replies == [[], []] and stopped == [1, 1] and texts == ["", ""]
    assert generation_health(replies, stopped) == {
        "gen_stopped_share": 1.0,
        "gen_empty_share": 1.0,
        "gen_distinct_2": 0.0,
        "gen_mean_length": 0.0,
    }


def test_evaluate_recipe_writes_json(tiny_model_dir, tmp_path, repo_root):
    import json
    import os
    import subprocess
    import sys

    out = tmp_path / "metrics.json"
    cmd = [sys.executable, str(repo_root / "recipes/evaluate_model.py"), "--model", str(tiny_model_dir),
           "--label-mode",
           "-100", "--packing", "--generation_prompts", "2", "--selection_contexts", "5", "--output", str(out)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, env=env, cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(out.read_text(encoding="utf-8"))
    assert metrics["label_mode"] == "last_sys" and metrics["packing"] is True
    for key in ("eval_loss", "perplexity", "eval_assistant_perplexity", "eval_tokens", "eval_assistant_tokens",
                "eval_gen_empty_share", "eval_selection_hits_at_1", "eval_selection_mrr", "eval_context_sensitivity",
                "eval_speech_agreement", "eval_distinct_2", "eval_repeat_rate"):
        assert key in metrics, key
    assert metrics == json.loads(proc.stdout[proc.stdout.index('{\n  "model"'):])
    assert metrics["eval_assistant_loss"] == pytest.approx(run_eval(tiny_model_dir)["eval_assistant_loss"], rel=1e-5)
