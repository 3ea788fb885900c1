"""Exact packing: packed ≡ unpacked (logits and token-weighted loss) in every label mode, packer, padding share."""

from __future__ import annotations

import random

import pytest
import torch
from transformers import Trainer, TrainingArguments

from chathuman_hf.evaluation.perplexity import token_nll_sums
from chathuman_hf.models.build import build_model
from chathuman_hf.tokens.collators import ChatCollator, LabelMode
from chathuman_hf.tokens.features import tokenize_dialogues
from chathuman_hf.tokens.packed_attention import check_packing_supported, packing_problem
from chathuman_hf.tokens.packing import (
    best_fit_bins,
    pack_dataset,
    packed_rows_per_step,
    padding_report,
    padding_share,
)
from tests.helpers.families import TINY_FAMILY_CONFIGS
from tests.helpers.tiny_models import make_word_tokenizer

WORDS = ["안녕", "반가워", "밥", "먹었어", "응", "뭐", "김밥", "오늘", "날씨", "좋다", "그래", "내일", "보자"]
MAX_LEN = 48


def random_dialogues(n: int, seed: int) -> list[list[dict]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        msgs = []
        if rng.random() < 0.2:
            msgs.append({"role": "system", "content": " ".join(rng.choices(WORDS, k=rng.randint(1, 3)))})
        for _ in range(rng.randint(1, 3)):
            for role in ("user", "assistant"):
                msgs.append({"role": role, "content": " ".join(rng.choices(WORDS, k=rng.randint(1, 5)))})
        out.append(msgs)
    return out


@pytest.fixture(scope="module")
def data():
    tok = make_word_tokenizer(WORDS)
    ds = tokenize_dialogues(random_dialogues(16, seed=3), tok, max_length=MAX_LEN)
    return tok, ds, pack_dataset(ds, max_length=MAX_LEN, seed=1)


def test_best_fit_bins_literal():
    # visit order 0..4 with lengths 5, 4, 3, 2, 6 and capacity 8: 3 goes to the tightest bin that fits
    assert best_fit_bins([5, 4, 3, 2, 6], 8, [0, 1, 2, 3, 4]) == [[0, 2], [1, 3], [4]]
    with pytest.raises(ValueError, match="Example 1 has 9 tokens > max_length=8"):
        best_fit_bins([1, 9], 8, [0, 1])


def test_pack_dataset_keeps_every_dialogue_whole(data):
    _, ds, packed = data
    assert all(sum(r["seq_lengths"]) == r["length"] == len(r["input_ids"]) <= MAX_LEN for r in packed)
    pieces = []
    for r in packed:
        start = 0
        for n in r["seq_lengths"]:
            pieces.append(tuple(r["input_ids"][start : start + n]))
            start += n
    assert sorted(pieces) == sorted(tuple(x) for x in ds["input_ids"])
    assert len(packed) < len(ds)
    assert pack_dataset(ds, max_length=MAX_LEN, seed=1)["input_ids"] == packed["input_ids"]
    assert pack_dataset(ds, max_length=MAX_LEN, seed=2)["input_ids"] != packed["input_ids"]


def _per_example_logits(logits, batch, rows, packed):
    """Map each example (by its token ids) to its logits, slicing packed rows by seq_lengths."""
    out = {}
    for b, row in enumerate(rows):
        start = 0
        for n in row["seq_lengths"] if packed else [len(row["input_ids"])]:
            key = tuple(batch["input_ids"][b, start : start + n].tolist())
            out.setdefault(key, logits[b, start : start + n])
            start += n
    return out


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("family", sorted(TINY_FAMILY_CONFIGS))
def test_packed_equals_unpacked_for_every_family_and_label_mode(data, family, attn):
    # gemma3_text/exaone4 have a 16-token sliding window, shorter than a 48-token packed row: a hand-built 4-D
    # block mask replaced it (logits off by 0.25/0.12); transformers' own packed-sequence support keeps it.
    tok, ds, packed = data
    torch.manual_seed(0)
    model = build_model(model_type=family, tokenizer=tok, config_overrides={
        **TINY_FAMILY_CONFIGS[family], "attn_implementation": attn}).eval()
    assert model.config._attn_implementation == attn
    rows_u = [ds[i] for i in range(len(ds))]
    rows_p = [packed[i] for i in range(len(packed))]
    assert max(r["length"] for r in rows_p) > 16 and max(r["length"] for r in rows_u) > 16
    logits = {}
    for mode in LabelMode:
        col = ChatCollator(tok.pad_token_id, mode)
        bu, bp = col(rows_u), col(rows_p)
        assert "attention_mask" not in bp
        if not logits:
            with torch.no_grad():
                logits["u"] = model(input_ids=bu["input_ids"], attention_mask=bu["attention_mask"]).logits
                logits["p"] = model(**{k: bp[k] for k in ("input_ids", "position_ids")}).logits
        lu, lp = logits["u"], logits["p"]
        su, nu = (x.sum() for x in token_nll_sums(lu, bu["labels"], pre_shifted=mode.pre_shifted))
        sp, np_ = (x.sum() for x in token_nll_sums(lp, bp["labels"], pre_shifted=mode.pre_shifted))
        assert nu == np_ > 0
        assert abs((su / nu).item() - (sp / np_).item()) < 1e-4, mode
    eu = _per_example_logits(lu, bu, rows_u, packed=False)
    ep = _per_example_logits(lp, bp, rows_p, packed=True)
    assert eu.keys() == ep.keys()
    assert max((eu[k] - ep[k]).abs().max().item() for k in eu) < 1e-4


def test_packing_refused_where_packed_rows_would_leak(data):
    tok, _, packed = data
    model = build_model(model_type="gemma3_text", tokenizer=tok, config_overrides=TINY_FAMILY_CONFIGS["gemma3_text"])
    check_packing_supported(model)
    with pytest.raises(ValueError, match=r"^--packing needs --use_cache false: with a cache"):
        check_packing_supported(model, use_cache=True)
    # what --use_cache true would do: the cache turns transformers' packed-sequence detection off
    row = max(packed, key=lambda r: len(r["seq_lengths"]))
    batch = ChatCollator(tok.pad_token_id, "input")([row])
    model.eval()
    with torch.no_grad():
        apart = model(**{k: batch[k] for k in ("input_ids", "position_ids")}).logits
        leaked = model(**{k: batch[k] for k in ("input_ids", "position_ids")}, use_cache=True).logits
    assert len(row["seq_lengths"]) > 1 and (apart - leaked).abs().max().item() > 1e-3
    model.config._attn_implementation = "paged|eager"
    assert packing_problem(model) == (
        "--packing needs an attention implementation that separates packed sequences (eager, sdpa, "
        "flash_attention_*); this model uses 'paged|eager': load it with attn_implementation='sdpa' or drop --packing")
    assert packing_problem(torch.nn.Linear(2, 2)) == (  # stands in for remote code that builds its own masks
        "--packing needs transformers' packed-sequence support, but Linear (torch.nn.modules.linear) builds its own "
        "attention mask (remote or old modeling code): drop --packing")


def test_packed_batches_train_under_trainer(data, tmp_path):
    tok, _, packed = data
    model = build_model(model_type="gpt2", tokenizer=tok,
                        config_overrides={"n_layer": 1, "n_embd": 32, "n_head": 2, "n_positions": MAX_LEN})
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=2, max_steps=2, report_to=[],
                             remove_unused_columns=False, use_cpu=True, save_strategy="no")
    trainer = Trainer(model=model, args=args, train_dataset=packed,
                      data_collator=ChatCollator(tok.pad_token_id, "-100+sys"))
    assert torch.isfinite(torch.tensor(trainer.train().training_loss))


