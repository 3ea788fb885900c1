"""The benchmarks, run as modules from the repository root: ``python -m bench.NAME --help`` (see bench/README.md).

Run that way, the repository root is ``sys.path[0]``: ``chathuman_hf`` and ``tests.helpers`` are this checkout's,
whatever an installed copy points at. Shared parts: ``common`` (paths, offline defaults, a child process's
environment, small numeric helpers), ``machine`` (machine facts, the ``torch.mm`` peak), ``peak_memory`` (peak RSS
of a process tree), ``writers`` (result JSON and markdown tables).
"""
