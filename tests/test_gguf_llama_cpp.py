"""The exported GGUF in llama.cpp itself (llama-cpp-python, built from its source package): every tiny model, trained
for a short run on ChatbotData so its logits are peaked like a real model's, loads (EXAONE 4.0 too), tokenizes 1,000
Korean utterances to the Hugging Face tokenizer's ids, renders 20 chats with the GGUF's own template (as
``create_chat_completion`` does) to the Jinja template's ids, and gives the original's greedy reply to each (stopping
at the end-of-turn token); q8_0 on at least 18 of 20."""

from __future__ import annotations

import pytest
import torch

from chathuman_hf.publishing.gguf_export import export_gguf
from chathuman_hf.publishing.llama_cpp_source import ConverterNotFoundError, find_converter
from tests.helpers.gguf_models import (
    GGUF_MODELS,
    chat_prompts,
    korean_utterances,
    make_exaone4_32b_layout_dir,
    train_gguf_model,
)

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (the gguf extra; it builds "
                                "llama.cpp from source, ~16 min on 2 cores)")
pytestmark = pytest.mark.slow
MAX_NEW = 20


@pytest.fixture(scope="module")
def converter():
    try:
        return find_converter()
    except ConverterNotFoundError as err:
        pytest.skip(f"llama.cpp's converter is not available: {err}")


@pytest.fixture(scope="module")
def utterances(chatbot_csv):
    return korean_utterances(chatbot_csv, 1000)


def _hf_reply(model, ids: list[int], stop_id: int) -> list[int]:
    """Greedy reply ids (plain argmax) up to the end-of-turn token or ``MAX_NEW`` tokens."""
    out, new = list(ids), []
    with torch.no_grad():
        for _ in range(MAX_NEW):
            nxt = int(model(torch.tensor([out])).logits[0, -1].argmax())
            new.append(nxt)
            out.append(nxt)
            if nxt == stop_id:
                break
    return new


def _chat_prompt_ids(llm, messages) -> list[int]:
    """The prompt ``create_chat_completion`` feeds llama.cpp: the GGUF's own template through llama-cpp-python's
    chat handler (the same ``Jinja2ChatFormatter`` and eos/bos it builds from the metadata), tokenized as it does."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    vocab = {"eos": llm.token_eos(), "bos": llm.token_bos()}
    text = {k: llm._model.token_get_text(v) if v >= 0 else "" for k, v in vocab.items()}
    formatted = Jinja2ChatFormatter(template=llm.metadata["tokenizer.chat_template"], eos_token=text["eos"],
                                    bos_token=text["bos"])(messages=messages)
    return llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True)


def _llama_reply(llm, ids: list[int], stop_id: int) -> list[int]:
    new: list[int] = []
    for token in llm.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):
        new.append(int(token))
        if len(new) == MAX_NEW or token == stop_id:
            break
    return new


def _greedy_under_original(model, ids: list[int], reply: list[int], tol: float = 1e-4) -> bool:
    """Whether every token of ``reply`` is the original's argmax after the tokens before it, up to ``tol`` (a random
    tiny model's logits are flat: two near-equal maxima are picked differently by float summation order alone)."""
    with torch.no_grad():
        logits = model(torch.tensor([ids + reply])).logits[0, len(ids) - 1:-1]
    return bool(all(logits[i, t] >= logits[i].max() - tol for i, t in enumerate(reply)))


def _load(path):
    return llama_cpp.Llama(model_path=str(path), n_ctx=256, n_threads=2, verbose=False, seed=0)


