"""Tokenizer training: fixed special ids, Korean round trip, atomic specials, offline reload, a training step."""

from __future__ import annotations

import importlib.util
import json
import random

import pytest
import torch
from transformers import AutoTokenizer

from chathuman_hf.data import load_dialogues
from chathuman_hf.models.build import build_model, ensure_vocab_fits
from chathuman_hf.tokens.collators import ChatCollator
from chathuman_hf.tokens.features import tokenize_dialogues
from chathuman_hf.tokens.tokenizer_training import LIBRARIES, MODEL_TYPES, SPECIAL_TOKENS, iter_texts, train_tokenizer


@pytest.fixture(scope="module")
def sample():
    return load_dialogues()


TRAINERS = [(library, model_type) for library in LIBRARIES for model_type in MODEL_TYPES]


@pytest.fixture(scope="module", params=TRAINERS, ids=["-".join(t) for t in TRAINERS])
def trained(request, sample):
    library, model_type = request.param
    return train_tokenizer(sample, vocab_size=1500, model_type=model_type, library=library)


def test_special_tokens_at_fixed_ids(trained):
    assert SPECIAL_TOKENS == ["<pad>", "<unk>", "</s>", "<usr>", "<sys>"]
    assert trained.convert_tokens_to_ids(SPECIAL_TOKENS) == [0, 1, 2, 3, 4]
    assert (trained.pad_token_id, trained.unk_token_id, trained.bos_token_id, trained.eos_token_id) == (0, 1, 2, 2)


def test_korean_round_trip_on_cleaned_text(trained, sample):
    texts = list(iter_texts(sample))
    assert len(texts) > 100
    ids = trained(texts, add_special_tokens=False)["input_ids"]
    assert [trained.decode(x) for x in ids] == texts
    assert not any(trained.unk_token_id in x for x in ids)


def test_special_tokens_are_never_split(trained):
    ids = trained.encode("안녕<usr>밥 먹었어?<sys>응</s>", add_special_tokens=False)
    assert [i for i in ids if i < 5] == [3, 4, 2]
    for special in SPECIAL_TOKENS:
        assert trained.encode(special, add_special_tokens=False) == [trained.convert_tokens_to_ids(special)]


def test_saved_tokenizer_reloads_offline_with_template(trained, sample, tmp_path):
    trained.save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    assert tok.is_fast and len(tok) == len(trained)
    messages = sample[0]["messages"]
    ds = tokenize_dialogues([messages], tok, max_length=1024)
    assert ds[0]["input_ids"] == tok.apply_chat_template(messages)["input_ids"] == trained.apply_chat_template(
        messages)["input_ids"]


def test_model_for_trained_tokenizer_takes_a_step(trained, sample):
    ds = tokenize_dialogues(sample, trained, max_length=128, label_mode="-100+sys")
    model = build_model(model_type="gpt2", tokenizer=trained,
                        config_overrides={"n_layer": 1, "n_embd": 32, "n_head": 2, "n_positions": 128})
    ensure_vocab_fits(model, trained, ds)
    batch = ChatCollator(trained.pad_token_id, "-100+sys")([ds[i] for i in range(8)])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = model(**batch).loss
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_sentencepiece_library_encodes_like_sentencepiece_itself(sample, model_type, monkeypatch):
    """The converted fast tokenizer gives SentencePieceProcessor's own ids on every cleaned sample message."""
    import sentencepiece as spm

    trained_models = []
    real_train = spm.SentencePieceTrainer.train

    def keep_model(**kwargs):
        real_train(**kwargs)
        trained_models.append(kwargs["model_writer"].getvalue())

    monkeypatch.setattr(spm.SentencePieceTrainer, "train", keep_model)
    tok = train_tokenizer(sample, vocab_size=1500, model_type=model_type, library="sentencepiece")
    reference = spm.SentencePieceProcessor(model_proto=trained_models[0])
    assert reference.id_to_piece([0, 1, 2, 3, 4]) == SPECIAL_TOKENS
    texts = list(iter_texts(sample))
    ours = tok(texts, add_special_tokens=False)["input_ids"]
    assert ours == [reference.encode(t) for t in texts]
    assert len(tok) == reference.get_piece_size()


def test_sentencepiece_conversion_that_differs_is_warned_about(sample, monkeypatch):
    import sentencepiece as spm

    monkeypatch.setattr(spm.SentencePieceProcessor, "encode", lambda self, text: [1])  # a "different" reference
    with pytest.warns(UserWarning, match=r"encodes \d+ of \d+ checked texts differently from SentencePiece"):
        train_tokenizer(sample, vocab_size=1500, library="sentencepiece")


