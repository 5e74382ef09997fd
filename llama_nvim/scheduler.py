"""The one-in-flight rule: which request may run, and when a reply is stale.

Every event that makes earlier replies useless supersedes them (a new sequence
number) and cancels the task waiting for one. A cancelled task may still be
closing its connection; nothing new is sent until it is gone, so at most one
request is ever in flight. The policy (what supersedes what, what waits) lives
here and only here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class Scheduler:
    """Sequence numbers, the one task that may send, and cancel-once."""

    def __init__(self) -> None:
        self._seq = 0
        self._task: asyncio.Task[None] | None = None  # the user's request, or priming
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The user's request or priming, as last started."""
        return self._task

    def supersede(self) -> int:
        """Make every earlier reply stale and cancel the task that waits for one."""
        self._seq += 1
        self.cancel(self._task)
        return self._seq

    def is_current(self, seq: int) -> bool:
        """True if nothing superseded ``seq`` since it was handed out."""
        return seq == self._seq

    def run(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Start the user's request (or priming) as the task the next event cancels."""
        self._task = asyncio.ensure_future(coro)
        return self._task

    def cancel(self, task: asyncio.Task[None] | None) -> None:
        """Cancel ``task`` once and remember it until its connection is closed."""
        # Once only: a second cancel() would interrupt the task's clean-up
        # (httpx closing its connection), leaking the socket half-closed.
        if task is not None and not task.done() and task not in self._closing:
            task.cancel()
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def quiet(self) -> None:
        """Wait until every cancelled request has closed its connection."""
        me = asyncio.current_task()
        pending = {t for t in self._closing if t is not me}
        if pending:
            await asyncio.wait(pending)

    def busy(self) -> bool:
        """True while the user's request or priming runs."""
        return self._task is not None and not self._task.done()
