"""Test helpers, not shipped with the package: tiny offline chat models (``tiny_models``), tiny base models of every
family with templates that render each family's turn format (``families``) and the real templates' fixtures
(``real_templates``). The benchmarks import them too (``python -m bench.NAME`` from the repository root).
"""
