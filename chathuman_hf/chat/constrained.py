"""Grammar-constrained decoding: a per-reply logits processor that masks every token the grammar forbids.

Why xgrammar (vLLM's default backend) and not llguidance or outlines: measured on this CPU (2026-12-06, shared
2-core machine) on a JSON schema, a byte-level BPE of 33,330 tokens padded to 51,200: xgrammar compiled the schema in
25 ms and filled + applied a mask in ~0.26 ms per token on JSON text; llguidance needed 266 ms to read the tokenizer
and its torch ``apply_token_bitmask_inplace`` took ~450 ms per token on CPU. xgrammar also ships the tool-call
formats of Qwen, Llama 3.x and EXAONE 4.0 (``get_model_structural_tag``), which ``tool_choice`` needs.

The mask is a plain ``LogitsProcessor`` that sees one reply's own token history, so it runs in ``generate`` and in
the batched engine (``chat/decoding.py``) alike. Once the grammar is complete only the stop tokens remain: a reply
ends when (and only when) its JSON or tool call is whole, or at ``max_new_tokens`` (finish_reason "length").
"""

from __future__ import annotations

import json
import threading
import weakref
from typing import Any

import torch
from transformers import LogitsProcessor, PreTrainedModel, PreTrainedTokenizerBase


def _xgrammar() -> Any:
    try:
        import xgrammar
    except ImportError as exc:  # an optional dependency (the serve extra)
        raise ImportError("Structured output needs xgrammar: pip install 'chathuman_hf[serve]'.") from exc
    return xgrammar


class GrammarMask(LogitsProcessor):
    """Masks the logits of one reply (a batch of one row) to the tokens its grammar allows next.

    Stateful: it feeds the matcher the tokens generated since its last call, so use one per reply."""

    def __init__(self, compiled: Any, vocab_size: int, banned: torch.Tensor | None = None) -> None:
        xgr = _xgrammar()
        self.matcher = xgr.GrammarMatcher(compiled)
        self.bitmask = xgr.allocate_token_bitmask(1, vocab_size)
        self.banned = banned
        self.seen: int | None = None  # history length already fed to the matcher (the prompt at the first call)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if input_ids.shape[0] != 1:
            raise ValueError(f"GrammarMask masks one reply at a time (got a batch of {input_ids.shape[0]} rows).")
        length = input_ids.shape[1]
        if self.seen is not None:
            for token in input_ids[0, self.seen:].tolist():
                if not self.matcher.accept_token(token):
                    raise RuntimeError(f"token {token} is not allowed by the reply's grammar")
        self.seen = length
        self.matcher.fill_next_token_bitmask(self.bitmask)
        _xgrammar().apply_token_bitmask_inplace(scores, self.bitmask.to(scores.device))
        if self.banned is not None:
            scores[:, self.banned.to(scores.device)] = -float("inf")
        return scores


class Grammars:
    """Compiles grammars for one model + tokenizer (xgrammar ``GrammarCompiler``, cached) and makes their masks.

    ``stop_ids``: the tokens that end a reply (the generation config's eos ids): allowed once a grammar is complete.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, vocab_size: int, stop_ids: list[int]) -> None:
        xgr = _xgrammar()
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=stop_ids)
        self.vocab_size = vocab_size
        # xgrammar 0.2.9 lets byte tokens 0x00-0x1f (<0x00>, <0x1F>: byte fallback) into JSON strings although its
        # own rule excludes them (seen from the tiny model: '{"city": "예\x00"}', which json.loads refuses); no
        # grammar here needs them raw (JSON escapes them as \u00XX), so they are banned, except \n and \r.
        control = set(range(32)) - {10, 13}
        banned = [i for i, piece in enumerate(info.decoded_vocab) if any(b in control for b in piece)
                  and i not in stop_ids and i not in set(info.special_token_ids)]
        # the tokenizer's own special tokens (<pad>, <unk>, <sys>…) are not text, but xgrammar 0.2.9 reads a
        # tokenizer without a special-token list (ours) as the bytes of their names and lets them into strings;
        # a sampled <pad> then made a reply cut at max_tokens look finished. Only the stop ids end a reply.
        banned += [i for i in tokenizer.all_special_ids if i not in stop_ids and i < vocab_size and i not in banned]
        self.banned = torch.tensor(banned, dtype=torch.long) if banned else None
        self.compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=True)
        self.lock = threading.Lock()

    def json_schema(self, schema: dict | None) -> Any:
        """A compiled grammar for JSON that validates against ``schema`` (``None``: any JSON object).

        Compact separators (``any_whitespace=False``): a model cannot fill a reply with whitespace."""
        with self.lock:
            if schema is None:
                return self.compiler.compile_json_schema('{"type": "object"}', any_whitespace=False)
            return self.compiler.compile_json_schema(json.dumps(schema), any_whitespace=False, strict_mode=True)

    def tool_call(self, style: str, tools: list[dict], tool_choice: str | dict) -> Any:
        """A compiled grammar for one call in ``style``'s tool-call syntax (xgrammar's model structural tag:
        ``qwen_3``, ``llama``, ``exaone``) with the tool's parameters schema; ``tool_choice`` ``required`` (any of
        ``tools``) or named. The reply is the call from its first token: xgrammar's own ``required`` lets free text
        come first, which a small model may never end."""
        xgr = _xgrammar()
        from xgrammar.structural_tag import OrFormat

        names = [tool_choice["function"]["name"]] if isinstance(tool_choice, dict) else [
            t["function"]["name"] for t in tools]
        # at most one whitespace character between JSON tokens (unbounded, a small model spams them)
        formats = [xgr.get_model_structural_tag(style, tools=tools, tool_choice={"type": "function", "function": {
            "name": name}}, reasoning="disabled", parallel_tool_calls=False, max_whitespace_cnt=1).format
            for name in names]
        tag = xgr.StructuralTag(format=formats[0] if len(formats) == 1 else OrFormat(elements=formats))
        with self.lock:
            return self.compiler.compile_structural_tag(tag)

    def mask(self, compiled: Any) -> GrammarMask:
        return GrammarMask(compiled, self.vocab_size, self.banned)


_GRAMMARS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_GRAMMARS_LOCK = threading.Lock()


def grammars_for(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, stop_ids: list[int]) -> Grammars:
    """The ``Grammars`` of ``model`` (made once: reading the vocabulary takes up to a few hundred ms)."""
    with _GRAMMARS_LOCK:
        if model not in _GRAMMARS:
            vocab = model.get_output_embeddings().weight.shape[0]
            _GRAMMARS[model] = Grammars(tokenizer, vocab, stop_ids)
        return _GRAMMARS[model]
