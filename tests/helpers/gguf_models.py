"""Tiny models for the GGUF round trips: the quickstart GPT-2 (our trained SentencePiece-style tokenizer with byte
fallback and our template) and tiny Llama 3, Qwen3, Gemma 3 and EXAONE 4.0 configs with byte-level BPE tokenizers
trained from scratch and their families' templates; and Korean utterances to tokenize."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from tests.helpers.families import TINY_FAMILY_CONFIGS, make_family_model_dir
from tests.helpers.tiny_models import make_tiny_model_dir, sample_dialogues, sample_texts

GGUF_MODELS = ("gpt2", "llama", "qwen3", "gemma3", "exaone4")
TRANSFORMERS_GGUF_MODELS = ("gpt2", "llama", "qwen3", "gemma3")  # transformers' GGUF loader has no exaone4
# Random init at 0.02 leaves logits so flat (std ~0.1) that greedy picks between near-ties, which float summation order
# or q8_0's rounding alone flips: the reply comparisons in llama.cpp use models trained briefly (``train_gguf_model``).
DECISIVE_INIT = 0.02
_FAMILY = {"llama": "llama", "qwen3": "qwen2", "gemma3": "gemma3_text", "exaone4": "exaone4"}
# Real shapes where the runtimes assume them: Gemma 3's head_dim = query_pre_attn_scalar (256; llama.cpp and
# transformers' GGUF loader scale by it), and transformers' GGUF loader always uses Gemma 3's default layer mix
# (5 sliding : 1 global), so its Gemma 3 has 6 layers in that mix; llama.cpp reads the mix from the GGUF (2 layers,
# sliding + global). EXAONE 4.0 in llama.cpp: the 1.2B's layout, every layer global with RoPE (llama.cpp applies the
# sliding + NoPE mix only to the 32B's 64 layers: ``make_exaone4_32b_layout_dir`` builds that one).
_OVERRIDES = {"gemma3": {"num_hidden_layers": 6, "layer_types": None, "head_dim": 256}}
_LLAMA_CPP_OVERRIDES = {"gemma3": {"head_dim": 256},
                        "exaone4": {"sliding_window": None, "layer_types": ["full_attention", "full_attention"]}}


def make_gguf_model_dir(path: str | Path, name: str, *, for_llama_cpp: bool = False, seed: int = 0) -> Path:
    """A tiny saved model ``name`` (one of ``GGUF_MODELS``) under ``path``."""
    from transformers import AutoConfig, AutoModelForCausalLM

    path = Path(path)
    if name == "gpt2":
        return make_tiny_model_dir(path, seed=seed, initializer_range=DECISIVE_INIT)
    family = _FAMILY[name]
    make_family_model_dir(path, family, seed=seed)
    overrides = (_LLAMA_CPP_OVERRIDES if for_llama_cpp else _OVERRIDES).get(name, {})
    overrides = {"initializer_range": DECISIVE_INIT, **overrides}
    if overrides:
        config = AutoConfig.from_pretrained(path)
        settings = {**TINY_FAMILY_CONFIGS[family], **overrides}
        settings = {k: v for k, v in settings.items() if v is not None or k == "sliding_window"}
        new = AutoConfig.for_model("qwen3" if name == "qwen3" else config.model_type, vocab_size=config.vocab_size,
                                   bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
                                   pad_token_id=config.pad_token_id, **settings)
        for stale in path.glob("*.safetensors"):
            stale.unlink()
        torch.manual_seed(seed)
        AutoModelForCausalLM.from_config(new).save_pretrained(path)
    return path


def make_exaone4_32b_layout_dir(path: str | Path, *, sliding_window: int = 16, seed: int = 0) -> Path:
    """A tiny EXAONE 4.0 in the 32B's layout: 64 layers, 3 sliding-window (RoPE) : 1 global (NoPE), the only layer
    count llama.cpp runs that mix at (it keys the mix on ``n_layer == 64``); 32 wide, so ~0.6M parameters."""
    from transformers import AutoConfig, AutoModelForCausalLM

    path = Path(path)
    make_family_model_dir(path, "exaone4", seed=seed)
    old = AutoConfig.from_pretrained(path)
    settings = {**TINY_FAMILY_CONFIGS["exaone4"], "num_hidden_layers": 64, "sliding_window": sliding_window,
                "layer_types": None, "sliding_window_pattern": 4}
    config = AutoConfig.for_model("exaone4", vocab_size=old.vocab_size, bos_token_id=old.bos_token_id,
                                  eos_token_id=old.eos_token_id, pad_token_id=old.pad_token_id, **settings)
    for stale in path.glob("*.safetensors"):
        stale.unlink()
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    return path


REPO = Path(__file__).resolve().parents[2]
# A short run on ChatbotData turns the random tiny models into ones with a real model's peaked logits (the random
# ones' are flat, std ~0.1, so greedy picks between near-ties that any rounding flips). ~1-2 min each on 2 cores.
TRAIN_STEPS = {"gpt2": 600}  # GPT-2 from scratch still answers only "▁▁▁…" after 200; the others: 200


def train_gguf_model(path: str | Path, name: str, chatbot_csv: Path, *, steps: int | None = None) -> Path:
    """``make_gguf_model_dir(for_llama_cpp=True)`` fine-tuned on ChatbotData for ``steps`` steps with
    ``recipes/train.py`` (its own template, answers only, batch 32); GPT-2 from scratch with our template and a
    tokenizer trained on the data (the quickstart's tokenizer, trained on the embedded sample, collapses to ``▁``
    there). The trained model is ``path/trained``."""
    path = Path(path)
    out = path / "trained"
    steps = steps or TRAIN_STEPS.get(name, 200)
    if name == "gpt2":  # the ChatbotData recipe's way, smaller: our template, a tokenizer trained on the data
        model = ["--model_type", "gpt2", "--config_overrides", "n_layer=2,n_embd=64,n_head=2,n_positions=256",
                 "--train-tokenizer", "--vocab-size", "2000"]
    else:
        src = make_gguf_model_dir(path / "init", name, for_llama_cpp=True)
        model = ["--model_name_or_path", str(src), "--chat_template", "model"]
    cmd = [sys.executable, str(REPO / "recipes" / "train.py"), *model, "--data", str(chatbot_csv), "--label-mode",
           "-100+sys", "--max-length", "128", "--max_turns", "1", "--eval_split", "0", "--max_steps", str(steps),
           "--learning_rate", "3e-3", "--warmup_steps", "0.05", "--per_device_train_batch_size", "32",
           "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
           "--generation_prompts", "0", "--report_to", "none", "--disable_tqdm", "true", "--seed", "0",
           "--output_dir", str(out)]
    # One thread: a 32-wide model gains nothing from two, and two spinning OpenMP threads on a busy machine stall
    # (measured here at load ~18: the GPT-2 had not finished 200 steps in 17 min with two; 3-5 min with one).
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"training {name} failed:\n{done.stderr[-3000:]}")
    return out


def copy_model(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def korean_utterances(chatbot_csv: Path | None, n: int = 1000) -> list[str]:
    """``n`` Korean utterances: ChatbotData questions and answers (when present) and the sample data, plus lines with
    emoji, ㅋㅋ, mixed English, Hanja and spacing (characters the tokenizers never saw go to byte fallback)."""
    extra = ["ㅋㅋㅋㅋ 진짜 웃기다 😂😂", "오늘 meeting 몇 시야? 3시 OK?", "漢字도 읽을 수 있어?", "  앞뒤 공백  ",
             "줄\n바꿈\t탭", "이모지 🦙🚀✨ 테스트", "ㅎㅎ 고마워!!", "I love 김치찌개 so much", "ㅠㅠ 너무 슬퍼...",
             "카톡 보냈어 ㅇㅇ"]
    texts = list(extra)
    if chatbot_csv is not None and chatbot_csv.exists():
        with chatbot_csv.open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                texts += [row["Q"], row["A"]]
                if len(texts) >= 2 * n:
                    break
    texts += sample_texts()
    for dialogue in sample_dialogues():
        texts += [m["content"] for m in dialogue]
    texts = list(dict.fromkeys(t for t in texts if t))
    return texts[:n]


def chat_prompts(n: int = 20) -> list[list[dict[str, Any]]]:
    """``n`` one- or two-turn Korean chats ending with a user message (from the sample dialogues)."""
    chats: list[list[dict[str, Any]]] = []
    for dialogue in sample_dialogues():
        for k in range(0, len(dialogue), 2):
            if dialogue[k]["role"] == "user":
                chats.append([{"role": m["role"], "content": m["content"]} for m in dialogue[max(0, k - 2):k + 1]])
            if len(chats) == n:
                return chats
    return chats
