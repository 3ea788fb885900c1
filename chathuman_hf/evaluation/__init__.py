"""Measuring a model: assistant-token perplexity and generation health (``perplexity``), response selection
(hits@1), conversation metrics (diversity, repetition, speech level), the label-mode leaderboard, loss plots, and the
``evaluate`` metric modules shipped in ``metrics/``.

May import: core, korean, data, tokens, models.
"""
