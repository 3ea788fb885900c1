"""GGUF export with llama.cpp's own converter, read back by transformers' GGUF loader: the same logits (f32, f16) and
greedy replies as the original for the quickstart GPT-2, a tiny Llama, Qwen3 and Gemma 3; the metadata llama.cpp needs
(tokenizer type, pre-tokenizer, end of turn, template, context); the recipe flag; the one-line refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from chathuman_hf.publishing.gguf_export import GGUFExportError, export_gguf, tokenizer_plan
from chathuman_hf.publishing.llama_cpp_source import ConverterNotFoundError, find_converter
from tests.helpers.gguf_models import TRANSFORMERS_GGUF_MODELS, make_gguf_model_dir

pytest.importorskip("gguf", reason="the gguf package (the gguf/dev extra) reads GGUF files")
REPO = Path(__file__).resolve().parents[1]
PROMPT = [{"role": "user", "content": "오늘 너무 피곤하다 ㅋㅋ"}, {"role": "assistant", "content": "푹 쉬어!"},
          {"role": "user", "content": "meeting 끝나고 라면 먹을까? 🍜"}]
# transformers' GGUF loader maps GGUF's context length to GPT-2's ``n_ctx``, which GPT2Config no longer reads (it
# reads ``n_positions``, else 1024): the position table then mismatches, so the check passes it, as a user must.
LOADER_KWARGS = {"gpt2": {"n_positions": 256}}


@pytest.fixture(scope="session")
def converter():
    try:
        return find_converter()
    except ConverterNotFoundError as err:
        pytest.skip(f"llama.cpp's converter is not available: {err}")


def _fields(path: Path) -> dict:
    import gguf

    reader = gguf.GGUFReader(path)
    return {k: f.contents() for k, f in reader.fields.items() if not k.startswith("tokenizer.ggml.token")
            and k != "tokenizer.ggml.merges" and k != "tokenizer.ggml.scores"}


def _logits_and_reply(model, ids):
    """Logits of the prompt and a 20-token greedy continuation (plain argmax: no generation-config penalties)."""
    with torch.no_grad():
        logits = model(ids).logits
        out = ids
        for _ in range(20):
            out = torch.cat([out, model(out).logits[:, -1:].argmax(-1)], dim=1)
    return logits, out[0, ids.shape[1]:]


def _round_trip(src: Path, name: str, out: Path, outtypes: tuple[str, ...]) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(src)
    ids = tok.apply_chat_template(PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    ids = ids["input_ids"]
    want_logits, want_reply = _logits_and_reply(AutoModelForCausalLM.from_pretrained(src).eval(), ids)
    for outtype in outtypes:
        gguf_path = export_gguf(src, out / outtype, outtype)
        loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name,
                                                      **LOADER_KWARGS.get(name, {})).eval()
        logits, reply = _logits_and_reply(loaded, ids)
        assert (logits - want_logits).abs().max().item() <= 1e-3, outtype
        assert reply.tolist() == want_reply.tolist(), outtype
    fields = _fields(gguf_path)
    eot = {"gpt2": "</s>", "llama": "<|eot_id|>", "qwen3": "<|im_end|>", "gemma3": "<end_of_turn>"}[name]
    assert fields["tokenizer.ggml.eos_token_id"] == fields["tokenizer.ggml.eot_token_id"] == tok.convert_tokens_to_ids(
        eot) == tokenizer_plan(src)["eot_id"]
    assert fields["tokenizer.chat_template"] == tok.chat_template
    assert fields["tokenizer.ggml.model"] == ("llama" if name == "gpt2" else "gpt2")
    assert fields["tokenizer.ggml.pre"] == ("default" if name == "gpt2" else "gpt-2")
    assert fields[f"{fields['general.architecture']}.context_length"] == 256
    assert (gguf_path.parent / "Modelfile").is_file()
    return gguf_path


@pytest.fixture(scope="module")
def quickstart_gguf(tiny_model_dir, converter, tmp_path_factory):
    """The quickstart model (our tokenizer and template) exported at f16 and checked against the original."""
    return _round_trip(tiny_model_dir, "gpt2", tmp_path_factory.mktemp("quickstart_gguf"), ("f16",))


def test_quickstart_model_reads_back_the_same(quickstart_gguf):
    assert quickstart_gguf.name == "f16-f16.gguf"


@pytest.mark.slow
@pytest.mark.parametrize("name", TRANSFORMERS_GGUF_MODELS)
def test_transformers_reads_back_the_same_model(name, converter, tmp_path):
    _round_trip(make_gguf_model_dir(tmp_path / name, name), name, tmp_path, ("f32", "f16"))


def test_sentencepiece_style_tokenizer_keeps_byte_fallback(quickstart_gguf):
    import gguf

    reader = gguf.GGUFReader(quickstart_gguf)
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    byte_ids = [i for i, t in enumerate(types) if t == gguf.TokenType.BYTE]
    assert [tokens[i] for i in byte_ids] == [f"<0x{b:02X}>" for b in range(256)]
    control = [tokens[i] for i, t in enumerate(types) if t == gguf.TokenType.CONTROL]
    assert control == ["<pad>", "</s>", "<usr>", "<sys>"]
    assert [tokens[i] for i, t in enumerate(types) if t == gguf.TokenType.UNKNOWN] == ["<unk>"]
    assert reader.fields["tokenizer.ggml.add_space_prefix"].contents() is True
    assert reader.fields["tokenizer.ggml.add_bos_token"].contents() is False


@pytest.mark.slow
def test_export_recipe_writes_gguf_and_modelfile(tiny_model_dir, converter, tmp_path):
    out = tmp_path / "exported"
    done = subprocess.run([sys.executable, str(REPO / "recipes" / "export.py"), "--model", str(tiny_model_dir),
                           "--output", str(out), "--gguf", "q8_0"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "exported-q8_0.gguf").stat().st_size > 0
    assert (out / "model.safetensors").is_file()
    assert "FROM ./exported-q8_0.gguf" in (out / "Modelfile").read_text(encoding="utf-8")
    assert f"{out / 'exported-q8_0.gguf'}" in done.stdout


def test_unigram_tokenizer_is_refused_in_one_line(tmp_path):
    from chathuman_hf.tokens.tokenizer_training import train_tokenizer
    from tests.helpers.tiny_models import sample_texts

    tok = train_tokenizer(sample_texts(), vocab_size=2000, model_type="unigram")
    tok.save_pretrained(tmp_path)
    with pytest.raises(GGUFExportError, match="--model-type bpe"):
        tokenizer_plan(tmp_path)


def test_bad_converter_dir_is_one_line(tmp_path):
    with pytest.raises(ConverterNotFoundError, match="llama.cpp checkout"):
        find_converter(tmp_path)


def test_unknown_gguf_type_is_one_line_before_anything_is_written(tiny_model_dir, tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "recipes" / "export.py"), "--model", str(tiny_model_dir),
                           "--output", str(tmp_path / "out"), "--gguf", "q4_k_m"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "error: --gguf q4_k_m: expected one of f32, f16, bf16, q8_0."
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_train_recipe_writes_the_gguf_at_the_end(converter, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, str(REPO / "recipes/train.py"), "--model_type", "gpt2", "--config_overrides",
           "n_layer=2,n_embd=32,n_head=2,n_positions=128", "--train-tokenizer", "--vocab-size", "800",
           "--max-length", "96", "--output_dir", str(out), "--max_steps", "2", "--eval_strategy", "no",
           "--save_strategy", "no", "--load_best_model_at_end", "false", "--generation_prompts", "0",
           "--report_to", "none", "--disable_tqdm", "true", "--gguf", "f16"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "gguf" / "run-f16.gguf").stat().st_size > 0
    assert "FROM ./run-f16.gguf" in (out / "gguf" / "Modelfile").read_text(encoding="utf-8")


@pytest.mark.parametrize(("config", "message"), [
    ({"model_type": "exaone4", "num_hidden_layers": 2, "layer_types": ["sliding_attention", "full_attention"]},
     "only to the 64-layer"),
    ({"model_type": "gemma3_text", "num_hidden_layers": 2, "head_dim": 16, "query_pre_attn_scalar": 256},
     "query_pre_attn_scalar=256"),
])
def test_shapes_llama_cpp_would_run_differently_are_refused(config, message, tmp_path):
    import json

    from chathuman_hf.publishing.gguf_export import check_runtime_shape

    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(GGUFExportError, match=message):
        check_runtime_shape(tmp_path)


@pytest.mark.parametrize("config", [
    {"model_type": "exaone4", "num_hidden_layers": 64, "sliding_window": 4096,
     "layer_types": (["sliding_attention"] * 3 + ["full_attention"]) * 16},  # the 32B's layout
    {"model_type": "exaone4", "num_hidden_layers": 30, "sliding_window": None,
     "layer_types": ["full_attention"] * 30},  # the 1.2B's
])
def test_exaone4_layouts_llama_cpp_runs_alike_are_accepted(config, tmp_path):
    import json

    from chathuman_hf.publishing.gguf_export import check_runtime_shape

    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    check_runtime_shape(tmp_path)  # no error: tests/test_gguf_llama_cpp.py runs the 32B layout in llama.cpp
