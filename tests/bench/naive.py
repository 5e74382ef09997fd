"""The benchmark's naive baseline: llama.nvim without shaping requests for the KV cache.

Local context sent as it is (no layout, no far suffix in the extra context),
ring chunks admitted at once and never primed, sent newest first: the extra
context is reshuffled as the user moves around, as a plain most-recently-used
ring would. Injected into the engine by the benchmark's own remote-plugin entry
(rplugin/python3/llama_nvim_naive.py) and by tests.
"""

from __future__ import annotations

from llama_nvim.config import Config
from llama_nvim.context import LocalContext, Snapshot
from llama_nvim.layout import Layout
from llama_nvim.protocol import ExtraChunk
from llama_nvim.request_builder import RequestShaping
from llama_nvim.ring import Chunk


class NaiveShaping(RequestShaping):
    """No layout, no idle-time priming, most recently used chunk first."""

    primes_when_idle = False

    def reserves_far_suffix(self, config: Config) -> bool:
        return False

    def local_part(
        self, layout: Layout, snapshot: Snapshot, context: LocalContext, filename: str, scale: float
    ) -> tuple[LocalContext, ExtraChunk | None]:
        return context, None

    def order(self, chunks: list[Chunk]) -> list[Chunk]:
        return chunks[::-1]
