"""The next / previous keys: recall the suggestions seen here, or fetch another one."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from .alternatives import Alternatives
from .cache import SuggestionCache
from .config import Config
from .context import LocalContext, Snapshot, build_local_context
from .debuglog import DebugLog
from .filtering import suggestion_lines
from .messages import Cycle
from .pipeline import Pipeline, Stage
from .render import Editor, InfoFigures

# Requests for another suggestion before saying there is none.
_ALTERNATIVE_TRIES = 3

Show = Callable[[Snapshot, list[str], InfoFigures], None]


class Cycling(Stage):
    """What next/previous cycle through, and the requests for more."""

    def __init__(
        self,
        config: Config,
        cache: SuggestionCache,
        pipeline: Pipeline,
        *,
        editor: Editor,
        log: DebugLog,
        show: Show,
        ring_info: Callable[[], str],
    ) -> None:
        super().__init__(config, pipeline)
        self._editor = editor
        self._log = log
        self._cache = cache
        self._show = show
        self._ring_info = ring_info
        self._alternatives: Alternatives | None = None

    def cycle(self, event: Cycle) -> None:
        """The key was pressed while ``event.shown`` is shown."""
        snapshot = event.snapshot
        seq = self._scheduler.supersede(keep_priming=True)
        alternatives = self._alternatives
        if alternatives is None or alternatives.position != snapshot.position:
            alternatives = self._alternatives = Alternatives(snapshot.position, list(event.shown))
        self._projects.enter(snapshot.filename, snapshot.cwd)
        context = build_local_context(snapshot)
        recalled = alternatives.step(event.step)
        self._log.write("cycle", seq=seq, step=event.step, at=alternatives.label())
        if recalled is not None:
            self._show_alternative(snapshot, context, alternatives, InfoFigures(cached=True))
            return
        self._scheduler.run(self._fetch(seq, snapshot, context, alternatives))

    async def _fetch(
        self, seq: int, snapshot: Snapshot, context: LocalContext, alternatives: Alternatives
    ) -> None:
        """Ask for suggestions until one differs from those seen here (a few tries)."""
        await self._scheduler.quiet()
        for _ in range(_ALTERNATIVE_TRIES):
            body = self._builder.body(
                self._projects.current,
                snapshot,
                context,
                t_max_predict_ms=self._config.t_max_predict_ms,
                explore=True,
            )
            completion = await self._sender.send(body)
            if completion is None:
                return
            if not self._scheduler.is_current(seq):
                self._counters.dropped_stale += 1
                return
            lines = suggestion_lines(completion.content, snapshot)
            if lines is not None and alternatives.add(lines):
                figures = InfoFigures(n_ctx=self._builder.n_ctx, completion=completion)
                self._show_alternative(snapshot, context, alternatives, figures)
                return
        self._editor.notify("llama.nvim: no other suggestion here", error=False)

    def _show_alternative(
        self,
        snapshot: Snapshot,
        context: LocalContext,
        alternatives: Alternatives,
        figures: InfoFigures,
    ) -> None:
        lines = alternatives.shown
        figures = dataclasses.replace(
            figures, ring=self._ring_info(), alternative=alternatives.label()
        )
        # Cached as the suggestion for this place: what is shown is what
        # coming back here shows.
        self._cache.put(context, lines)
        self._show(snapshot, lines, figures)
