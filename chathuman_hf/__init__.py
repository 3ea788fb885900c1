"""chathuman_hf: fine-tune a causal LM into a multi-turn Korean everyday-conversation assistant, and serve it."""

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
