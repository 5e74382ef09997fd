"""Speculation: fetch, into the cache only, the suggestion for after this one is accepted."""

from __future__ import annotations

import asyncio
import contextlib

from .cache import SuggestionCache
from .config import Config
from .context import LocalContext, Snapshot, build_local_context
from .filtering import suggestion_lines
from .pacing import T_MAX_PREDICT
from .pipeline import Pipeline, Stage


def _key(context: LocalContext) -> tuple[str, str, str]:
    return (context.prefix, context.prompt, context.suffix)


class Speculation(Stage):
    """At most one background request, for the state after accepting the shown hint."""

    def __init__(
        self,
        config: Config,
        cache: SuggestionCache,
        pipeline: Pipeline,
    ) -> None:
        super().__init__(config, pipeline)
        self._cache = cache
        self._task: asyncio.Task[None] | None = None
        self._key: tuple[str, str, str] | None = None
        self._wanted = asyncio.Event()  # the user got there: skip the delay

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The speculative request, as last started."""
        return self._task

    def busy(self) -> bool:
        """True while a speculative request runs."""
        return self._task is not None and not self._task.done()

    async def settle(self, context: LocalContext) -> bool:
        """Make room for a user request; True if the speculation was for ``context``."""
        task = self._task
        if task is None or task.done():
            return False
        if self._key == _key(context):
            self._wanted.set()
            await asyncio.wait({task})
            return True
        self._scheduler.cancel(task)
        return False

    def start(self, after_accept: Snapshot) -> None:
        """Speculate on the hint just drawn being accepted; ``after_accept`` is the editor then.

        The editor builds that snapshot (messages.Shown), so its cache key is
        the one the keystroke after the accept will have.
        """
        config = self._config
        if not config.speculative or not config.max_cache_keys:
            return
        context = build_local_context(after_accept)
        if self._cache.get(context) is not None:
            return
        self._scheduler.cancel(self._task)
        self._key = _key(context)
        self._wanted = asyncio.Event()
        self._task = asyncio.ensure_future(self._fetch(after_accept, context))

    async def _fetch(self, snapshot: Snapshot, context: LocalContext) -> None:
        # Paced as the user's requests are (pacing.py): on a slow server a
        # fetch ahead waits for a pause too, and asks for what fits the target.
        pacing = self._sender.pacer.pacing(self._config)
        delay_ms = max(self._config.speculative_delay_ms, pacing.debounce_ms)
        if delay_ms:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), delay_ms / 1000)
        await self._scheduler.quiet()
        self._counters.speculative += 1
        t_max = pacing.t_max_predict_ms if T_MAX_PREDICT in pacing.auto else None
        body = self._builder.body(
            self._projects.current,
            snapshot,
            context,
            n_predict=pacing.n_predict,
            t_max_predict_ms=t_max or self._config.t_max_predict_ms,
        )
        completion = await self._sender.send(body, quiet=True)
        if completion is None:
            return
        lines = suggestion_lines(completion.content, snapshot)
        if lines is not None:
            self._cache.put(context, lines)
