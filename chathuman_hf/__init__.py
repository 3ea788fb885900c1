"""chathuman_hf: fine-tune a causal LM into a multi-turn Korean everyday-conversation assistant, and serve it.

Packages by concern, lowest layer first; a package imports only the ones before it (``tests/test_layers.py``):

- ``core``: one-line errors for the recipes, the chat history window, the names of a run's files
- ``korean``: speech level (존댓말/반말) and morphemes with Kiwi, rewriting to the other level
- ``data``: every input format → normalized dialogues (cleaning, PII scrubbing, KakaoTalk, reports)
- ``tokens``: chat templates, rendering, tokenizers, ids + per-token roles, the label rule, packing, collators
- ``models``: building the causal LM, the loss guard, LoRA/QLoRA, loading a saved chat model
- ``evaluation``: perplexity, generation health, response selection, conversation metrics, leaderboard, plots
- ``training``: arguments and parsing, the data steps, the Trainer and its callbacks, resuming, scale-out
- ``publishing``: a finished run's files, the model card, provenance, export and the Hub
- ``skills``, ``chat``, ``serving``: answers before the model, chat sessions, the web app and APIs
"""

import logging
import warnings

__version__ = "0.1.0"

# bitsandbytes (the qlora/dev extra) is imported by transformers whenever it is installed and, on CPUs with AVX-512
# BF16, warns at import that an optional Hub kernel ("kernels-community") is missing: on every run, QLoRA or not,
# offline or not. Its built-in 4-bit CPU kernel is used instead (the QLoRA test runs on it), so the line only alarms.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
# PEFT 0.21 reads ``model.is_gradient_checkpointing`` in every PeftModel(...), a property transformers 5.24 deprecated
# (for ``is_activation_checkpointing``): every LoRA run and adapter load printed a FutureWarning about PEFT's own code.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
# The same import path, offline (HF_HUB_OFFLINE=1, as in the tests and quickstart), makes ``kernels`` log
# "Skipping publisher trust check for 'kernels-community/…'" on every command, before any error line of ours:
# dropped here by its text, every other message of that logger still shows.
logging.getLogger("kernels._internals.hf_hub").addFilter(
    lambda record: not str(record.msg).startswith("Skipping publisher trust check")
)
