"""The one-in-flight rule: which request may run, what waits, and when a reply is stale.

Every event that makes earlier replies useless supersedes them (a new sequence
number) and cancels the task waiting for one. A cancelled task may still be
closing its connection; nothing new is sent until it is gone, so at most one
request is ever in flight.

A keystroke that only types on (Enter included) does not cancel a request whose
answer may still serve it (the user may be typing what it will suggest): the
request goes on, and the newest keystroke waits beside it, replacing the one
that waited before. When the answer comes, the waiting keystroke is served
from it if what was typed matches, else sent at once. A burst of keys thus
costs one request, and the server never works on an answer nobody can use. On
a server slower than the typist, cancelling instead would leave the server
busy with prompts it cannot stop, and the request made at the user's pause
would queue behind them. The policy (what supersedes what, what waits) lives
here and only here.

Priming (the ring's idle-time work) is not cancelled by a keystroke: the
server cannot stop a prompt it has started, so a cancelled priming would still
hold it, and the request sent at once would queue there behind it. The
keystroke's request waits for it instead, for at most PRIMING_PATIENCE_S (a
priming that long is cut, so that a suggestion never waits for the whole ring).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# How long the user's request waits for a priming still running before cutting it.
PRIMING_PATIENCE_S = 1.0


@dataclass(frozen=True)
class Waiting(Generic[T]):
    """A keystroke held back while the request in flight may still answer it."""

    seq: int
    item: T


class Scheduler:
    """Sequence numbers, the one task that may send, and cancel-once."""

    def __init__(self) -> None:
        self._seq = 0
        self._task: asyncio.Task[None] | None = None  # the user's request, or priming
        self._priming: asyncio.Task[None] | None = None  # priming, while it runs
        self._closing: set[asyncio.Task[None]] = set()
        # While the user's request is on the wire: which later states its answer may serve.
        self._serves: Callable[[Any], bool] | None = None
        self._waiting: Waiting[Any] | None = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The user's request or priming, as last started."""
        return self._task

    def supersede(self, *, keep_priming: bool = False) -> int:
        """Make every earlier reply stale and cancel the task that waits for one.

        ``keep_priming``: a priming that runs goes on (a keystroke, insert mode
        left); else it is cancelled too (suggestions turned off).
        """
        self._seq += 1
        self._waiting = None
        if self._task is not self._priming:
            self.cancel(self._task)
        if not keep_priming:
            self.cancel(self._priming)
        return self._seq

    def wait_behind(self, item: T) -> int | None:
        """If the request on the wire may answer ``item``, let ``item`` wait for it.

        Returns the new sequence number (earlier replies are stale, none is
        cancelled), or None if the request cannot serve ``item`` (or none runs):
        then the caller supersedes as usual.
        """
        serves = self._serves
        if serves is None or not self.busy() or not serves(item):
            return None
        self._seq += 1
        self._waiting = Waiting(self._seq, item)
        return self._seq

    def on_the_wire(self, serves: Callable[[Any], bool]) -> None:
        """The running task sends now; ``serves`` says which later items its answer may serve."""
        self._serves = serves

    def off_the_wire(self) -> Waiting[Any] | None:
        """The running task's answer is in: the keystroke that waited for it, if any."""
        self._serves = None
        waiting, self._waiting = self._waiting, None  # (supersede clears it)
        return waiting

    def is_current(self, seq: int) -> bool:
        """True if nothing superseded ``seq`` since it was handed out."""
        return seq == self._seq

    def run(
        self, coro: Coroutine[Any, Any, None], *, background: bool = False
    ) -> asyncio.Task[None]:
        """Start the user's request (or priming: ``background``), which the next event cancels."""
        self._task = asyncio.ensure_future(coro)
        if background:
            self._priming = self._task
            self._task.add_done_callback(self._priming_done)
        return self._task

    def _priming_done(self, task: asyncio.Task[None]) -> None:
        if self._priming is task:
            self._priming = None

    def cancel(self, task: asyncio.Task[None] | None) -> None:
        """Cancel ``task`` once and remember it until its connection is closed."""
        # Once only: a second cancel() would interrupt the task's clean-up
        # (httpx closing its connection), leaking the socket half-closed.
        if task is not None and not task.done() and task not in self._closing:
            task.cancel()
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def quiet(self) -> None:
        """Wait until a priming still running is done and every cancelled request is closed."""
        me = asyncio.current_task()
        priming = self._priming
        if priming is not None and priming is not me:
            await asyncio.wait({priming}, timeout=PRIMING_PATIENCE_S)
            self.cancel(priming)  # (done by now, unless it took too long)
        pending = {t for t in self._closing if t is not me}
        if pending:
            await asyncio.wait(pending)

    def running(self) -> set[asyncio.Task[None]]:
        """The user's request and priming, those not done."""
        return {t for t in (self._task, self._priming) if t is not None and not t.done()}

    def busy(self) -> bool:
        """True while the user's request or priming runs."""
        return bool(self.running())
