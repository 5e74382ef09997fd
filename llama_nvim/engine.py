"""The core: typed events in, suggestions out; wires the parts that do the work.

A keystroke (messages.py) becomes a Snapshot, the Snapshot a local context
(context.py); the context is answered from the suggestion cache (cache.py) or
by a request (user_request.py) the scheduler lets run (scheduler.py), built by
request_builder.py with the ring's extra context and sent by sender.py (to the
server slot slot_lease.py leased for this editor, once /props told it); the
reply is filtered (filtering.py) and turned into a RenderPlan (render.py) for
the editor.
Around that: speculation.py fetches the next suggestion ahead, cycling.py
serves the next / previous keys, priming.py feeds the ring while the user is
idle. Nothing here blocks: all waiting happens in asyncio tasks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from .cache import SuggestionCache
from .client import InfillClient
from .config import Config
from .context import Snapshot, build_local_context
from .counters import Counters, figures
from .cycling import Cycling
from .debuglog import DebugLog
from .layout import Layout
from .messages import Cancel, Cycle, Enabled, Enter, Event, Keystroke, Leave, Shown, TextChunk
from .pipeline import Pipeline
from .priming import Priming
from .privacy import Privacy
from .problems import ServerProblem
from .projects import Place, Projects
from .render import Editor, InfoFigures, RenderPlan, info_text
from .request_builder import RequestBuilder, RequestShaping
from .ring import Ring, relative_name
from .scheduler import Scheduler
from .sender import Sender
from .slot_lease import SlotChoice, SlotLease
from .speculation import Speculation
from .tokens import TokenCounter
from .user_request import UserRequest


class Engine:
    """Turns editor events into at most one in-flight /infill request at a time."""

    def __init__(
        self,
        config: Config,
        editor: Editor,
        client: InfillClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        tokens: TokenCounter | None = None,
        log: DebugLog | None = None,
        shaping: RequestShaping | None = None,
        lease: SlotLease | None = None,
    ) -> None:
        self.config = config
        self.enabled = False  # until the Lua half, which owns the switch, tells (Enabled)
        self.auto_fim = config.auto_fim
        self.counters = Counters()
        self.client = client
        self.tokens = tokens or TokenCounter()
        self.log = log or DebugLog("", enabled=False)
        self.ring = Ring.from_config(config, self.tokens.count)
        self.cache = SuggestionCache(config.max_cache_keys)
        self.layout = Layout(config.n_batch, config.n_suffix_fim, self.tokens.count)
        self.privacy = Privacy.from_config(config)
        self.projects = Projects()
        self.scheduler = Scheduler()
        self.builder = RequestBuilder(config, self.ring, self.layout, shaping or RequestShaping())
        self.slots = SlotChoice(config.id_slot, lease)
        self.sender = Sender(client, self.counters, editor, self.log, clock, self._after_reply)
        self.builder.context_cost = self.sender.pacer.context
        pipeline = Pipeline(self.scheduler, self.builder, self.sender, self.counters, self.projects)
        self.speculation = Speculation(config, self.cache, pipeline)
        self.priming = Priming(
            config,
            self.ring,
            pipeline,
            client=client,
            tokens=self.tokens,
            clock=clock,
            enabled=lambda: self.enabled,
        )
        self.cycling = Cycling(
            config,
            self.cache,
            pipeline,
            editor=editor,
            log=self.log,
            show=self._show,
            ring_info=self._ring_info,
        )
        self.requests = UserRequest(
            config,
            pipeline,
            cache=self.cache,
            speculation=self.speculation,
            log=self.log,
            show=self._show,
            ring_info=self._ring_info,
        )
        self._editor = editor
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def n_ctx(self) -> int:
        """The server's context size, 0 until /props told it."""
        return self.builder.n_ctx

    @n_ctx.setter
    def n_ctx(self, value: int) -> None:
        self.builder.n_ctx = value

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Start the background work: server props and the ring's idle-time updates."""
        self._spawn(self.refresh_props())
        if self.config.ring_n_chunks and self.builder.shaping.primes_when_idle:
            self._spawn(self.priming.loop(self._busy))

    async def close(self) -> None:
        """Give the slot back, cancel pending work and close the connection."""
        # First, before any await: a reloaded engine leases as soon as it starts.
        self.slots.release()
        self.builder.id_slot = self.slots.id_slot
        self.scheduler.supersede()
        running = (*self.scheduler.running(), self.speculation.task, *self._background)
        tasks = {t for t in running if t is not None}
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await self.client.aclose()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)  # asyncio holds tasks weakly
        task.add_done_callback(self._background.discard)

    async def refresh_props(self) -> None:
        """Learn the server's context size (for the extra-context budget) and its slots."""
        try:
            props = await self.client.props()
        except ServerProblem:
            return  # a completion request will report the problem
        self.n_ctx = props.n_ctx
        self.builder.id_slot = self.slots.learned(props.total_slots)
        self.log.write("slot", id_slot=self.builder.id_slot, why=self.slots.describe())

    def _after_reply(self) -> None:
        if not self.n_ctx:
            self._spawn(self.refresh_props())

    # -- events --------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        """One typed event from the Lua half."""
        if isinstance(event, Keystroke):
            self.on_keystroke(event)
        elif isinstance(event, Cycle):
            self.on_cycle(event)
        elif isinstance(event, TextChunk):
            self.on_chunk(event)
        elif isinstance(event, Enter):
            self.projects.enter(event.filename, event.cwd)
        elif isinstance(event, Leave):
            self.priming.left_insert()
            self.scheduler.supersede(keep_priming=True)
        elif isinstance(event, Cancel):
            # The pending reply is no longer wanted (hint kept by typing, menu shown);
            # priming is no reply anyone waits for.
            self.scheduler.supersede(keep_priming=True)
        elif isinstance(event, Shown):
            if self.enabled and event.after_accept is not None:
                self.speculation.start(event.after_accept)
        elif isinstance(event, Enabled):
            self.set_enabled(event.enabled)

    def on_keystroke(self, event: Keystroke) -> None:
        """The cursor moved or the text changed in insert mode (or Ctrl+F was pressed)."""
        self.counters.events += 1
        self.priming.typed()
        snapshot = event.snapshot
        if not self._wanted(snapshot):
            seq = self.scheduler.supersede(keep_priming=True)
            self.log.write("skip", seq=seq, reason="disabled, excluded or mid-line")
            return
        project = self.projects.enter(snapshot.filename, snapshot.cwd)
        context = build_local_context(snapshot)
        self.projects.last_place = Place(project, snapshot, context)
        if not snapshot.manual:
            hit = self.cache.get(context)
            if hit is not None:
                seq = self.scheduler.supersede(keep_priming=True)
                self.log.write("cache_hit", seq=seq, typed=hit.typed)
                self.counters.cache_hits += 1
                self.requests.show_cached(snapshot, hit.lines)
                return
            waiting = self.scheduler.wait_behind((snapshot, context))
            if waiting is not None:
                self.log.write("wait", seq=waiting, row=snapshot.row, col=snapshot.col)
                self.counters.waited += 1
                return
        seq = self.scheduler.supersede(keep_priming=True)
        self.log.write(
            "keystroke", seq=seq, manual=snapshot.manual, row=snapshot.row, col=snapshot.col
        )
        self.scheduler.run(self.requests.complete(seq, snapshot, context))

    def on_cycle(self, event: Cycle) -> None:
        """The next / previous suggestion key, pressed while ``event.shown`` is shown."""
        if self.enabled and self._may_read(event.snapshot):
            self.cycling.cycle(event)

    def on_chunk(self, event: TextChunk) -> None:
        """Text the user touched (yank, buffer enter/leave/save, cursor jump)."""
        project = self.projects.project_for(event.filename, event.cwd)
        if self.privacy.excluded(event.filename, event.filetype, project, event.buffer_enabled):
            return
        filename = relative_name(event.filename, project)
        if self.ring.offer(event.lines, filename, project):
            self.log.write("chunk_queued", file=filename, lines=len(event.lines))
            self.counters.chunks_offered += 1
            self.priming.offered(lambda chunk: self._spawn(self.priming.measure(chunk)))

    def set_enabled(self, enabled: bool) -> None:
        """The Lua half turned suggestions on or off (it hides the hint itself)."""
        self.enabled = enabled
        if not enabled:
            self.scheduler.supersede()

    def _wanted(self, snapshot: Snapshot) -> bool:
        if not self.enabled or not self._may_read(snapshot):
            return False
        if snapshot.manual:
            return True
        if not self.auto_fim:
            return False
        # Mid-line with real text to the right, a completion rarely fits.
        return len(snapshot.after) <= self.config.max_line_suffix

    def _may_read(self, at: Snapshot) -> bool:
        # Secrets, .llamaignore, filetype rules and the buffer's own switch.
        project = self.projects.project_for(at.filename, at.cwd)
        excluded = self.privacy.excluded(at.filename, at.filetype, project, at.buffer_enabled)
        for problem in self.privacy.take_problems():
            self._editor.notify(f"llama.nvim: {problem}", error=True)
        return not excluded

    def _ring_info(self) -> str:
        if not self.config.ring_n_chunks:
            return ""
        return self.ring.state(self.projects.current).describe()

    def _show(self, snapshot: Snapshot, lines: list[str], figures: InfoFigures) -> None:
        """Show ``lines``; once drawn, the editor's ``shown`` event starts the speculation."""
        if not figures.growing:
            self.counters.shown += 1
        cached = not figures.growing and (figures.cached or figures.completion is None)
        info = info_text(figures)
        plan = RenderPlan(snapshot, lines, info, self.config.show_info, cached, figures.growing)
        self._editor.show(plan)

    # -- figures -------------------------------------------------------------------------

    def _busy(self) -> bool:
        return self.scheduler.busy() or self.speculation.busy()

    def figures(self) -> dict[str, int]:
        """LlamaNvimStats(): counters, the state of ring, cache and request slot, the pacing."""
        pacing = self.sender.pacer.figures(self.config)
        return pacing | figures(
            self.counters,
            self.ring.state(),
            cache_entries=len(self.cache),
            in_flight=self._busy(),
            n_ctx=self.n_ctx,
            token_scale=self.builder.token_scale,
            id_slot=self.builder.id_slot,
        )
