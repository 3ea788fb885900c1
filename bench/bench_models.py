"""Benchmark model shapes: GPT-2 and a Llama-family model (RMSNorm, SwiGLU, RoPE, GQA) of matching parameter count.

Per layer GPT-2 has 12·d² matmul weights (attention 4·d², MLP 8·d²); the Llama shape has the same 12·d² (attention
with half as many key/value heads as query heads: 3·d², SwiGLU of width 3·d: 9·d²). Both tie the LM head to the
input embedding, so only GPT-2's learned position table differs (RoPE has none).
"""

from __future__ import annotations

from typing import Any

ARCHS = ("gpt2", "llama")
GPT2_SIZES = {
    "tiny": {"n_layer": 2, "n_embd": 64, "n_head": 2, "n_positions": 256},
    "small": {"n_layer": 4, "n_embd": 256, "n_head": 4, "n_positions": 256},
    "kogpt2": {"n_layer": 12, "n_embd": 768, "n_head": 12, "n_positions": 1024},
}
# attention 2·d² + 2·d·(d/2) = 3·d², SwiGLU 3·d·(3·d) = 9·d²: 12·d² per layer, like GPT-2's 4·d² + 8·d²
LLAMA_SIZES = {
    "tiny": {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2, "num_key_value_heads": 1,
             "intermediate_size": 192, "max_position_embeddings": 256},
    "small": {"num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2,
              "intermediate_size": 768, "max_position_embeddings": 256},
    "kogpt2": {"num_hidden_layers": 12, "hidden_size": 768, "num_attention_heads": 12, "num_key_value_heads": 6,
               "intermediate_size": 2304, "max_position_embeddings": 1024},
}
SIZES = {"gpt2": GPT2_SIZES, "llama": LLAMA_SIZES}


def build_config(arch: str, size: str, tok: Any) -> Any:
    """The config of `arch` at `size` for tokenizer `tok` (no dropout, no cache, tied LM head)."""
    from transformers import AutoConfig

    ids = {"vocab_size": len(tok), "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
           "pad_token_id": tok.pad_token_id, "use_cache": False, "tie_word_embeddings": True}
    if arch == "gpt2":
        return AutoConfig.for_model("gpt2", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **ids, **GPT2_SIZES[size])
    if arch == "llama":
        return AutoConfig.for_model("llama", attention_dropout=0.0, rms_norm_eps=1e-5, hidden_act="silu", **ids,
                                    **LLAMA_SIZES[size])
    raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")


def shape(config: Any) -> tuple[int, int]:
    """(layers, hidden size) of a GPT-2 or Llama-family config."""
    layers = getattr(config, "num_hidden_layers", None) or config.n_layer
    hidden = getattr(config, "hidden_size", None) or config.n_embd
    return layers, hidden


def matmul_params(model: Any) -> tuple[int, int]:
    """(all params, matmul params): every non-embedding weight plus the (tied) LM head, a real vocab × d matmul."""
    import torch

    n_params = sum(t.numel() for t in model.parameters())
    n_embed = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding))
    return n_params, n_params - n_embed + model.get_output_embeddings().weight.numel()
