"""The core: keystroke in, suggestion out.

Data flows one way: an editor event becomes a Snapshot, the Snapshot a local
context; the context is answered from the suggestion cache or by a request
carrying the ring's extra context; the reply is filtered and turned into a
RenderPlan for the editor. The engine owns the state that spans keystrokes: the
sequence number that makes older replies stale, the one request allowed in
flight, the ring, the cache and the problem reporter. It never blocks: all
waiting happens in asyncio tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .alternatives import Alternatives
from .cache import SuggestionCache
from .client import InfillClient
from .config import Config
from .context import (
    LocalContext,
    Snapshot,
    accepted_snapshot,
    before_is_whole,
    build_local_context,
    clean_text,
)
from .debuglog import DebugLog
from .filtering import suggestion_lines
from .layout import Layout
from .privacy import Privacy
from .problems import ProblemReporter, ServerProblem, describe
from .protocol import Completion, ExtraChunk, build_infill_body, build_priming_body
from .render import RenderPlan, Stats, info_text
from .ring import Chunk, Ring, line_set, project_of, relative_name
from .tokens import TokenCounter

# The user counts as idle this long after their last keystroke in insert mode.
IDLE_AFTER_S = 3.0
# Room left in the extra-context budget for tokenizer differences (we count
# with cl100k, the server with the model's own) and the per-request framing.
_BUDGET_SLACK = 0.9
_BUDGET_FRAMING = 32
# Requests for another suggestion before saying there is none.
_ALTERNATIVE_TRIES = 3


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
    cache_hits: int = 0
    dropped_stale: int = 0
    dropped_filtered: int = 0
    speculative: int = 0
    speculative_adopted: int = 0
    primes: int = 0
    chunks_offered: int = 0
    prompt_n: int = 0
    cache_n: int = 0
    sent_tokens: int = 0
    # The last request the user waited for (not speculative, not priming).
    last_prompt_n: int = 0
    last_cache_n: int = 0
    last_tokens_evaluated: int = 0
    last_extra_chunks: int = 0

    @property
    def user_requests(self) -> int:
        """Requests made because the user typed or asked, not background ones."""
        return self.requests - self.speculative - self.primes

    def as_dict(self) -> dict[str, int]:
        """Plain dict for RPC."""
        return {**self.__dict__, "user_requests": self.user_requests}


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
    ) -> None:
        self.config = config
        self.enabled = config.enable_at_startup
        self.auto_fim = config.auto_fim
        self.counters = Counters()
        self.client = client
        self.n_ctx = 0
        # The full text of the last problem, for :LlamaStatus (messages shown
        # while typing are cut to the command line's width).
        self.last_problem = ""
        self.tokens = tokens or TokenCounter()
        self.log = log or DebugLog("", enabled=False)
        self.ring = Ring(
            config.ring_n_chunks,
            count_tokens=self.tokens.count,
            similarity=config.ring_similarity,
        )
        self.cache = SuggestionCache(config.max_cache_keys)
        self.layout = Layout(config.n_batch, config.n_suffix_fim, self.tokens.count)
        self.privacy = Privacy(config.exclude_globs, config.disabled_filetypes)
        self._editor = editor
        self._clock = clock
        self._reporter = ProblemReporter()
        self._seq = 0
        self._task: asyncio.Task[None] | None = None  # the user's request, or priming
        self._speculation: asyncio.Task[None] | None = None
        self._speculation_key: tuple[str, str, str] | None = None
        self._speculation_wanted = asyncio.Event()  # the user got there: skip the delay
        # Cancelled tasks whose connection may still be closing: nothing new is
        # sent until they are gone, so at most one request is ever in flight.
        self._closing: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._in_insert = False
        self._last_keystroke = float("-inf")
        self._project = ""
        self._projects: dict[str, str] = {}
        # Where the user last typed, in which project: priming sends what a
        # request from there would send, so the two share the server's cache.
        self._last_place: tuple[str, Snapshot, LocalContext] | None = None
        self._alternatives: Alternatives | None = None  # what next/previous cycle through
        self._tokenizer_tried = False
        # Server tokens per counted token: cl100k is close to Qwen's tokenizer,
        # but not to every model's; admitted chunks are measured with the
        # server's /tokenize to correct the budget.
        self._measured_server = 0
        self._measured_local = 0

    @property
    def naive(self) -> bool:
        """The benchmark's baseline: no priming, no shaping for the KV cache."""
        return self.config.ring_order == "mru"

    @property
    def _splits_suffix(self) -> bool:
        """True if the far suffix goes into the extra context (see layout.py)."""
        return not self.naive and self.config.n_suffix_fim < self.config.n_suffix

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Start the background work: server props and the ring's idle-time updates."""
        self._spawn(self.refresh_props())
        if self.config.ring_n_chunks and not self.naive:
            self._spawn(self._ring_loop())

    async def close(self) -> None:
        """Cancel pending work and close the connection."""
        self._supersede()
        tasks = {t for t in (self._task, self._speculation, *self._background) if t is not None}
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await self.client.aclose()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)  # asyncio holds tasks weakly
        task.add_done_callback(self._background.discard)

    async def _load_tokenizer(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.tokens.load)
        self.layout.forget_counts()  # they were estimates

    async def refresh_props(self) -> None:
        """Learn the server's context size (for the extra-context budget)."""
        try:
            props = await self.client.props()
        except ServerProblem:
            return  # a completion request will report the problem
        self.n_ctx = props.n_ctx

    # -- events --------------------------------------------------------------------

    def on_keystroke(self, event: Mapping[str, Any]) -> None:
        """The cursor moved or the text changed in insert mode (or Ctrl+F was pressed)."""
        self.counters.events += 1
        self._in_insert = True
        self._last_keystroke = self._clock()
        snapshot = Snapshot.from_event(event)
        for chunk in event.get("chunks") or ():
            if isinstance(chunk, Mapping):
                self.on_chunk(chunk)
        seq = self._supersede()
        self.log.write(
            "keystroke", seq=seq, manual=snapshot.manual, row=snapshot.row, col=snapshot.col
        )
        if not self._wanted(snapshot):
            self.log.write("skip", seq=seq, reason="disabled, excluded or mid-line")
            return
        self._project = self._project_for(snapshot.filename, snapshot.cwd)
        context = build_local_context(snapshot)
        self._last_place = (self._project, snapshot, context)
        if not snapshot.manual:
            hit = self.cache.get(context)
            if hit is not None:
                self.log.write("cache_hit", seq=seq, typed=hit.typed)
                self.counters.cache_hits += 1
                self._show(snapshot, hit.lines, Stats(cached=True, ring=self._ring_info()))
                self._speculate(snapshot, hit.lines)
                return
        self._task = asyncio.ensure_future(self._complete(seq, snapshot, context))

    def on_cycle(self, event: Mapping[str, Any]) -> None:
        """The next / previous suggestion key, pressed while ``event["shown"]`` is shown."""
        step = event.get("step")
        shown = event.get("shown")
        if not isinstance(step, int) or not isinstance(shown, list) or not self.enabled:
            return
        snapshot = Snapshot.from_event(event)
        if self.privacy.excluded(snapshot.filename, snapshot.filetype):
            return
        seq = self._supersede()
        alternatives = self._alternatives
        if alternatives is None or alternatives.position != snapshot.position:
            shown_lines = [clean_text(line) for line in shown if isinstance(line, str)]
            alternatives = self._alternatives = Alternatives(snapshot.position, shown_lines)
        self._project = self._project_for(snapshot.filename, snapshot.cwd)
        context = build_local_context(snapshot)
        recalled = alternatives.step(step)
        self.log.write("cycle", seq=seq, step=step, at=alternatives.label())
        if recalled is not None:
            self._show_alternative(snapshot, context, alternatives, Stats(cached=True))
            return
        self._task = asyncio.ensure_future(
            self._fetch_alternative(seq, snapshot, context, alternatives)
        )

    def on_cancel(self) -> None:
        """Whatever is pending is no longer wanted (hint kept by typing, menu shown)."""
        self._supersede()

    def on_leave(self) -> None:
        """Insert mode was left: the user is idle now."""
        self._in_insert = False
        self._supersede()

    def on_enter(self, event: Mapping[str, Any]) -> None:
        """A file buffer was entered: its project is the one to prime for."""
        filename = clean_text(str(event.get("filename") or ""))
        self._project = self._project_for(filename, clean_text(str(event.get("cwd") or "")))

    def on_chunk(self, event: Mapping[str, Any]) -> None:
        """Text the user touched (yank, buffer enter/leave/save, cursor jump)."""
        lines = event.get("lines")
        filename = clean_text(str(event.get("filename") or ""))
        filetype = str(event.get("filetype") or "")
        if not isinstance(lines, list) or self.privacy.excluded(filename, filetype):
            return
        project = self._project_for(filename, clean_text(str(event.get("cwd") or "")))
        text_lines = [clean_text(line) for line in lines if isinstance(line, str)]
        if self.ring.offer(text_lines, relative_name(filename, project), project):
            self.log.write("chunk_queued", file=relative_name(filename, project), lines=len(lines))
            self.counters.chunks_offered += 1
            if self.naive:
                # No idle-time admission in the baseline: in at once, unprimed,
                # but measured like any chunk so the token budget holds.
                chunk = self.ring.admit_one()
                if chunk is not None:
                    self._spawn(self._measure(chunk))

    def set_enabled(self, enabled: bool) -> None:
        """:LlamaEnable / :LlamaDisable."""
        self.enabled = enabled
        if not enabled:
            self._supersede()
            self._editor.hide()

    # -- deciding --------------------------------------------------------------------

    def _supersede(self) -> int:
        """Make every earlier reply stale and cancel the task that waits for one."""
        self._seq += 1
        self._cancel(self._task)
        return self._seq

    def _cancel(self, task: asyncio.Task[None] | None) -> None:
        # Once only: a second cancel() would interrupt the task's clean-up
        # (httpx closing its connection), leaking the socket half-closed.
        if task is not None and not task.done() and task not in self._closing:
            task.cancel()
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _quiet(self) -> None:
        """Wait until every cancelled request has closed its connection."""
        me = asyncio.current_task()
        pending = {t for t in self._closing if t is not me}
        if pending:
            await asyncio.wait(pending)

    def _wanted(self, snapshot: Snapshot) -> bool:
        if not self.enabled or self.privacy.excluded(snapshot.filename, snapshot.filetype):
            return False
        if snapshot.manual:
            return True
        if not self.auto_fim:
            return False
        # Mid-line with real text to the right, a completion rarely fits.
        return len(snapshot.after) <= self.config.max_line_suffix

    def _project_for(self, filename: str, cwd: str) -> str:
        directory = filename.rpartition("/")[0] if filename else ""
        key = f"{directory}\0{cwd}"
        project = self._projects.get(key)
        if project is None:
            if len(self._projects) > 4096:
                self._projects.clear()
            project = self._projects[key] = project_of(filename, cwd)
        return project

    def _extra(
        self, context: LocalContext | None, far_suffix: ExtraChunk | None = None
    ) -> list[ExtraChunk]:
        """The ring's chunks for this request, then the far suffix, within the budget."""
        if not self.n_ctx:
            # No ring chunks until /props tells the budget; the far suffix is
            # part of the local context and never left out for that.
            return [far_suffix] if far_suffix is not None else []
        n_ctx_budget = self.n_ctx - self.config.n_batch - 2 * self.config.n_predict
        if self._splits_suffix:
            # Always the same reservation, whether this request has a far
            # suffix or not: the ring's share must not change with the cursor.
            n_ctx_budget -= self.layout.far_budget
        budget = int(n_ctx_budget * _BUDGET_SLACK / self.token_scale) - _BUDGET_FRAMING
        if budget <= 0:
            return [far_suffix] if far_suffix is not None and n_ctx_budget > 0 else []
        local = line_set(context.text) if context is not None else None
        chunks = self.ring.extra_for(self._project, budget, local)
        if self.naive:
            chunks.reverse()  # most recently used first: reshuffles the cached prompt
        extra = [chunk.to_extra() for chunk in chunks]
        if far_suffix is not None:
            extra.append(far_suffix)
        return extra

    def _request_body(
        self,
        snapshot: Snapshot,
        context: LocalContext,
        *,
        t_max_predict_ms: int,
        explore: bool = False,
    ) -> dict[str, Any]:
        """The /infill body for ``snapshot``: local context laid out, extra context added."""
        local, extra = self._laid_out(snapshot, context)
        return build_infill_body(
            local,
            extra,
            self.config,
            n_predict=self.config.n_predict,
            t_max_predict_ms=t_max_predict_ms,
            explore=explore,
        )

    def _laid_out(
        self, snapshot: Snapshot, context: LocalContext
    ) -> tuple[LocalContext, list[ExtraChunk]]:
        """What a request from ``snapshot`` sends: its local part and its extra context.

        Plain in the naive baseline; otherwise laid out by ``layout``, the far
        suffix going last in the extra context.
        """
        if self.naive:
            return context, self._extra(context)
        filename = relative_name(snapshot.filename, self._project)
        placed = self.layout.place(snapshot, filename, self.token_scale)
        return placed.local, self._extra(context, placed.far_suffix)

    @property
    def token_scale(self) -> float:
        """Server tokens per locally counted token, as measured so far."""
        if self._measured_local < 200:
            return 1.0
        return max(0.25, self._measured_server / self._measured_local)

    def _ring_info(self) -> str:
        if not self.config.ring_n_chunks:
            return ""
        return self.ring.stats(self._project).describe()

    # -- requests ----------------------------------------------------------------------

    async def _complete(
        self,
        seq: int,
        snapshot: Snapshot,
        context: LocalContext,
    ) -> None:
        if not snapshot.manual and self.config.debounce_ms:
            await asyncio.sleep(self.config.debounce_ms / 1000)
        if not snapshot.manual and not self._reporter.may_request(self._clock()):
            return
        if await self._settle_speculation(context) and not snapshot.manual:
            # The speculative request was for exactly this state: use its answer.
            hit = self.cache.get(context)
            if hit is not None:
                self.counters.speculative_adopted += 1
                self._show(snapshot, hit.lines, Stats(cached=True, ring=self._ring_info()))
                self._speculate(snapshot, hit.lines)
                return
        await self._quiet()
        body = self._request_body(
            snapshot, context, t_max_predict_ms=self.config.t_max_predict_ms_first
        )
        completion = await self._send(body)
        if completion is None:
            return
        self.counters.last_prompt_n = completion.timings.prompt_n
        self.counters.last_cache_n = completion.timings.cache_n
        self.counters.last_tokens_evaluated = completion.tokens_evaluated
        self.counters.last_extra_chunks = len(body["input_extra"])
        lines = suggestion_lines(completion.content, snapshot)
        if lines is not None:
            self.cache.put(context, lines)
        if seq != self._seq:
            self.log.write("drop", seq=seq, reason="stale")
            self.counters.dropped_stale += 1
            return
        if lines is None:
            self.log.write("drop", seq=seq, reason="filtered", content=completion.content)
            self.counters.dropped_filtered += 1
            return
        stats = Stats(n_ctx=self.n_ctx, completion=completion, ring=self._ring_info())
        self._show(snapshot, lines, stats)
        self._speculate(snapshot, lines)

    async def _fetch_alternative(
        self, seq: int, snapshot: Snapshot, context: LocalContext, alternatives: Alternatives
    ) -> None:
        """Ask for suggestions until one differs from those seen here (a few tries)."""
        await self._quiet()
        for _ in range(_ALTERNATIVE_TRIES):
            body = self._request_body(
                snapshot, context, t_max_predict_ms=self.config.t_max_predict_ms, explore=True
            )
            completion = await self._send(body)
            if completion is None:
                return
            if seq != self._seq:
                self.counters.dropped_stale += 1
                return
            lines = suggestion_lines(completion.content, snapshot)
            if lines is not None and alternatives.add(lines):
                stats = Stats(n_ctx=self.n_ctx, completion=completion)
                self._show_alternative(snapshot, context, alternatives, stats)
                return
        self._editor.notify("llama.nvim: no other suggestion here", error=False)

    def _show_alternative(
        self, snapshot: Snapshot, context: LocalContext, alternatives: Alternatives, stats: Stats
    ) -> None:
        lines = alternatives.shown
        stats = dataclasses.replace(stats, ring=self._ring_info(), alternative=alternatives.label())
        # Cached as the suggestion for this place: what is shown is what
        # coming back here shows.
        self.cache.put(context, lines)
        self._show(snapshot, lines, stats)
        self._speculate(snapshot, lines)

    async def _settle_speculation(self, context: LocalContext) -> bool:
        """Make room for a user request; True if the speculation was for ``context``."""
        task = self._speculation
        if task is None or task.done():
            return False
        if self._speculation_key == _key(context):
            self._speculation_wanted.set()
            await asyncio.wait({task})
            return True
        self._cancel(task)
        return False

    def _speculate(self, snapshot: Snapshot, lines: list[str]) -> None:
        """Fetch, into the cache only, the suggestion for after this one is accepted."""
        if not self.config.speculative or not self.config.max_cache_keys:
            return
        if len(lines) > 1 and not before_is_whole(snapshot):
            # The line the cursor leaves was cut to max_line_bytes: we cannot
            # know the text the editor will send for it after the accept.
            return
        after_accept = accepted_snapshot(
            snapshot,
            lines,
            n_prefix=self.config.n_prefix,
            max_prefix_bytes=self.config.max_prefix_bytes,
            max_line_bytes=self.config.max_line_bytes,
        )
        context = build_local_context(after_accept)
        if self.cache.get(context) is not None:
            return
        self._cancel(self._speculation)
        self._speculation_key = _key(context)
        self._speculation_wanted = asyncio.Event()
        self._speculation = asyncio.ensure_future(self._fetch_speculative(after_accept, context))

    async def _fetch_speculative(self, snapshot: Snapshot, context: LocalContext) -> None:
        if self.config.speculative_delay_ms:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    self._speculation_wanted.wait(), self.config.speculative_delay_ms / 1000
                )
        await self._quiet()
        self.counters.speculative += 1
        body = self._request_body(snapshot, context, t_max_predict_ms=self.config.t_max_predict_ms)
        completion = await self._send(body, quiet=True)
        if completion is None:
            return
        lines = suggestion_lines(completion.content, snapshot)
        if lines is not None:
            self.cache.put(context, lines)

    async def _send(self, body: dict[str, Any], *, quiet: bool = False) -> Completion | None:
        self.counters.requests += 1
        self.log.write(
            "request",
            background=quiet,
            n_predict=body["n_predict"],
            extra_chunks=len(body["input_extra"]),
            prompt=body["prompt"],
        )
        try:
            completion = await self.client.infill(body)
        except asyncio.CancelledError:
            self.log.write("cancelled")
            self.counters.cancelled += 1
            raise
        except ServerProblem as problem:
            self.log.write("problem", kind=problem.kind.value, detail=problem.detail)
            self.counters.failed += 1
            if quiet:
                return None  # background work: the user's own requests report problems
            self.last_problem = describe(problem, self.client.endpoint)
            if self._reporter.on_problem(problem, self._clock()):
                self._editor.notify("llama.nvim: " + self.last_problem, error=True)
            return None
        if self._reporter.on_success():
            self._editor.notify("llama.nvim: llama-server answers again", error=False)
        if not self.n_ctx:
            self._spawn(self.refresh_props())
        t = completion.timings
        self.log.write(
            "reply",
            content=completion.content,
            prompt_n=t.prompt_n,
            cache_n=t.cache_n,
            predicted_n=t.predicted_n,
            ms=round(t.prompt_ms + t.predicted_ms, 1),
        )
        self.counters.prompt_n += completion.timings.prompt_n
        self.counters.cache_n += completion.timings.cache_n
        self.counters.sent_tokens += completion.tokens_evaluated
        return completion

    def _show(self, snapshot: Snapshot, lines: list[str], stats: Stats) -> None:
        self.counters.shown += 1
        plan = RenderPlan(snapshot, lines, info_text(stats), self.config.show_info)
        self._editor.show(plan)

    # -- the ring's idle-time work ---------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counters plus the state of the ring, the cache and the request slot."""
        ring = self.ring.stats()
        return {
            **self.counters.as_dict(),
            "ring_chunks": ring.chunks,
            "ring_queued": ring.queued,
            "ring_evicted": ring.evicted,
            "cache_entries": len(self.cache),
            "in_flight": int(self._busy()),
            "n_ctx": self.n_ctx,
            "token_scale_pct": round(self.token_scale * 100),
            # For leak checks: tasks alive in the host and its resident memory.
            "tasks": len(asyncio.all_tasks()),
            "rss_kb": _rss_kb(),
        }

    def _idle(self) -> bool:
        return not self._in_insert or self._clock() - self._last_keystroke > IDLE_AFTER_S

    def _busy(self) -> bool:
        return any(t is not None and not t.done() for t in (self._task, self._speculation))

    async def _ring_loop(self) -> None:
        """Every ring_update_ms, while the user is idle, admit one chunk and prime it."""
        while True:
            await asyncio.sleep(self.config.ring_update_ms / 1000)
            if not self.ring.queued or not self._idle() or self._busy():
                continue
            if not self.tokens.exact and not self._tokenizer_tried:
                # Loading the tokenizer holds the GIL for a few hundred ms: do it
                # once, while the user is idle, not at start-up when they type.
                self._tokenizer_tried = True
                await self._load_tokenizer()
            if not self._reporter.may_request(self._clock()):
                continue
            self._task = asyncio.ensure_future(self.admit_and_prime())

    async def admit_and_prime(self) -> None:
        """Move one queued chunk into the ring, measure it, and prime it if it is ours."""
        chunk = self.ring.admit_one()
        if chunk is None:
            return
        await self._quiet()
        await self._measure(chunk)
        if self.enabled and chunk.project == self._project:
            await self._prime()

    async def _measure(self, chunk: Chunk) -> None:
        """Count a chunk with the server's own tokenizer, to correct our estimates."""
        with contextlib.suppress(ServerProblem):
            server_tokens = await self.client.tokenize(chunk.text)
            self._measured_server += server_tokens
            self._measured_local += chunk.tokens

    async def _prime(self) -> None:
        """Have the server compute the extra context now, while nobody waits.

        The chunks are those a request from where the user last typed would
        send (with the far suffix): chunks that requests leave out but priming
        put in would cost the next request everything after them.
        """
        last = self._last_place
        if last is not None and last[0] == self._project:
            _, snapshot, context = last
            _, extra = self._laid_out(snapshot, context)
        else:
            extra = self._extra(None)
        if not extra:
            return
        await self._quiet()
        self.counters.primes += 1
        await self._send(build_priming_body(extra, self.config), quiet=True)


def _key(context: LocalContext) -> tuple[str, str, str]:
    return (context.prefix, context.prompt, context.suffix)


def _rss_kb() -> int:
    """Resident memory of this process (Linux), 0 where unknown."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
