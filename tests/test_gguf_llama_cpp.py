"""The exported GGUF in llama.cpp itself (llama-cpp-python, built from its source package): every tiny model loads
(EXAONE 4.0 too), tokenizes 1,000 Korean utterances to the Hugging Face tokenizer's ids, and answers 20 chats through
``create_chat_completion`` (the GGUF's own template, stopping at its end-of-turn token) with the original's greedy
reply; q8_0 on at least 18 of 20."""

from __future__ import annotations

import pytest
import torch

from chathuman_hf.publishing.gguf_export import export_gguf
from chathuman_hf.publishing.llama_cpp_source import ConverterNotFoundError, find_converter
from tests.helpers.gguf_models import GGUF_MODELS, chat_prompts, korean_utterances, make_gguf_model_dir

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (the gguf extra; it builds "
                                "llama.cpp from source, ~16 min on 2 cores)")
pytestmark = pytest.mark.slow
MAX_NEW = 20


def same_text(text: str) -> str:
    """A reply as both detokenizers agree on it: llama-cpp-python drops an incomplete UTF-8 byte sequence where
    transformers writes U+FFFD (random tiny models emit lone byte pieces), and the space of the first word piece is
    kept by one and dropped by the other (llama.cpp keeps SentencePiece's leading ``▁``; transformers' Metaspace
    decoder drops it)."""
    return text.replace("\ufffd", "").strip()


@pytest.fixture(scope="module")
def converter():
    try:
        return find_converter()
    except ConverterNotFoundError as err:
        pytest.skip(f"llama.cpp's converter is not available: {err}")


@pytest.fixture(scope="module")
def utterances(chatbot_csv_or_none):
    return korean_utterances(chatbot_csv_or_none, 1000)


@pytest.fixture(scope="module")
def chatbot_csv_or_none():
    from tests.conftest import CHATBOT_CSV

    return CHATBOT_CSV if CHATBOT_CSV.exists() else None


def _hf_reply(model, tok, messages, stop_id: int) -> str:
    """Greedy reply (plain argmax) until the end-of-turn token, as llama.cpp's greedy sampler picks it."""
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = ids["input_ids"]
    new: list[int] = []
    with torch.no_grad():
        for _ in range(MAX_NEW):
            nxt = int(model(out).logits[0, -1].argmax())
            if nxt == stop_id:
                break
            new.append(nxt)
            out = torch.cat([out, torch.tensor([[nxt]])], dim=1)
    return same_text(tok.decode(new, skip_special_tokens=True))


def _llama_reply(llm, messages) -> str:
    done = llm.create_chat_completion(messages=messages, max_tokens=MAX_NEW, temperature=0.0, top_k=1,
                                      repeat_penalty=1.0, seed=0)
    return same_text(done["choices"][0]["message"]["content"] or "")


def _load(path):
    return llama_cpp.Llama(model_path=str(path), n_ctx=256, n_threads=2, verbose=False, seed=0)


@pytest.mark.parametrize("name", GGUF_MODELS)
def test_llama_cpp_tokenizes_and_replies_like_the_original(name, converter, utterances, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from chathuman_hf.publishing.gguf_export import tokenizer_plan

    src = make_gguf_model_dir(tmp_path / name, name, default_layer_mix=False)
    tok = AutoTokenizer.from_pretrained(src)
    model = AutoModelForCausalLM.from_pretrained(src).eval()
    stop_id = tokenizer_plan(src)["eot_id"]
    prompts = chat_prompts(20)
    want = [_hf_reply(model, tok, p, stop_id) for p in prompts]

    llm = _load(export_gguf(src, tmp_path / "f32", "f32"))
    mismatched = [u for u in utterances
                  if llm.tokenize(u.encode("utf-8"), add_bos=False, special=False)
                  != tok.encode(u, add_special_tokens=False)]
    assert len(utterances) == 1000
    assert mismatched == []
    got = [_llama_reply(llm, p) for p in prompts]
    assert got == want
    del llm

    q8 = _load(export_gguf(src, tmp_path / "q8_0", "q8_0"))
    same = sum(_llama_reply(q8, p) == w for p, w in zip(prompts, want, strict=True))
    assert same >= 18, f"q8_0 replies equal on {same} of 20"
