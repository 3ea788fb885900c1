"""Leaf utilities every layer may use: one-line errors for the recipes (``cli``), the chat history window
(``window``) and the names of a run's files (``run_files``).

Imports nothing from chathuman_hf. Layers, lowest first (``tests/test_layers.py`` checks that imports only point
down): core, korean → data → tokens → models → evaluation → training → publishing → skills → chat → serving.
"""