def test_packed_rows_run_in_half_precision(data):
    tok, _, packed = data
    model = build_model(model_type="gpt2", tokenizer=tok, dtype=torch.bfloat16, config_overrides={
        "n_layer": 1, "n_embd": 32, "n_head": 2, "n_positions": MAX_LEN, "attn_implementation": "sdpa"})
    batch = ChatCollator(tok.pad_token_id, "input")([packed[0], packed[1]])
    with torch.no_grad():
        out = model(**batch)
    assert out.logits.dtype == torch.bfloat16 and torch.isfinite(out.loss)


def test_packed_rows_per_step_literal():
    # ChatbotData in the bench: 11,285 dialogues in 638 rows of 256 → 32 dialogues ≈ 2 rows
    assert packed_rows_per_step(32, 11285, 638) == 2
    assert packed_rows_per_step(8, 100, 50) == 4
    assert packed_rows_per_step(1, 1000, 10) == 1  # never 0 rows
    with pytest.raises(ValueError, match="examples and rows > 0"):
        packed_rows_per_step(8, 0, 0)


def test_padding_share_literal():
    lengths = [10, 20, 30, 40]
    # fixed: 100 real tokens in 4 x 50 slots
    assert padding_share(lengths, batch_size=2, strategy="fixed", max_length=50) == pytest.approx(0.5)
    # dynamic, one batch of 4 padded to its longest row (40): 100 real tokens in 160 slots
    assert padding_share(lengths, batch_size=4, strategy="dynamic", max_length=50) == pytest.approx(1 - 100 / 160)
    # packed: four 25-token dialogues fill two 50-token rows exactly, whatever the order
    assert padding_share([25] * 4, batch_size=2, strategy="packed", max_length=50) == pytest.approx(0.0)
    report = padding_report([25] * 4 + [50], batch_size=8, max_length=50)
    assert report == {"examples": 5, "tokens": 150, "batch_size": 8, "max_length": 50, "fixed": 0.4,
                      "dynamic": 0.4, "packed": 0.0, "packed_rows": 3, "mean_fill": 1.0}
    with pytest.raises(ValueError, match="expected fixed, dynamic or packed"):
        padding_share(lengths, batch_size=2, strategy="sorted")
