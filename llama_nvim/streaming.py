"""Whether to stream the next /infill request: only while the server is slow.

A streamed reply costs the editor's host process a read and a parse per
token; a whole one, a single read. Streaming is kept for a slow server: only
then does llama-server notice a hang-up and drop the work of a request the
user no longer needs, so a cancelled request does not hold up the next one
(and a server that stalls is cut off by the client's deadline either way).
A fast server finishes a cancelled request in less time than that saves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# A reply that takes less than this is as soon whole as streamed.
FAST_REPLY_MS = 100.0


class StreamChoice:
    """Streams until a reply comes within FAST_REPLY_MS; again after a slow one or a failure."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # Unknown speed: streamed, so that a cancelled request stops the server.
        self.stream = True

    @contextmanager
    def timing(self, applies: bool) -> Iterator[None]:
        """Time one request (if it ``applies``) and choose for the next from how it went."""
        if not applies:
            yield
            return
        started = self._clock()
        try:
            yield
        except asyncio.CancelledError:
            # Cancelled by the user's typing: slow if it had already run long,
            # else nothing learnt.
            if (self._clock() - started) * 1000 >= FAST_REPLY_MS:
                self.stream = True
            raise
        except BaseException:
            self.stream = True  # timed out or failed: the server is slow or in trouble
            raise
        self.observe((self._clock() - started) * 1000)

    def observe(self, ms: float) -> None:
        """A request of the chosen kind took ``ms`` (send to last byte)."""
        self.stream = ms >= FAST_REPLY_MS
