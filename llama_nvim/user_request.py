"""The request a keystroke makes: adopt the speculation, or ask; then show or drop the answer.

It runs as the scheduler's task. While its request is on the wire, a later
keystroke that only types on waits beside it (scheduler.py); when the answer
comes, that keystroke is served from it if it matches, else asked for at once.

A streamed answer (a slow server's) is shown as it grows, while no later key
came: the user sees the first words of a suggestion that takes a second to
finish, and may accept them. The finished answer replaces it, or withdraws it
if it is filtered out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .cache import SuggestionCache, may_serve
from .config import Config
from .context import LocalContext, Snapshot
from .debuglog import DebugLog
from .filtering import suggestion_lines
from .pipeline import Pipeline, Stage
from .render import InfoFigures
from .scheduler import Waiting
from .speculation import Speculation

Show = Callable[[Snapshot, list[str], InfoFigures], None]

# A growing answer is redrawn at most this often, and whenever a line is complete.
REDRAW_GAP_S = 0.05


class GrowingAnswer:
    """Shows a streamed answer while it grows, as long as its keystroke is the newest."""

    def __init__(
        self,
        show: Show,
        snapshot: Snapshot,
        is_current: Callable[[], bool],
        ring: Callable[[], str],
    ) -> None:
        self._show = show
        self._snapshot = snapshot
        self._is_current = is_current
        self._ring = ring
        self._drawn_at: float | None = None
        self._drawn_lines = 0

    @property
    def drawn(self) -> bool:
        """True once part of the answer was shown."""
        return self._drawn_at is not None

    def __call__(self, text: str) -> None:
        """The answer so far: draw it, unless drawn a moment ago or no longer wanted."""
        if not self._is_current():
            return
        now = asyncio.get_running_loop().time()
        lines_done = text.count("\n")
        if (
            self._drawn_at is not None
            and lines_done <= self._drawn_lines
            and now - self._drawn_at < REDRAW_GAP_S
        ):
            return
        lines = suggestion_lines(text, self._snapshot)
        if lines is None:
            return
        self._drawn_at = now
        self._drawn_lines = lines_done
        self._show(self._snapshot, lines, InfoFigures(growing=True, ring=self._ring()))

    def withdraw(self) -> None:
        """The finished answer shows nothing: take back what was drawn of it."""
        if self.drawn and self._is_current():
            self._show(self._snapshot, [], InfoFigures(growing=True))


class UserRequest(Stage):
    """Answers the keystrokes the cache could not: one request at a time, for the newest."""

    def __init__(
        self,
        config: Config,
        pipeline: Pipeline,
        *,
        cache: SuggestionCache,
        speculation: Speculation,
        log: DebugLog,
        show: Show,
        ring_info: Callable[[], str],
    ) -> None:
        super().__init__(config, pipeline)
        self._cache = cache
        self._speculation = speculation
        self._log = log
        self._show = show
        self._ring_info = ring_info

    def show_cached(self, snapshot: Snapshot, lines: list[str]) -> None:
        """Show a suggestion that needed no request."""
        self._show(snapshot, lines, InfoFigures(cached=True, ring=self._ring_info()))

    async def complete(self, seq: int, snapshot: Snapshot, context: LocalContext) -> None:
        """Answer ``snapshot`` (keystroke number ``seq``), unless a newer one made it stale."""
        pacing = self._sender.pacer.pacing(self._config)
        if not snapshot.manual and pacing.debounce_ms:
            await asyncio.sleep(pacing.debounce_ms / 1000)
        if not snapshot.manual and not self._sender.may_request():
            return
        if await self._speculation.settle(context) and not snapshot.manual:
            # The speculative request was for exactly this state: use its answer.
            hit = self._cache.get(context)
            if hit is not None:
                self._counters.speculative_adopted += 1
                self.show_cached(snapshot, hit.lines)
                return
        await self._scheduler.quiet()
        body = self._builder.body(
            self._projects.current,
            snapshot,
            context,
            n_predict=pacing.n_predict,
            t_max_predict_ms=pacing.t_max_predict_ms,
        )
        # While on the wire, a keystroke that types on may wait for this answer.
        self._scheduler.on_the_wire(lambda item: may_serve(context, item[1]))
        growing = GrowingAnswer(
            self._show, snapshot, lambda: self._scheduler.is_current(seq), self._ring_info
        )
        try:
            completion = await self._sender.send(body, on_text=growing)
        finally:
            waiting = self._scheduler.off_the_wire()
        lines = None
        if completion is not None:
            self._counters.waited_for(completion, len(body["input_extra"]))
            lines = suggestion_lines(completion.content, snapshot)
            if lines is not None:
                self._cache.put(context, lines)
        if waiting is not None:
            await self._serve_waiting(waiting)
            return
        if completion is None:
            growing.withdraw()
            return
        if not self._scheduler.is_current(seq):
            self._log.write("drop", seq=seq, reason="stale")
            self._counters.dropped_stale += 1
            return
        if lines is None:
            self._log.write("drop", seq=seq, reason="filtered", content=completion.content)
            self._counters.dropped_filtered += 1
            growing.withdraw()
            return
        n_ctx = self._builder.n_ctx
        self._show(
            snapshot, lines, InfoFigures(n_ctx=n_ctx, completion=completion, ring=self._ring_info())
        )

    async def _serve_waiting(self, waiting: Waiting[tuple[Snapshot, LocalContext]]) -> None:
        """The keystroke that waited for the answer just in: from it if it matches, else ask."""
        snapshot, context = waiting.item
        hit = self._cache.get(context)
        if hit is None:
            await self.complete(waiting.seq, snapshot, context)
            return
        self._log.write("served_on_arrival", seq=waiting.seq, typed=hit.typed)
        self._counters.served_on_arrival += 1
        self.show_cached(snapshot, hit.lines)
