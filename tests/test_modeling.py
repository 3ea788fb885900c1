"""build_model and the tokenizer ↔ embedding guard (the seed's device-side assert made impossible)."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset

from chathuman_hf.models.build import (
    build_model,
    embedding_rows,
    ensure_vocab_fits,
    parse_config_overrides,
    position_limit,
)
from tests.helpers.tiny_models import make_word_tokenizer

WORDS = ["안녕", "반가워", "밥"]
TINY = {"n_layer": 1, "n_embd": 16, "n_head": 2, "n_positions": 32}


def test_parse_config_overrides():
    assert parse_config_overrides("n_layer=2, n_embd=64,resid_pdrop=0.0,activation_function=gelu_new,x=none") == {
        "n_layer": 2, "n_embd": 64, "resid_pdrop": 0.0, "activation_function": "gelu_new", "x": None}
    with pytest.raises(ValueError, match="expected key=value"):
        parse_config_overrides("n_layer")


def test_build_from_scratch_follows_tokenizer():
    tok = make_word_tokenizer(WORDS)
    model = build_model(model_type="gpt2", config_overrides=TINY, tokenizer=tok)
    assert embedding_rows(model) == len(tok) == 8
    assert model.config.n_layer == 1
    assert (model.config.eos_token_id, model.config.bos_token_id, model.config.pad_token_id) == (2, 2, 0)


def test_added_tokens_resize_with_mean_init(tmp_path):
    tok = make_word_tokenizer(WORDS)
    model = build_model(model_type="gpt2", config_overrides=TINY, tokenizer=tok)
    model.save_pretrained(tmp_path)
    old = model.get_input_embeddings().weight.detach().clone()
    tok.add_tokens(["새단어", "또하나"])
    reloaded = build_model(str(tmp_path), tokenizer=tok)
    new = reloaded.get_input_embeddings().weight.detach()
    assert new.shape[0] == len(tok) == 10
    assert torch.equal(new[:8], old)
    # new rows start near the mean of the old ones (transformers samples around the mean)
    assert (new[8:].mean(0) - old.mean(0)).abs().max() < 0.5 * old.std()


def test_tokenizer_larger_than_model_without_resize_is_an_error():
    tok = make_word_tokenizer(WORDS)
    model = build_model(model_type="gpt2", config_overrides=TINY, tokenizer=tok)
    tok.add_tokens(["새단어"])
    with pytest.raises(ValueError, match=r"Tokenizer has 9 ids but the model's embedding table has 8 rows"):
        ensure_vocab_fits(model, tok, resize=False)


def test_out_of_range_dataset_id_names_id_row_and_sizes():
    tok = make_word_tokenizer(WORDS)
    model = build_model(model_type="gpt2", config_overrides=TINY, tokenizer=tok)
    ds = Dataset.from_dict({"input_ids": [[2, 3, 5], [2, 3, 51999]]})
    with pytest.raises(ValueError, match=r"row 1 holds token id 51999, outside the model's embedding table of 8 rows "
                                         r"\(tokenizer size 8\)"):
        ensure_vocab_fits(model, tok, ds)


def test_too_long_row_is_an_error():
    tok = make_word_tokenizer(WORDS)
    model = build_model(model_type="gpt2", config_overrides=TINY, tokenizer=tok)
    with pytest.raises(ValueError, match="row 0 has 40 tokens but the model has 32 positions"):
        ensure_vocab_fits(model, tok, Dataset.from_dict({"input_ids": [[5] * 40]}))


@pytest.mark.parametrize(
    ("model_type", "overrides", "limit"),
    [("gpt2", "n_positions=96", 96), ("llama", "max_position_embeddings=80", 80), ("codegen", "n_positions=72", 72)],
)
def test_position_limit_reads_each_family_config(model_type, overrides, limit):
    """One rule for training's --max-length check, the dataset guard and chat prompts."""
    small = "n_layer=1,n_embd=16,n_head=2" if model_type != "llama" else (
        "num_hidden_layers=1,hidden_size=16,intermediate_size=32,num_attention_heads=2,num_key_value_heads=2")
    model = build_model(model_type=model_type, config_overrides=f"{small},{overrides}")
    assert position_limit(model) == limit


def test_tiny_model_dir_loads_and_fits(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = build_model(str(tiny_model_dir), tokenizer=tok)
    assert embedding_rows(model) == len(tok)
    assert model.config.n_layer == 2 and model.config.n_embd == 64 and model.config.n_positions == 256
