"""What the engine did, counted; read by :LlamaStatus, tests and the benchmark."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .protocol import Completion
from .ring import RingState


@dataclass
class Counters:
    """Events, requests and their fates, and the server's token figures."""

    events: int = 0
    requests: int = 0
    cancelled: int = 0
    failed: int = 0
    shown: int = 0
    cache_hits: int = 0
    dropped_stale: int = 0
    dropped_filtered: int = 0
    # Keystrokes that waited for the request in flight instead of cancelling it,
    # and those then served from its answer (typed partly through).
    waited: int = 0
    served_on_arrival: int = 0
    speculative: int = 0
    speculative_adopted: int = 0
    primes: int = 0
    chunks_offered: int = 0
    prompt_n: int = 0
    cache_n: int = 0
    sent_tokens: int = 0
    # The last request the user waited for (not speculative, not priming).
    last_prompt_n: int = 0
    last_cache_n: int = 0
    last_tokens_evaluated: int = 0
    last_extra_chunks: int = 0

    def waited_for(self, completion: Completion, extra_chunks: int) -> None:
        """Remember the figures of the last request the user waited for."""
        self.last_prompt_n = completion.timings.prompt_n
        self.last_cache_n = completion.timings.cache_n
        self.last_tokens_evaluated = completion.tokens_evaluated
        self.last_extra_chunks = extra_chunks

    @property
    def user_requests(self) -> int:
        """Requests made because the user typed or asked, not background ones."""
        return self.requests - self.speculative - self.primes

    def as_dict(self) -> dict[str, int]:
        """Plain dict for RPC."""
        return {**self.__dict__, "user_requests": self.user_requests}


def figures(
    counters: Counters,
    ring: RingState,
    *,
    cache_entries: int,
    in_flight: bool,
    n_ctx: int,
    token_scale: float,
    id_slot: int = -1,
) -> dict[str, int]:
    """What LlamaNvimStats() returns: the counters and the state around them."""
    return {
        **counters.as_dict(),
        "ring_chunks": ring.chunks,
        "ring_queued": ring.queued,
        "ring_evicted": ring.evicted,
        "cache_entries": cache_entries,
        "in_flight": int(in_flight),
        "n_ctx": n_ctx,
        "token_scale_pct": round(token_scale * 100),
        "id_slot": id_slot,
        # For leak checks: tasks alive in the host and its resident memory.
        "tasks": len(asyncio.all_tasks()),
        "rss_kb": rss_kb(),
    }


def rss_kb() -> int:
    """Resident memory of this process (Linux), 0 where unknown."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
