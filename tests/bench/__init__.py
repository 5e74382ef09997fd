"""Replay benchmark for llama.nvim (not part of the pytest suite).

Run ``python -m tests.bench.replay --help`` from the repository root.
"""
