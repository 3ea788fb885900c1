"""DPO after a LoRA SFT run: the SFT adapter keeps training and the reference is the SFT model (base + SFT adapter,
a frozen copy of the adapter on the same base), not the bare base; the first loss is ln 2."""

from __future__ import annotations

import math

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
from trl import DPOConfig

from chathuman_hf.models.loading import load_chat_model
from chathuman_hf.tokens.preference_rows import tokenize_pairs
from chathuman_hf.tokens.tokenizer import load_tokenizer
from chathuman_hf.training.arguments import ChatArguments, ModelArguments
from chathuman_hf.training.preference import build_preference_trainer, describe_reference, reference_gap
from chathuman_hf.training.preference_steps import load_stage_model
from tests.helpers.tiny_models import make_tiny_llama_dir

PAIRS = [{"prompt": [{"role": "user", "content": q}], "chosen": [{"role": "assistant", "content": c}],
          "rejected": [{"role": "assistant", "content": r}]}
         for q, c, r in [("안녕하세요", "반가워요!", "몰라"), ("배고파", "밥 먹어요.", "싫어"),
                         ("잘 자", "좋은 꿈 꾸세요.", "ㅋㅋ"), ("심심해", "산책 어때요?", "그래")]]


def _sequence_logps(model, batch) -> torch.Tensor:
    """Summed completion log-probabilities with a plain forward (no TRL code)."""
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    labels, mask = batch["input_ids"][:, 1:], batch["completion_mask"][:, 1:]
    return (logits.log_softmax(-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1) * mask).sum(1)


def test_lora_reference_is_the_sft_adapter(tmp_path):
    base_dir = make_tiny_llama_dir(tmp_path / "base")
    torch.manual_seed(0)
    sft = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),  # an SFT adapter that moved off the base
                         LoraConfig(r=8, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    sft.peft_config["default"].base_model_name_or_path = str(base_dir)
    sft.save_pretrained(tmp_path / "sft")
    load_tokenizer(str(base_dir)).save_pretrained(tmp_path / "sft")

    tok = load_tokenizer(str(tmp_path / "sft"))
    args = ModelArguments(model_name_or_path=str(tmp_path / "sft"), use_peft=True)
    policy = load_stage_model(args, tok, ChatArguments())
    rows = tokenize_pairs(Dataset.from_list(PAIRS), tok, max_length=64)
    config = DPOConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, report_to="none",
                       max_length=64, gradient_checkpointing=False, use_cpu=True)
    trainer = build_preference_trainer(policy, tok, rows, None, config, "dpo")
    assert sorted(trainer.model.peft_config) == ["default", "ref"]  # two adapters on one base, no model copy
    assert trainer.ref_model is None
    assert describe_reference(trainer).startswith("the starting LoRA adapter")
    assert reference_gap(trainer) < 0.05

    batch = trainer.data_collator([rows[i] for i in range(4)])
    reference = torch.cat(trainer.compute_ref_log_probs(trainer.model, batch))
    merged, _ = load_chat_model(tmp_path / "sft", merge=True)
    bare = AutoModelForCausalLM.from_pretrained(base_dir)
    sft_gap = (reference - _sequence_logps(merged, batch)).abs().max()
    base_gap = (reference - _sequence_logps(bare, batch)).abs().max()
    assert sft_gap < 1e-2  # the SFT model's log-probs (TRL's fused head vs a plain forward)
    assert base_gap > 1.0  # not the bare base's
    with torch.no_grad():
        assert float(trainer.compute_loss(trainer.model, batch)) == pytest.approx(math.log(2), abs=2e-3)
    trainer.save_model(str(tmp_path / "saved"))
    assert not (tmp_path / "saved" / "ref").exists()  # only the trained adapter is written
    assert (tmp_path / "saved" / "adapter_model.safetensors").is_file()
