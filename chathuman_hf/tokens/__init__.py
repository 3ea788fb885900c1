"""Conversations → token ids, per-token roles and labels: the chat-template choice and rendering, tokenizer
preparation and training, encoding, the label rule (``labels``: the one home of which tokens train), packing,
collators and the token-by-token label view.

May import: core, korean, data.
"""
