"""The ring's idle-time work: admit a queued chunk, measure it, prime the server with it.

While the user is idle, one queued chunk at a time enters the ring, is counted
with the server's own tokenizer (to correct our token budget) and, if it
belongs to the user's project, the server computes the extra context ahead of
the next request. While the user is in the file they last typed in, it
also computes the local context from where they typed: going back there
then costs the next request only the line it changed. (Every priming does:
the user may come back before the queue is empty.)

Idle: out of insert mode, or not typing for IDLE_AFTER_S. The server cannot
stop a prompt it has started, and a request the user waits for queues behind
a priming; on a slow server one priming takes seconds. So the user must also
have been idle for as long as a priming takes (the median of the last ones):
a pause already that long is likely to last as long again, while the brief
trips out of insert mode (a save, an undo) start none.

A higher cap for the ring (context_cost.py) reaches requests through a
priming too, and that one recomputes the whole extra context: it waits until
the user has been idle for as long as that takes, at the server's measured
speed for prompts that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from collections import deque
from collections.abc import Callable

from .client import InfillClient
from .config import Config
from .pipeline import Pipeline, Stage
from .problems import ServerProblem
from .ring import Chunk, Ring
from .tokens import TokenCounter

# The user counts as idle this long after their last keystroke in insert mode.
IDLE_AFTER_S = 3.0
# Primings timed for the expected time of the next one.
TIMED_PRIMINGS = 8
# A priming computing fewer prompt tokens tells little about the speed per token.
MIN_MEASURED_PROMPT = 64


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
        self._left_insert_at = float("-inf")
        self._priming_s: deque[float] = deque(maxlen=TIMED_PRIMINGS)
        self._prompt_ms_per_token: deque[float] = deque(maxlen=TIMED_PRIMINGS)
        self._tokenizer_tried = False
        # The ring's cap changes the extra context (context_cost.py): prime it afresh.
        self._primed_cap_changes = 0

    def typed(self) -> None:
        """A keystroke in insert mode: the user is busy for a while."""
        self._in_insert = True
        self._last_keystroke = self._clock()

    def left_insert(self) -> None:
        """Insert mode was left: the user is idle once a priming's time has passed."""
        self._in_insert = False
        self._left_insert_at = self._clock()

    @property
    def expected_s(self) -> float:
        """How long a priming takes this server (0 until one was timed)."""
        return statistics.median(self._priming_s) if self._priming_s else 0.0

    def idle(self) -> bool:
        """True if the user has not typed for a while, and for longer than a priming takes."""
        idle_s = self._idle_s()
        return idle_s is not None and idle_s >= self.expected_s

    def _idle_s(self) -> float | None:
        """How long the user has been idle (None: typing)."""
        now = self._clock()
        if self._in_insert:
            quiet = now - self._last_keystroke
            return quiet if quiet >= IDLE_AFTER_S else None
        return now - max(self._left_insert_at, self._last_keystroke)

    def rise_due(self) -> bool:
        """True if a pending higher ring cap may be primed now: idle as long as it takes."""
        tokens = self._builder.rise_tokens(self._projects.current)
        ms_per_token = self._bulk_ms_per_token()
        idle_s = self._idle_s()
        if not tokens or ms_per_token is None or idle_s is None:
            return False
        return idle_s >= max(self.expected_s, tokens * ms_per_token / 1000)

    def _bulk_ms_per_token(self) -> float | None:
        """The server's ms per prompt token, from primings (else from keystroke requests)."""
        if self._prompt_ms_per_token:
            return statistics.median(self._prompt_ms_per_token)
        estimates = self._sender.pacer.estimates
        return estimates.prompt_ms_per_token if estimates is not None else None

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
                wanted = self._cap_changed() or self.rise_due()
                if wanted and self._enabled() and self._sender.may_request():
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
        """True if the ring's cap in use changed since the last priming."""
        return self._builder.context_cost.changes != self._primed_cap_changes

    async def prime(self) -> None:
        """Have the server compute the extra context now, while nobody waits.

        With the local context where the user last typed, if they are still in
        that file (in another, it would be computed for nothing).
        """
        projects = self._projects
        body = self._builder.priming_body(
            projects.current,
            projects.last_place,
            with_local=projects.typed_here(),
            rise=self.rise_due(),
        )
        self._primed_cap_changes = self._builder.context_cost.changes
        if body is None:
            return
        await self._scheduler.quiet()
        self._counters.primes += 1
        started, failed = self._clock(), False
        try:
            completion = await self._sender.send(body, quiet=True)
            failed = completion is None
            if completion is not None and completion.timings.prompt_n >= MIN_MEASURED_PROMPT:
                timings = completion.timings
                self._prompt_ms_per_token.append(timings.prompt_ms / timings.prompt_n)
        finally:
            # A priming cut short (the user's request would not wait longer)
            # takes at least this long; a failed one tells nothing.
            if not failed:
                self._priming_s.append(self._clock() - started)
