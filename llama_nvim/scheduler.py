"""The one-in-flight rule: which request may run, what waits, and when a reply is stale.

Every event that makes earlier replies useless supersedes them (a new sequence
number) and cancels the task waiting for one. A cancelled task may still be
closing its connection; nothing new is sent until it is gone, so at most one
request is ever in flight.

A keystroke that only types on along the line does not cancel a request whose
answer may still serve it (the user may be typing what it will suggest): the
request goes on, and the newest keystroke waits beside it, replacing the one
that waited before. When the answer comes, the waiting keystroke is served
from it if what was typed matches, else sent at once. A burst of keys thus
costs one request, and the server never works on an answer nobody can use. On
a server slower than the typist, cancelling instead would leave the server
busy with prompts it cannot stop, and the request made at the user's pause
would queue behind them. The policy (what supersedes what, what waits) lives
here and only here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


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
        self._background = False  # the task is priming: nobody waits for its reply
        self._closing: set[asyncio.Task[None]] = set()
        # While the user's request is on the wire: which later states its answer may serve.
        self._serves: Callable[[Any], bool] | None = None
        self._waiting: Waiting[Any] | None = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The user's request or priming, as last started."""
        return self._task

    def supersede(self, *, keep_background: bool = False) -> int:
        """Make every earlier reply stale and cancel the task that waits for one.

        ``keep_background``: priming goes on (nothing needs the server now, as
        after leaving insert mode): its prompt is computed either way, since
        llama-server cannot stop a prompt it has started.
        """
        self._seq += 1
        self._waiting = None
        if not (keep_background and self._background):
            self.cancel(self._task)
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
        self._background = background
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
