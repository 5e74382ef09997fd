"""The ring's idle-time work: admit a queued chunk, measure it, prime the server with it.

While the user is idle (out of insert mode, or not typing for IDLE_AFTER_S),
one queued chunk at a time enters the ring, is counted with the server's own
tokenizer (to correct our token budget) and, if it belongs to the user's
project, the server computes the extra context ahead of the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from .client import InfillClient
from .config import Config
from .pipeline import Pipeline, Stage
from .problems import ServerProblem
from .ring import Chunk, Ring
from .tokens import TokenCounter

# The user counts as idle this long after their last keystroke in insert mode.
IDLE_AFTER_S = 3.0


class Priming(Stage):
    """Admission and priming, done while nobody waits for the server."""

    def __init__(
        self,
        config: Config,
        ring: Ring,
        pipeline: Pipeline,
        *,
        client: InfillClient,
        tokens: TokenCounter,
        clock: Callable[[], float],
        enabled: Callable[[], bool],
    ) -> None:
        super().__init__(config, pipeline)
        self._ring = ring
        self._client = client
        self._tokens = tokens
        self._clock = clock
        self._enabled = enabled
        self._in_insert = False
        self._last_keystroke = float("-inf")
        self._tokenizer_tried = False
        # The ring's cap changes the extra context (context_cost.py): prime it afresh.
        self._primed_cap_changes = 0

    def typed(self) -> None:
        """A keystroke in insert mode: the user is busy for a while."""
        self._in_insert = True
        self._last_keystroke = self._clock()

    def left_insert(self) -> None:
        """Insert mode was left: the user is idle now."""
        self._in_insert = False

    def idle(self) -> bool:
        """True if the user has not typed for a while."""
        return not self._in_insert or self._clock() - self._last_keystroke > IDLE_AFTER_S

    def offered(self, spawn: Callable[[Chunk], None]) -> None:
        """A chunk was queued; without idle-time priming it enters the ring at once."""
        if self._builder.shaping.primes_when_idle:
            return
        # In at once, unprimed, but measured like any chunk so the budget holds.
        chunk = self._ring.admit_one()
        if chunk is not None:
            spawn(chunk)

    async def loop(self, busy: Callable[[], bool]) -> None:
        """Every ring_update_ms, while the user is idle, admit one chunk and prime it.

        Or prime the extra context anew after the ring's cap changed, so that
        the next request finds it computed.
        """
        while True:
            await asyncio.sleep(self._config.ring_update_ms / 1000)
            if not self.idle() or busy():
                continue
            if not self._ring.queued:
                if self._cap_changed() and self._enabled() and self._sender.may_request():
                    self._scheduler.run(self.prime(), background=True)
                continue
            if not self._tokens.exact and not self._tokenizer_tried:
                # Loading the tokenizer holds the GIL for a few hundred ms: do it
                # once, while the user is idle, not at start-up when they type.
                self._tokenizer_tried = True
                await self.load_tokenizer()
            if not self._sender.may_request():
                continue
            self._scheduler.run(self.admit_and_prime(), background=True)

    async def load_tokenizer(self) -> None:
        """Load the exact tokenizer off the event loop."""
        await asyncio.get_running_loop().run_in_executor(None, self._tokens.load)
        self._builder.tokenizer_loaded()

    async def admit_and_prime(self) -> None:
        """Move one queued chunk into the ring, measure it, and prime it if it is ours."""
        chunk = self._ring.admit_one()
        if chunk is None:
            return
        await self._scheduler.quiet()
        await self.measure(chunk)
        if self._enabled() and chunk.project == self._projects.current:
            await self.prime()

    async def measure(self, chunk: Chunk) -> None:
        """Count a chunk with the server's own tokenizer, to correct our estimates."""
        with contextlib.suppress(ServerProblem):
            server_tokens = await self._client.tokenize(chunk.text)
            self._builder.measured(server_tokens, chunk.tokens)

    def _cap_changed(self) -> bool:
        """True once after each change of the ring's cap."""
        changes = self._builder.context_cost.changes
        changed, self._primed_cap_changes = changes != self._primed_cap_changes, changes
        return changed

    async def prime(self) -> None:
        """Have the server compute the extra context now, while nobody waits."""
        body = self._builder.priming_body(self._projects.current, self._projects.last_place)
        if body is None:
            return
        await self._scheduler.quiet()
        self._counters.primes += 1
        await self._sender.send(body, quiet=True)
