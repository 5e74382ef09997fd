"""The core: keystroke in, suggestion out.

Data flows one way: an editor event becomes a Snapshot, the Snapshot a local
context and a request, the reply is filtered and turned into a RenderPlan for
the editor. The engine owns the only state that spans keystrokes: the sequence
number that makes older replies stale, the one task allowed in flight, and the
problem reporter. It never blocks: all waiting happens in asyncio tasks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .client import InfillClient
from .config import Config
from .context import Snapshot, build_local_context
from .filtering import suggestion_lines
from .problems import ProblemReporter, ServerProblem, describe
from .protocol import Completion, build_infill_body
from .render import RenderPlan, Stats, info_text


class Editor(Protocol):
    """What the engine needs from the editor; implemented over pynvim and in tests."""

    def show(self, plan: RenderPlan) -> None:
        """Draw a suggestion (the editor drops it if the anchor moved on)."""

    def hide(self) -> None:
        """Remove any suggestion."""

    def notify(self, message: str, *, error: bool) -> None:
        """Tell the user something, once."""


@dataclass
class Counters:
    """What the engine did; read by :LlamaStatus, tests and the benchmark."""

    events: int = 0
    requests: int = 0
    cancelled: int = 0
    failed: int = 0
    shown: int = 0
    dropped_stale: int = 0
    dropped_filtered: int = 0
    prompt_n: int = 0
    cache_n: int = 0

    def as_dict(self) -> dict[str, int]:
        """Plain dict for RPC."""
        return dict(self.__dict__)


class Engine:
    """Turns editor events into at most one in-flight /infill request at a time."""

    def __init__(
        self,
        config: Config,
        editor: Editor,
        client: InfillClient,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.enabled = config.enable_at_startup
        self.auto_fim = config.auto_fim
        self.counters = Counters()
        self.n_ctx = 0
        # The full text of the last problem, for :LlamaStatus (messages shown
        # while typing are cut to the command line's width).
        self.last_problem = ""
        self._editor = editor
        self.client = client
        self._clock = clock
        self._reporter = ProblemReporter()
        self._seq = 0
        self._task: asyncio.Task[None] | None = None

    # -- events ----------------------------------------------------------------

    def on_keystroke(self, event: Mapping[str, Any]) -> None:
        """The cursor moved or the text changed in insert mode (or Ctrl+F was pressed)."""
        self.counters.events += 1
        snapshot = Snapshot.from_event(event)
        seq = self._supersede()
        if not self._wanted(snapshot):
            return
        previous, self._task = self._task, None
        self._task = asyncio.ensure_future(self._complete(seq, snapshot, previous))

    def on_cancel(self) -> None:
        """Whatever is pending is no longer wanted (insert left, hint kept, menu shown)."""
        self._supersede()

    def set_enabled(self, enabled: bool) -> None:
        """:LlamaEnable / :LlamaDisable."""
        self.enabled = enabled
        if not enabled:
            self._supersede()
            self._editor.hide()

    async def close(self) -> None:
        """Cancel pending work and close the connection."""
        self._supersede()
        if self._task is not None:
            await asyncio.wait({self._task})
        await self.client.aclose()

    # -- internals ---------------------------------------------------------------

    def _supersede(self) -> int:
        """Make every earlier reply stale and cancel the task that waits for one."""
        self._seq += 1
        if self._task is not None and not self._task.done():
            self._task.cancel()
        return self._seq

    def _wanted(self, snapshot: Snapshot) -> bool:
        if not self.enabled:
            return False
        if snapshot.filetype in self.config.disabled_filetypes:
            return False
        if snapshot.manual:
            return True
        if not self.auto_fim:
            return False
        # Mid-line with real text to the right, a completion rarely fits.
        return len(snapshot.after) <= self.config.max_line_suffix

    async def _complete(
        self, seq: int, snapshot: Snapshot, previous: asyncio.Task[None] | None
    ) -> None:
        # At most one request in flight: wait until the superseded one has
        # really closed its connection before opening ours.
        if previous is not None and not previous.done():
            await asyncio.wait({previous})
        if not snapshot.manual and self.config.debounce_ms:
            await asyncio.sleep(self.config.debounce_ms / 1000)
        if not snapshot.manual and not self._reporter.may_request(self._clock()):
            return
        body = build_infill_body(
            build_local_context(snapshot),
            (),
            self.config,
            n_predict=self.config.n_predict,
            t_max_predict_ms=self.config.t_max_predict_ms_first,
        )
        completion = await self._send(body)
        if completion is None:
            return
        if seq != self._seq:
            self.counters.dropped_stale += 1
            return
        lines = suggestion_lines(completion.content, snapshot)
        if lines is None:
            self.counters.dropped_filtered += 1
            return
        self._show(snapshot, lines, Stats(n_ctx=self.n_ctx, completion=completion))

    async def _send(self, body: dict[str, Any]) -> Completion | None:
        self.counters.requests += 1
        try:
            completion = await self.client.infill(body)
        except asyncio.CancelledError:
            self.counters.cancelled += 1
            raise
        except ServerProblem as problem:
            self.counters.failed += 1
            self.last_problem = describe(problem, self.client.endpoint)
            if self._reporter.on_problem(problem, self._clock()):
                self._editor.notify("llama.nvim: " + self.last_problem, error=True)
            return None
        if self._reporter.on_success():
            self._editor.notify("llama.nvim: llama-server answers again", error=False)
        self.counters.prompt_n += completion.timings.prompt_n
        self.counters.cache_n += completion.timings.cache_n
        return completion

    def _show(self, snapshot: Snapshot, lines: list[str], stats: Stats) -> None:
        self.counters.shown += 1
        plan = RenderPlan(snapshot, lines, info_text(stats), self.config.show_info)
        self._editor.show(plan)
