"""The causal LM: building it (pretrained or from a config, the position limit), the double-shift guard on its loss,
LoRA/QLoRA with PEFT, and loading a saved chat model directory (full model or adapter).

May import: core, korean, data, tokens.
"""
