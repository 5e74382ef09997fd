""":LlamaStats wiring: the Lua half's shown / accepted events into AcceptanceStats,
written to the file on a timer and when Neovim exits.

Counting is a few additions in memory; only ``flush`` touches the disk, and
never on a keystroke.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from .acceptance import AcceptanceStats
from .messages import Accepted, Shown

STATS_FILE = "llama_nvim_acceptance.json"
# Often enough that a crash loses little; the file is small and written whole.
FLUSH_INTERVAL_S = 60.0


class StatsKeeper:
    """Counts suggestions shown and accepted; writes them out now and then."""

    def __init__(
        self,
        stats: AcceptanceStats,
        notify: Callable[[str], None],
        *,
        interval_s: float = FLUSH_INTERVAL_S,
    ) -> None:
        self.stats = stats
        self._notify = notify
        self._interval_s = interval_s

    @classmethod
    def load(cls, state_dir: str, notify: Callable[[str], None]) -> tuple[StatsKeeper, str | None]:
        """The keeper of ``state_dir``'s statistics file, and a message if it had to be reset."""
        stats, problem = AcceptanceStats.load(os.path.join(state_dir, STATS_FILE))
        return cls(stats, notify), problem

    def record(self, event: Shown | Accepted) -> None:
        """Count one event from the Lua half."""
        if isinstance(event, Shown):
            if not event.finished:  # counted when it was first drawn
                self.stats.shown(event.filetype, event.latency_ms)
        else:
            self.stats.accepted(event.filetype, event.kind, event.chars, continued=event.continued)

    def flush(self) -> None:
        """Write what was counted since the last write (nothing to do: no disk access)."""
        problem = self.stats.flush()
        if problem is not None:
            self._notify(problem)

    async def loop(self) -> None:
        """Flush every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(self._interval_s)
            self.flush()

    def report(self) -> str:
        """What :LlamaStats shows."""
        return self.stats.report()

    def reset(self) -> str:
        """:LlamaStats reset: forget everything; the message to show."""
        return self.stats.reset() or "llama.nvim: suggestion statistics reset"
