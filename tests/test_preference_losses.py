"""The preference stage's losses are TRL's: our trainers on our token rows vs TRL 1.16's trainers on the same
conversational pairs (a tiny Llama with Llama 3.2's real template, where TRL's tokenization gives the same ids)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM
from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer
from trl.experimental.orpo import ORPOConfig, ORPOTrainer

from chathuman_hf.tokens.preference_rows import tokenize_pairs, tokenize_ratings, unpair
from chathuman_hf.training.preference import ChatDPOTrainer, ChatKTOTrainer, ChatORPOTrainer
from tests.helpers.real_templates import make_real_template_model_dir, real_template_tokenizer

TEMPLATE = "llama3_2"


def _msg(role: str, text: str) -> list[dict]:
    return [{"role": role, "content": text}]


PAIRS = [
    {"prompt": _msg("user", "안녕하세요"), "chosen": _msg("assistant", "반가워요!"),
     "rejected": _msg("assistant", "몰라")},
    {"prompt": _msg("user", "오늘 날씨 어때?"), "chosen": _msg("assistant", "맑고 따뜻해요."),
     "rejected": _msg("assistant", "비가 와요 비가 와요 비가 와요")},
    {"prompt": [*_msg("user", "배고파"), *_msg("assistant", "뭐 먹을래?"), *_msg("user", "라면")],
     "chosen": _msg("assistant", "좋아요, 같이 먹어요."), "rejected": _msg("assistant", "싫어")},
    {"prompt": _msg("user", "잘 자"), "chosen": _msg("assistant", "좋은 꿈 꾸세요."),
     "rejected": _msg("assistant", "ㅋㅋ")},
]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pref_models")
    return (make_real_template_model_dir(root / "policy", TEMPLATE, seed=0),
            make_real_template_model_dir(root / "ref", TEMPLATE, seed=1))


def _load(path: Path):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(path)


def _common(tmp_path: Path) -> dict:
    return {"output_dir": str(tmp_path), "per_device_train_batch_size": 4, "report_to": "none", "max_length": 256,
            "gradient_checkpointing": False, "use_cpu": True,
            "bf16": False}  # TRL's default bf16 autocast rounds padded and packed (our DPO) forwards differently


def _batch_loss(trainer) -> float:
    rows = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    batch = trainer.data_collator(rows)
    with torch.no_grad():
        return float(trainer.compute_loss(trainer.model, batch))


@pytest.mark.parametrize(("loss_type", "expected"),
                         [("sigmoid", 0.693147), pytest.param("ipo", 0.0, marks=pytest.mark.slow)])
def test_dpo_loss_equals_trl(models, tmp_path, loss_type, expected):
    policy_dir, ref_dir = models
    tok = real_template_tokenizer(TEMPLATE)
    config = DPOConfig(**_common(tmp_path), beta=0.1, loss_type=[loss_type])
    ours = ChatDPOTrainer(model=_load(policy_dir), ref_model=_load(ref_dir), args=config, processing_class=tok,
                          train_dataset=tokenize_pairs(Dataset.from_list(PAIRS), tok, max_length=256))
    theirs = DPOTrainer(model=_load(policy_dir), ref_model=_load(ref_dir), args=config, processing_class=tok,
                        train_dataset=Dataset.from_list(PAIRS))
    assert len(ours.train_dataset) == 4  # the multi-turn row included
    for column in ("prompt_ids", "chosen_ids", "rejected_ids"):
        assert ours.train_dataset[column] == theirs.train_dataset[column]
    loss = _batch_loss(ours)
    assert abs(loss - _batch_loss(theirs)) < 1e-5
    assert abs(loss - expected) > 1e-3  # a reference that is not the policy: not the trivial step-0 value
    # with the policy as its own reference (the start of a run), the DPO loss is ln 2 and IPO's (0 - 1/(2β))² = 25;
    # TRL's fused LM head gives the policy (which also computes entropy etc.) per-token log-probs ~1e-3 off the
    # reference's on the same weights, hence the tolerance
    same = ChatDPOTrainer(model=_load(policy_dir), ref_model=_load(policy_dir), args=config, processing_class=tok,
                          train_dataset=ours.train_dataset)
    assert _batch_loss(same) == pytest.approx(math.log(2) if loss_type == "sigmoid" else 25.0, abs=2e-3)


def test_kto_loss_equals_trl(models, tmp_path):
    policy_dir, ref_dir = models
    tok = real_template_tokenizer(TEMPLATE)
    ratings = unpair(Dataset.from_list(PAIRS))
    assert ratings["label"] == [True, False] * 4
    config = KTOConfig(**_common(tmp_path), beta=0.1, desirable_weight=1.0, undesirable_weight=1.0)
    ours = ChatKTOTrainer(model=_load(policy_dir), ref_model=_load(ref_dir), args=config, processing_class=tok,
                          train_dataset=tokenize_ratings(ratings, tok, max_length=256))
    theirs = KTOTrainer(model=_load(policy_dir), ref_model=_load(ref_dir), args=config, processing_class=tok,
                        train_dataset=ratings)
    for column in ("prompt_ids", "completion_ids", "KL_completion_ids", "label"):
        assert ours.train_dataset[column] == theirs.train_dataset[column]
    loss = _batch_loss(ours)
    assert abs(loss - _batch_loss(theirs)) < 1e-5
    assert abs(loss - 0.5) > 1e-3  # KTO's loss is 0.5 when policy == reference


def test_orpo_loss_equals_trl(models, tmp_path):
    policy_dir, _ = models
    tok = real_template_tokenizer(TEMPLATE)
    tok.pad_token = tok.eos_token
    config = ORPOConfig(**_common(tmp_path), beta=0.1, remove_unused_columns=False)
    ours = ChatORPOTrainer(model=_load(policy_dir), args=config, processing_class=tok,
                           train_dataset=tokenize_pairs(Dataset.from_list(PAIRS), tok, max_length=256))
    theirs = ORPOTrainer(model=_load(policy_dir), args=config, processing_class=tok,
                         train_dataset=Dataset.from_list(PAIRS))
    for column in ("chosen_input_ids", "chosen_labels", "rejected_input_ids", "rejected_labels"):
        assert ours.train_dataset[column] == theirs.train_dataset[column]
    loss = _batch_loss(ours)
    assert abs(loss - _batch_loss(theirs)) < 1e-5
    assert 5.0 < loss < 8.0  # ~ln(vocab 600) = 6.4: an untrained model's NLL plus the odds-ratio term