@pytest.mark.parametrize("name", GGUF_MODELS)
def test_llama_cpp_tokenizes_and_replies_like_the_original(name, converter, chatbot_csv, utterances, tmp_path):
    """Token level throughout: llama-cpp-python's text (create_chat_completion's content) holds back incomplete
    UTF-8 pieces and runs past max_tokens to finish them, so random tiny models' texts differ where the ids do not."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from chathuman_hf.publishing.gguf_export import tokenizer_plan

    src = train_gguf_model(tmp_path / name, name, chatbot_csv)
    tok = AutoTokenizer.from_pretrained(src)
    model = AutoModelForCausalLM.from_pretrained(src).eval()
    stop_id = tokenizer_plan(src)["eot_id"]
    prompts = chat_prompts(20)
    hf_ids = [list(tok.apply_chat_template(p, add_generation_prompt=True)["input_ids"]) for p in prompts]
    want = [_hf_reply(model, ids, stop_id) for ids in hf_ids]

    llm = _load(export_gguf(src, tmp_path / "f32", "f32"))
    assert llm.token_eos() == stop_id  # generation stops at the end of the turn
    mismatched = [u for u in utterances
                  if llm.tokenize(u.encode("utf-8"), add_bos=False, special=False)
                  != tok.encode(u, add_special_tokens=False)]
    assert len(utterances) == 1000
    assert mismatched == []
    assert [_chat_prompt_ids(llm, p) for p in prompts] == hf_ids  # the GGUF's template = the Jinja one
    got = [_llama_reply(llm, ids, stop_id) for ids in hf_ids]
    assert all(_greedy_under_original(model, ids, g) for ids, g in zip(hf_ids, got, strict=True))
    f32_same = sum(g == w for g, w in zip(got, want, strict=True))
    assert f32_same >= 18  # the rest part only at a near-tie
    done = llm.create_chat_completion(messages=prompts[0], max_tokens=MAX_NEW, temperature=0.0, top_k=1)
    assert done["usage"]["prompt_tokens"] == len(hf_ids[0]) and done["choices"][0]["message"]["content"] is not None
    del llm

    q8 = _load(export_gguf(src, tmp_path / "q8_0", "q8_0"))
    same = sum(_llama_reply(q8, ids, stop_id) == g for ids, g in zip(hf_ids, got, strict=True))
    print(f"[gguf round trip] {name}: ids equal on {len(utterances) - len(mismatched)}/{len(utterances)} utterances, "
          f"f32 = HF on {f32_same}/20, q8_0 = f32 on {same}/20, {len({tuple(g) for g in got})} distinct replies")
    assert same >= 18, f"q8_0 replies equal on {same} of 20"


def test_exaone4_32b_layout_runs_as_in_transformers(converter, utterances, tmp_path):
    """The 32B's layer mix (3 sliding-window layers with RoPE : 1 global layer without) at its 64 layers, over a
    prompt 4x longer than the window: llama.cpp's logits are the original's, and the window is really in play (the
    same model with a window as long as the prompt gives other logits)."""
    import numpy as np
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = make_exaone4_32b_layout_dir(tmp_path / "exaone4_32b", sliding_window=16)
    tok = AutoTokenizer.from_pretrained(src)
    ids = tok.encode(" ".join(utterances[:40]), add_special_tokens=False)[:64]
    model = AutoModelForCausalLM.from_pretrained(src).eval()
    assert model.config.layer_types[:4] == ["sliding_attention"] * 3 + ["full_attention"]
    with torch.no_grad():
        want = model(torch.tensor([ids])).logits[0].numpy()
        no_window = AutoModelForCausalLM.from_pretrained(src, sliding_window=len(ids)).eval()
        other = no_window(torch.tensor([ids])).logits[0].numpy()
    llm = llama_cpp.Llama(model_path=str(export_gguf(src, tmp_path / "f32", "f32")), n_ctx=256, n_threads=2,
                          verbose=False, logits_all=True, type_k=llama_cpp.GGML_TYPE_F32,
                          type_v=llama_cpp.GGML_TYPE_F32)  # an f32 KV cache: the default f16 one rounds (~1e-3)
    llm.eval(ids)
    got = np.asarray(llm.scores[:len(ids)])
    assert len(ids) == 64
    assert np.abs(got - want).max() <= 1e-4
    assert np.abs(other - want)[16:].max() > 100 * np.abs(got - want).max()
