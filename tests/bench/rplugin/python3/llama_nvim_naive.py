"""Remote-plugin entry for the benchmark's naive mode: llama.nvim with NaiveShaping.

Registered only in the benchmark's private manifest (tests/bench/replay.py puts
tests/bench, not the repository, on 'runtimepath' for that mode).
"""

import os
import sys

import pynvim

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))))  # fmt: skip
sys.path.insert(0, _ROOT)

import llama_nvim.plugin as product  # noqa: E402  (after the path is set)
from tests.bench.naive import NaiveShaping  # noqa: E402


@pynvim.plugin
class LlamaNaivePlugin(product.LlamaPlugin):
    """llama.nvim with the naive baseline's request shaping."""

    request_shaping = NaiveShaping()
