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
from chathuman_hf.training.packed_preference import pack_call, unpack
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


def test_pack_call_lays_rows_end_to_end():
    input_ids = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0], [3, 4, 5, 6]])
    labels = torch.tensor([[-100, 6, 7, -100], [-100, 9, -100, -100], [-100, -100, 5, 6]])
    call = pack_call(input_ids, torch.tensor([3, 2, 4]), labels)
    assert call.input_ids.tolist() == [[5, 6, 7, 8, 9, 3, 4, 5, 6]]
    assert call.position_ids.tolist() == [[0, 1, 2, 0, 1, 0, 1, 2, 3]]
    assert call.shift_labels.tolist() == [[6, 7, -100, 9, -100, -100, 5, 6, -100]]
    rows = pack_call(input_ids, torch.tensor([3, 2, 4]), labels, capacity=5)  # next fit, padded with position 0
    assert rows.input_ids.tolist() == [[5, 6, 7, 8, 9], [3, 4, 5, 6, 0]]
    assert rows.position_ids.tolist() == [[0, 1, 2, 0, 1], [0, 1, 2, 3, 0]]
    scored = torch.tensor([[0.1, 0.2, 0.0, 0.3, 0.0, 0.0, 0.4, 0.5, 0.0]])
    assert unpack(scored, call).flatten().tolist() == pytest.approx([0.1, 0.2, 0, 0.3, 0, 0, 0, 0.4, 0.5])


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
    assert calls == [(1, sum(lengths))]  # one packed row, no padding
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