def test_bad_arguments_name_the_fix(sample):
    with pytest.raises(ValueError, match="expected one of \\('bpe', 'unigram'\\)"):
        train_tokenizer(sample, vocab_size=100, model_type="wordpiece")
    with pytest.raises(ValueError, match="vocab_size=5 is too small"):
        train_tokenizer(sample, vocab_size=5)
    with pytest.raises(ValueError, match="expected one of \\('tokenizers', 'sentencepiece'\\)"):
        train_tokenizer(sample, vocab_size=100, library="spm")
    with pytest.raises(ValueError, match="sentencepiece needs --vocab-size [0-9]+ or more"):
        train_tokenizer(sample, vocab_size=300, library="sentencepiece")


@pytest.mark.parametrize("library", LIBRARIES)
def test_recipe_cli_saves_a_loadable_tokenizer(repo_root, tmp_path, library, caplog):
    data = tmp_path / "chat.jsonl"
    rows = [
        {"messages": [
            {"role": "user", "content": f"오늘 {i}번째 질문이야"}, {"role": "assistant", "content": "좋아 대답할게"}
        ]}
        for i in range(30)
    ]
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    spec = importlib.util.spec_from_file_location(
        "train_tokenizer_recipe", repo_root / "recipes" / "train_tokenizer.py"
    )
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    out = tmp_path / "tok"
    with caplog.at_level("WARNING", logger="chathuman_hf.training.preflight"):
        assert recipe.main(["--data", str(data), "--vocab-size", "500", "--output", str(out),
                            "--model-type", "unigram", "--library", library]) == 0
    assert "--vocab-size 500 was asked; the training text only fills" in caplog.text  # train.py's words
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.decode(tok.encode("오늘 7번째 질문이야", add_special_tokens=False)) == "오늘 7번째 질문이야"
    stats = json.loads((out / "tokenizer_training.json").read_text(encoding="utf-8"))
    assert stats["dialogues"] == 30 and stats["round_trip_share"] == 1.0 and stats["unk_share"] == 0.0
    assert stats["library"] == library


def test_recipe_cli_too_small_vocab_is_one_clear_line(repo_root, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "train_tokenizer_recipe", repo_root / "recipes" / "train_tokenizer.py"
    )
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    from chathuman_hf.core.cli import run_cli

    argv = ["--vocab-size", "300", "--library", "sentencepiece", "--output", str(tmp_path / "t")]
    assert run_cli(recipe.main, argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: vocab_size=300 is below the") and "--vocab-size" in err and "\n" not in err
    assert not (tmp_path / "t").exists()


EMOJI = ["😀", "🎉", "👍", "🙏", "🔥", "❤️", "🇰🇷", "👨‍👩‍👧"]


def random_texts(count: int, seed: int = 0) -> list[str]:
    """Strings of 1-16 characters mixing Hangul syllables, uppercase Latin, digits, emoji, Hanja and spaces."""
    rng = random.Random(seed)
    pools = [lambda: chr(rng.randint(0xAC00, 0xD7A3)), lambda: chr(rng.randint(ord("A"), ord("Z"))),
             lambda: chr(rng.randint(ord("0"), ord("9"))), lambda: rng.choice(EMOJI),
             lambda: chr(rng.randint(0x4E00, 0x9FFF)), lambda: " "]
    return ["".join(rng.choice(pools)() for _ in range(rng.randint(1, 16))) for _ in range(count)]


def test_ten_thousand_random_strings_round_trip(trained):
    """Byte fallback: uppercase Latin (lowercased away by the cleaning), emoji and Hanja never become <unk>."""
    assert len(trained) <= 1500
    texts = random_texts(10_000) + ["SD카드 샀어", "PPL이 뭐야", "SNS 끊었어", " 앞뒤 공백 ", "두  칸\n줄바꿈"]
    backend = trained.backend_tokenizer  # the Rust tokenizer the fast tokenizer runs (batch calls, no Python loop)
    ids = [e.ids for e in backend.encode_batch(texts, add_special_tokens=False)]
    assert [t for t, d in zip(texts, backend.decode_batch(ids), strict=True) if t != d] == []
    assert trained.decode(ids[-1]) == texts[-1]  # the same through the transformers API
    assert not any(trained.unk_token_id in x for x in ids)
    assert trained.convert_ids_to_tokens(trained.encode("A", add_special_tokens=False))[-1] == "<0x41>"
