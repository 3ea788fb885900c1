"""chathuman_hf: fine-tune a causal LM into a multi-turn Korean everyday-conversation assistant, and serve it."""

__version__ = "0.1.0"
