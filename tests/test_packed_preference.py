"""Padding-free DPO (``training/packed_preference``): our packed forwards give TRL's padded ``DPOTrainer`` loss,
metrics and gradients on the same pairs (a tiny GPT-2 and a tiny Llama, replies of different lengths)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from peft import PromptTuningConfig, get_peft_model
from transformers import AutoModelForCausalLM
from trl import DPOConfig, DPOTrainer

from chathuman_hf.tokens.preference_rows import tokenize_pairs
from chathuman_hf.tokens.tokenizer import load_tokenizer
from chathuman_hf.training.pair_layout import pair_layout, unpack
from chathuman_hf.training.preference import ChatDPOTrainer
from tests.helpers.tiny_models import make_tiny_llama_dir, make_tiny_model_dir


def _pair(prompt: list[str], chosen: str, rejected: str) -> dict:
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(prompt)]
    return {"prompt": turns, "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}]}


PAIRS = [
    _pair(["안녕하세요"], "반가워요! 오늘 하루 어땠어요?", "몰라"),
    _pair(["오늘 날씨 어때?"], "맑아요.", "비가 와요 비가 와요 비가 와요 우산 챙겨요"),
    _pair(["배고파", "뭐 먹을래?", "라면 먹을까"], "좋아요, 같이 먹어요.", "싫어"),
    _pair(["잘 자"], "좋은 꿈 꾸세요.", "ㅋㅋ"),
]
MAKERS = {"gpt2": make_tiny_model_dir, "llama": make_tiny_llama_dir}


@pytest.fixture(scope="module", params=list(MAKERS))
def model_dirs(request, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp(f"packed_{request.param}")
    make = MAKERS[request.param]
    return make(root / "policy", seed=0), make(root / "ref", seed=1)


# two pairs: chosen rows 0-1 and rejected rows 2-3 (prompts [1, 2] and [5]), right-padded with 0, labels -100
# outside the replies, as TRL's collator and _compute_loss make them
IDS = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 0], [1, 2, 8, 0], [5, 9, 9, 9]])
LABELS = torch.tensor([[-100, -100, 3, 4], [-100, 6, 7, -100], [-100, -100, 8, -100], [-100, 9, 9, 9]])
LENGTHS = torch.tensor([4, 3, 3, 4])


def test_pair_layout_shares_each_prompt():
    layout = pair_layout(IDS, LENGTHS, LABELS, share_prompt=True, capacity=13)
    # [prompt, chosen, last prompt token again, rejected] per pair, the longer pair first
    assert layout.input_ids.tolist() == [[5, 6, 7, 5, 9, 9, 9, 1, 2, 3, 4, 2, 8]]
    assert layout.position_ids.tolist() == [[0, 1, 2, 0, 1, 2, 3, 0, 1, 2, 3, 1, 2]]
    assert layout.shift_labels.tolist() == [[6, 7, -100, 9, 9, 9, -100, -100, 3, 4, -100, 8, -100]]
    keep = layout.keep[0].int().tolist()
    assert keep[2] == [1, 1, 1] + [0] * 10  # a chosen token: the prompt and the chosen reply
    assert keep[4] == [0, 0, 0, 1, 1] + [0] * 8  # a rejected token: its copy of the prompt's last token, itself
    assert keep[12] == [0] * 7 + [1, 0, 0, 0, 1, 1]  # the other pair: prompt without its last token, copy, itself
    values = torch.arange(13.0)[None]
    assert unpack(values, layout).tolist() == [[0, 8, 9], [0, 1, 0], [0, 11, 0], [3, 4, 5]]


def test_pair_layout_rows_of_their_own():
    layout = pair_layout(IDS, LENGTHS, LABELS, share_prompt=False, capacity=8)  # best fit in rows of 8
    assert layout.input_ids.tolist() == [[1, 2, 3, 4, 5, 9, 9, 9], [5, 6, 7, 1, 2, 8, 0, 0]]
    assert layout.position_ids.tolist() == [[0, 1, 2, 3, 0, 1, 2, 3], [0, 1, 2, 0, 1, 2, 0, 0]]
    assert layout.keep is None  # transformers separates the sequences from the restarting positions
    values = torch.arange(16.0)[None]
    assert unpack(values, layout).tolist() == [[0, 1, 2], [8, 9, 0], [0, 12, 0], [4, 5, 6]]


def _config(tmp_path: Path, losses: list[str], weights: list[float] | None = None) -> DPOConfig:
    return DPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, report_to="none", max_length=128,
                     beta=0.1, loss_type=losses, loss_weights=weights, gradient_checkpointing=False, use_cpu=True,
                     bf16=False)  # TRL's default bf16 autocast would round both runs differently on a CPU


def _step(trainer) -> tuple[float, dict[str, float], torch.Tensor]:
    """Loss, logged metrics and gradients of one training forward/backward on all the pairs as one batch."""
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])
    trainer.model.train()
    trainer.model.zero_grad()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in trainer.model.parameters() if p.grad is not None])
    return float(loss.detach()), {k: v[-1] for k, v in trainer._metrics["train"].items()}, grads


@pytest.mark.parametrize(("losses", "weights"),
                         [(["sigmoid", "sft"], [1.0, 0.5]), pytest.param(["ipo"], None, marks=pytest.mark.slow)])
def test_packed_dpo_equals_trl(model_dirs, tmp_path, losses, weights):
    policy_dir, ref_dir = model_dirs
    tok = load_tokenizer(str(policy_dir))
    config = _config(tmp_path, losses, weights)
    ours = ChatDPOTrainer(model=AutoModelForCausalLM.from_pretrained(policy_dir), processing_class=tok,
                          ref_model=AutoModelForCausalLM.from_pretrained(ref_dir), args=config,
                          train_dataset=tokenize_pairs(Dataset.from_list(PAIRS), tok, max_length=128))
    theirs = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(policy_dir), processing_class=tok,
                        ref_model=AutoModelForCausalLM.from_pretrained(ref_dir), args=config,
                        train_dataset=Dataset.from_list(PAIRS))
    assert ours.padding_free_off is None
    for column in ("prompt_ids", "chosen_ids", "rejected_ids"):  # the same token ids (our template)
        assert ours.train_dataset[column] == theirs.train_dataset[column]
    lengths = [len(r["prompt_ids"]) + len(r[c]) for r in ours.train_dataset for c in ("chosen_ids", "rejected_ids")]
    assert len(set(lengths)) >= 6  # rows of different lengths: TRL pads them, ours packs them

    calls = []
    ours.model.base_model.register_forward_hook(  # the backbone under TRL's fused head
        lambda module, args, kwargs, out: calls.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)
    loss, metrics, grads = _step(ours)
    assert ours.shares_prompt
    prompts = sum(len(r["prompt_ids"]) - 1 for r in ours.train_dataset)
    assert len(calls) == 1 and calls[0][0] * calls[0][1] >= sum(lengths) - prompts  # each prompt computed once
    assert calls[0][0] * calls[0][1] < len(lengths) * max(lengths)  # fewer positions than TRL's padded rows
    their_loss, their_metrics, their_grads = _step(theirs)
    assert loss == pytest.approx(their_loss, abs=1e-5)
    assert loss != pytest.approx({"ipo": 25.0}.get(losses[0], math.log(2)), abs=1e-3)  # a reference off the policy
    assert metrics.keys() == their_metrics.keys()
    for name in ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
                 "logps/rejected", "entropy", "logits/chosen", "logits/rejected", "mean_token_accuracy"):
        assert metrics[name] == pytest.approx(their_metrics[name], abs=1e-5), name
    assert metrics["num_tokens"] == their_metrics["num_tokens"] == sum(lengths)
    assert grads.shape == their_grads.shape
    assert float((grads - their_grads).abs().max()) < 1e-5


def test_step0_loss_is_ln2_and_off_switch(model_dirs, tmp_path):
    policy_dir, _ = model_dirs
    tok = load_tokenizer(str(policy_dir))
    rows = tokenize_pairs(Dataset.from_list(PAIRS), tok, max_length=128)
    losses = {}
    for padding_free in (True, False):
        trainer = ChatDPOTrainer(model=AutoModelForCausalLM.from_pretrained(policy_dir), processing_class=tok,
                                 args=_config(tmp_path, ["sigmoid"]), train_dataset=rows, padding_free=padding_free)
        losses[padding_free] = _step(trainer)[0]
    assert trainer.padding_free_off == "--padding_free false"
    assert losses[True] == pytest.approx(0.693147, abs=1e-5)  # policy == reference (a frozen copy): ln 2
    assert losses[True] == pytest.approx(losses[False], abs=1e-6)


def test_prompt_learning_peft_stays_padded(tmp_path):
    base = make_tiny_llama_dir(tmp_path / "base")
    tok = load_tokenizer(str(base))
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=2))
    trainer = ChatDPOTrainer(model=model, processing_class=tok, args=_config(tmp_path, ["sigmoid"]),
                             train_dataset=tokenize_pairs(Dataset.from_list(PAIRS), tok, max_length=128))
    assert trainer.padding_free_off == "prompt-learning PEFT adds virtual tokens to each row"
