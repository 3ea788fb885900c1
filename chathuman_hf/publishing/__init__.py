"""What leaves a run: the saved output (model, results, run arguments, plots), the model card and data provenance,
and exporting a standalone model to a folder or the Hub.

May import: core, korean, data, tokens, models, evaluation, training.
"""
