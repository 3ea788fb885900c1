"""The training run: argument dataclasses and their YAML/command-line parsing, the data steps, checks before a run,
model and Trainer setup (``build``), the ``ChatTrainer``, callbacks, resuming, and scale-out engines.

May import: core, korean, data, tokens, models, evaluation.
"""
