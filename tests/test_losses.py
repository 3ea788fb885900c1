"""Losses: shift ≡ input, the seed's double shift refused, token weighting under gradient accumulation."""

from __future__ import annotations

import pytest
import torch
from transformers import Trainer, TrainingArguments

from chathuman_hf.models.build import build_model
from chathuman_hf.models.losses import (
    check_not_double_shifted,
    install_label_guard,
)
from chathuman_hf.tokens.collators import ChatCollator
from chathuman_hf.tokens.features import tokenize_dialogues
from tests.helpers.tiny_models import make_word_tokenizer

WORDS = ["안녕", "반가워", "밥", "먹었어", "응", "뭐", "김밥", "오늘", "날씨", "좋다", "그래"]


@pytest.fixture(scope="module")
def setup():
    tok = make_word_tokenizer(WORDS)
    rng = torch.Generator().manual_seed(0)
    dialogues = []
    for _ in range(6):
        msgs = []
        for _ in range(int(torch.randint(1, 4, (1,), generator=rng))):
            for role in ("user", "assistant"):
                k = int(torch.randint(1, 5, (1,), generator=rng))
                words = [WORDS[int(i)] for i in torch.randint(0, len(WORDS), (k,), generator=rng)]
                msgs.append({"role": role, "content": " ".join(words)})
        dialogues.append(msgs)
    ds = tokenize_dialogues(dialogues, tok, max_length=64)
    torch.manual_seed(0)
    model = build_model(model_type="gpt2", config_overrides="n_layer=2,n_embd=32,n_head=2,n_positions=64",
                        tokenizer=tok, guards=False).eval()
    return tok, ds, model


def test_shift_equals_input_loss(setup):
    """transformers' own loss: unshifted labels (shifted inside) and the shift mode's shift_labels agree."""
    tok, ds, model = setup
    rows = [ds[i] for i in range(len(ds))]
    b_in = ChatCollator(tok.pad_token_id, "input")(rows)
    b_sh = ChatCollator(tok.pad_token_id, "shift")(rows)
    assert torch.equal(b_sh["labels"][:, :-1], b_in["labels"][:, 1:])
    with torch.no_grad():
        loss_in = model(**b_in).loss  # the model's own shifting loss on unshifted labels
        loss_sh = model(**b_sh).loss  # shift_labels: transformers skips its own shift
        logits = model(input_ids=b_in["input_ids"], attention_mask=b_in["attention_mask"]).logits
    by_hand = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                                b_in["labels"][:, 1:].reshape(-1), ignore_index=-100)
    assert abs(loss_in.item() - loss_sh.item()) < 1e-5
    assert abs(loss_in.item() - by_hand.item()) < 1e-5


def test_seed_double_shift_is_refused(setup):
    tok, ds, model = setup
    b = ChatCollator(tok.pad_token_id, "shift")([ds[0], ds[1]])
    with pytest.raises(ValueError, match="already shifted"):
        check_not_double_shifted(b["input_ids"], b["labels"])
    handle = install_label_guard(model)
    try:
        with pytest.raises(ValueError, match="the seed's 'shift' bug"):
            model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"])
        # correct uses pass the guard
        model(**b)
        model(**ChatCollator(tok.pad_token_id, "input")([ds[0], ds[1]]))
        model(**ChatCollator(tok.pad_token_id, "-100")([ds[0], ds[1]]))
    finally:
        handle.remove()


def test_zero_label_batch_is_refused_by_the_collator(setup):
    tok, ds, _ = setup
    row = dict(ds[0])
    row["roles"] = [0] * len(row["roles"])  # no assistant token: nothing to train under -100
    with pytest.raises(ValueError, match="no label-carrying token"):
        ChatCollator(tok.pad_token_id, "-100")([row])


def test_num_items_in_batch_makes_accumulation_token_weighted(setup):
    tok, ds, model = setup
    rows = [ds[i] for i in range(4)]
    col = ChatCollator(tok.pad_token_id, "-100+sys")
    full = col(rows)
    halves = [col(rows[:1]), col(rows[1:])]
    n_total = sum(int((h["labels"][:, 1:] != -100).sum()) for h in halves)
    with torch.no_grad():
        whole = model(**full).loss
        parts = sum(model(**h, num_items_in_batch=torch.tensor(n_total)).loss for h in halves)
    assert abs(whole.item() - parts.item()) < 1e-5


@pytest.mark.parametrize("mode", ["shift", "-100"])
def test_trainer_step_with_the_models_own_loss(setup, tmp_path, mode):
    tok, ds, _ = setup
    model = build_model(model_type="gpt2", config_overrides="n_layer=1,n_embd=32,n_head=2,n_positions=64",
                        tokenizer=tok)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=3, max_steps=2,
                             gradient_accumulation_steps=2, report_to=[], remove_unused_columns=False,
                             use_cpu=True, logging_steps=1, save_strategy="no")
    trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=ChatCollator(tok.pad_token_id, mode))
    result = trainer.train()
    assert torch.isfinite(torch.tensor(result.training_loss))
