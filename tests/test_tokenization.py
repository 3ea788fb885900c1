"""prepare_tokenizer (KoGPT2-like and arbitrary tokenizers), the chat template, generation defaults, pipeline."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast, pipeline

from chathuman_hf.tokens.features import ASSISTANT, USER, tokenize_dialogues
from chathuman_hf.tokens.tokenizer import CHAT_TEMPLATE, chat_generation_config, prepare_tokenizer, role_tokens
from tests.helpers.tiny_models import make_word_tokenizer

MSGS = [
    {"role": "user", "content": "안녕"},
    {"role": "assistant", "content": "반가워"},
    {"role": "user", "content": "밥"},
]


def word_level(vocab: list[str], unk: str) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(vocab)}, unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def test_template_renders_the_training_format():
    tok = make_word_tokenizer(["안녕", "반가워", "밥"])
    assert tok.chat_template == CHAT_TEMPLATE
    assert tok.apply_chat_template(MSGS[:2], tokenize=False) == "</s><usr>안녕<sys>반가워</s>"
    assert tok.apply_chat_template(MSGS, tokenize=False, add_generation_prompt=True) == (
        "</s><usr>안녕<sys>반가워</s><usr>밥<sys>"
    )
    with pytest.raises(Exception, match="only allowed first"):
        tok.apply_chat_template([*MSGS, {"role": "system", "content": "x"}], tokenize=False)
    with pytest.raises(Exception, match="Unknown role tool"):
        tok.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


def test_kogpt2_like_tokenizer_is_prepared_without_growing():
    raw = make_word_tokenizer(["안녕", "반가워"], kogpt2_like=True, prepare=False)
    assert raw.eos_token is None and raw.pad_token is None
    size = len(raw)
    tok = prepare_tokenizer(raw)
    assert len(tok) == size
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token, tok.mask_token) == (
        "</s>", "</s>", "<pad>", "<unk>", "<mask>")
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (2, 2, 0)
    assert role_tokens(tok) == ("<usr>", "<sys>")
    # role markers are atomic even when glued to text
    assert tok.encode("<usr>안녕<sys>반가워</s>", add_special_tokens=False) == [3, 16, 4, 17, 2]


def test_arbitrary_tokenizer_gets_missing_specials_added():
    raw = word_level(["[UNK]", "hello", "world"], unk="[UNK]")
    tok = prepare_tokenizer(raw)
    assert len(tok) == 3 + 4  # </s>, <pad>, <usr>, <sys>
    assert tok.eos_token == tok.bos_token == "</s>" and tok.pad_token == "<pad>"
    ids = tok.apply_chat_template([{"role": "user", "content": "hello"}, {"role": "assistant", "content": "world"}])
    assert tok.convert_ids_to_tokens(ids["input_ids"]) == ["</s>", "<usr>", "hello", "<sys>", "world", "</s>"]


def test_reserved_tokens_take_the_roles_instead_of_growing():
    vocab = ["<unk>", "</s>", "hello", "world"] + [f"<unused{i}>" for i in range(3)]
    raw = word_level(vocab, unk="<unk>")
    tok = prepare_tokenizer(raw, use_reserved_tokens=True)
    assert len(tok) == len(vocab)
    assert role_tokens(tok) == ("<unused0>", "<unused1>")
    assert tok.pad_token == "<unused2>"
    msgs = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "world"}]
    assert tok.apply_chat_template(msgs, tokenize=False) == "</s><unused0>hello<unused1>world</s>"
    row = tokenize_dialogues([msgs], tok)[0]
    assert row["input_ids"] == [1, 4, 2, 5, 3, 1]
    assert row["roles"] == [0, 0, USER, 0, ASSISTANT, ASSISTANT]
    assert chat_generation_config(tok).eos_token_id == [1, 4]


def test_reserved_tokens_exhausted_is_a_clear_error():
    raw = word_level(["<unk>", "</s>", "<pad>", "<unused0>"], unk="<unk>")
    with pytest.raises(ValueError, match="no free <unusedN> token for <sys>"):
        prepare_tokenizer(raw, use_reserved_tokens=True)


def test_chat_generation_config_defaults_and_overrides():
    tok = make_word_tokenizer(["안녕"])
    cfg = chat_generation_config(tok, max_new_tokens=5)
    assert cfg.eos_token_id == [2, 3] and cfg.pad_token_id == 0 and cfg.max_new_tokens == 5
    assert cfg.repetition_penalty == 1.25 and cfg.no_repeat_ngram_size == 3


def test_saved_tokenizer_reloads_with_template(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert role_tokens(tok) == ("<usr>", "<sys>")
    assert tok.convert_tokens_to_ids(["<pad>", "<unk>", "</s>", "<usr>", "<sys>"]) == [0, 1, 2, 3, 4]
    assert tok.apply_chat_template(MSGS, tokenize=False, add_generation_prompt=True).endswith("<usr>밥<sys>")


def test_pipeline_chat_on_tiny_model(tiny_model_dir):
    chat = pipeline("text-generation", model=str(tiny_model_dir))
    out = chat([{"role": "user", "content": "안녕"}], max_new_tokens=8, do_sample=False)
    conversation = out[0]["generated_text"]
    assert conversation[0] == {"role": "user", "content": "안녕"}
    assert conversation[-1]["role"] == "assistant" and isinstance(conversation[-1]["content"], str)
    assert "<usr>" not in conversation[-1]["content"] and "</s>" not in conversation[-1]["content"]


def test_prepare_is_idempotent(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    size, template, ids = len(tok), tok.chat_template, tok.apply_chat_template(MSGS)["input_ids"]
    again = prepare_tokenizer(prepare_tokenizer(tok))
    assert len(again) == size and again.chat_template == template
    assert again.apply_chat_template(MSGS)["input_ids"] == ids
    assert again.extra_special_tokens == ["<usr>", "<sys>"]


@pytest.fixture(scope="module")
def kogpt2_like(tmp_path_factory):
    from tests.helpers.tiny_models import make_kogpt2_like_dir

    return make_kogpt2_like_dir(tmp_path_factory.mktemp("kogpt2_like"))


def test_kogpt2_like_checkpoint_by_name_keeps_its_tokenizer_pipeline(kogpt2_like, tmp_path):
    from chathuman_hf.models.build import build_model
    from chathuman_hf.tokens.tokenizer import round_trips

    tok = prepare_tokenizer(str(kogpt2_like))
    assert round_trips(tok) and round_trips(tok, "밥 먹었어?")
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token, tok.mask_token) == (
        "</s>", "</s>", "<pad>", "<unk>", "<mask>")
    assert (tok.bos_token_id, tok.pad_token_id) == (1, 3)
    assert len(tok) == tok.backend_tokenizer.get_vocab_size()  # nothing added (no <|endoftext|>)
    model = build_model(str(kogpt2_like), tokenizer=tok)
    assert model.config.eos_token_id == 1 and model.config.pad_token_id == 3
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert round_trips(reloaded) and reloaded.chat_template == tok.chat_template
    out = pipeline("text-generation", model=str(tmp_path))([{"role": "user", "content": "안녕"}], max_new_tokens=3,
                                                            do_sample=False)
    assert out[0]["generated_text"][-1]["role"] == "assistant"


def test_broken_tokenizer_object_is_flagged(kogpt2_like):
    from chathuman_hf.tokens.tokenizer import round_trips

    auto = AutoTokenizer.from_pretrained(kogpt2_like)
    if round_trips(auto):
        pytest.skip("this transformers version loads the KoGPT2-style tokenizer.json faithfully")
    with pytest.warns(UserWarning, match="pass the model name to prepare_tokenizer"):
        prepare_tokenizer(auto)
