"""One fixture stack for the engine's unit tests: a fake server, editor and clock.

The fake llama-server is an httpx.MockTransport handler: it answers /infill,
/tokenize and /props, records every body, counts the /infill requests in
flight at once, and can hold requests on an asyncio.Event to play a slow
server. Tests wait for the engine's tasks to finish (``settle``), never for
time to pass; the engine's clock is a fake the tests move by hand. Token counts
are text lengths (``CharTokens``) so budgets can be worked out by hand. Events
go through the same parser as the Lua half's (``send``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

from llama_nvim.client import InfillClient
from llama_nvim.config import Config
from llama_nvim.context import Snapshot
from llama_nvim.engine import Engine
from llama_nvim.messages import Keystroke, RequestDone, RequestStarted, parse_event
from llama_nvim.render import RenderPlan
from llama_nvim.ring import Chunk, Ring
from llama_nvim.tokens import TokenCounter

ENDPOINT = "http://127.0.0.1:8012/infill"


def after_accept(plan: RenderPlan) -> dict[str, Any]:
    """The snapshot payload the Lua half sends (``shown``) for a drawn ``plan``.

    Only for the small buffers of these tests, far below every cap; the real
    one is context.lua's, checked against the editor in test_lua_parity.py.
    """
    s, lines = plan.snapshot, plan.lines
    if len(lines) == 1:
        above, before = s.above, s.before + lines[0]
        col = s.col + len(lines[0].encode("utf-8", "surrogatepass"))
    else:
        above, before = (*s.above, s.before + lines[0], *lines[1:-1]), lines[-1]
        col = len(before.encode("utf-8", "surrogatepass"))
    return {
        "buf": s.buf,
        "tick": s.tick,
        "row": s.row + len(lines) - 1,
        "col": col,
        "above": list(above),
        "before": before,
        "after": s.after,
        "below": list(s.below),
        "filename": s.filename,
        "filetype": s.filetype,
        "cwd": s.cwd,
        "vcol": len(before),
        "tabstop": s.tabstop,
    }


class FakeEditor:
    """Records what the engine asks the editor to do; reports each drawn hint as Lua does."""

    def __init__(self) -> None:
        self.shown: list[RenderPlan] = []
        self.messages: list[tuple[str, bool]] = []
        self.requests: list[RequestStarted | RequestDone] = []
        # Where the Lua half's events go (the engine); set by make_engine.
        self.report: Callable[[str, dict[str, Any]], None] | None = None

    def show(self, plan: RenderPlan) -> None:
        self.shown.append(plan)
        # As the Lua half: the fetch ahead is asked for once a hint is finished.
        if self.report is not None and plan.lines and not plan.growing:
            self.report("shown", {"after_accept": after_accept(plan)})

    def notify(self, message: str, *, error: bool) -> None:
        self.messages.append((message, error))

    def request_started(self, started: RequestStarted) -> None:
        self.requests.append(started)

    def request_done(self, done: RequestDone) -> None:
        self.requests.append(done)


class Clock:
    """The engine's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CharTokens(TokenCounter):
    """One token per character; never loads a tokenizer."""

    def load(self) -> None:
        pass

    def count(self, text: str) -> int:
        return len(text)


def reply_to(prompt: str) -> str:
    """The fake server's suggestion for a prompt (never what a test types next by accident)."""
    return f"@{len(prompt)}"


def ok_streamed(pieces: list[str], gates: list[asyncio.Event]) -> httpx.Response:
    """A streamed /infill reply: each piece an event, after ``gates[i]`` is set if there is one."""

    async def events() -> AsyncIterator[bytes]:
        for i, piece in enumerate(pieces):
            if i < len(gates):
                await gates[i].wait()
            yield b"data: " + json.dumps({"content": piece, "stop": False}).encode() + b"\n\n"
        final = json.loads(ok("").content) | {"stop": True}
        yield b"data: " + json.dumps(final).encode() + b"\n\n"

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=events())


def ok(content: str, **fields: Any) -> httpx.Response:
    """A successful /infill reply."""
    data = {
        "content": content,
        "tokens_cached": 30,
        "tokens_evaluated": 12,
        "timings/prompt_n": 3,
        "timings/prompt_ms": 1.0,
        "timings/predicted_n": 2,
        "timings/predicted_ms": 2.0,
        "timings/cache_n": 27,
    }
    data.update(fields)
    return httpx.Response(200, json=data)


def refused(request: dict[str, Any]) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused")


class FakeServer:
    """A llama-server stand-in for httpx.MockTransport."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []  # /infill bodies, in arrival order
        self.tokenized: list[str] = []
        self.props_asked = 0
        self.n_ctx = 0  # 0: /props answers 404
        self.total_slots = 1
        self.active = 0
        self.peak = 0
        self.cancelled = 0
        self.arrived = asyncio.Event()
        # Requests for which ``hold`` is true wait for ``gate`` (open at first).
        self.gate = asyncio.Event()
        self.gate.set()
        self.hold: Callable[[dict[str, Any]], bool] = lambda body: True
        # Loop turns a request takes to close once cancelled (a real connection
        # close yields to the loop: anyio's SocketStream.aclose awaits sleep(0)).
        self.close_turns = 2
        self.answer: Callable[[dict[str, Any]], httpx.Response] = lambda body: ok(
            reply_to(body["prompt"])
        )
        self.tokens_for: Callable[[str], int] | None = len  # None: /tokenize 404s

    def hold_when(self, hold: Callable[[dict[str, Any]], bool]) -> asyncio.Event:
        """Hold the requests ``hold`` picks until the returned gate is set."""
        self.hold = hold
        self.gate = asyncio.Event()
        return self.gate

    async def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/props":
            self.props_asked += 1
            if not self.n_ctx:
                return httpx.Response(404, json={"error": {"code": 404, "message": "Not Found"}})
            settings = {"n_ctx": self.n_ctx}
            props = {"default_generation_settings": settings, "total_slots": self.total_slots}
            return httpx.Response(200, json=props)
        if path == "/tokenize":
            content = json.loads(request.content)["content"]
            self.tokenized.append(content)
            if self.tokens_for is None:
                return httpx.Response(404, json={"error": {"message": "Not Found"}})
            return httpx.Response(200, json={"tokens": [1] * self.tokens_for(content)})
        assert path == "/infill", path
        return await self._infill(json.loads(request.content))

    async def _infill(self, body: dict[str, Any]) -> httpx.Response:
        self.bodies.append(body)
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            self.arrived.set()
            if self.hold(body):
                await self.gate.wait()
            return self.answer(body)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            try:
                # (a second cancel may cut the close short; it still ends)
                for _ in range(self.close_turns):
                    await asyncio.sleep(0)  # one loop turn, not a timed wait
            finally:
                self.active -= 1

    async def next_request(self) -> dict[str, Any]:
        """Wait until a request reaches the server; return its body."""
        await asyncio.wait_for(self.arrived.wait(), 5)  # a bound, should the engine hang
        self.arrived.clear()
        return self.bodies[-1]

    def prompts(self) -> list[str]:
        """The prompts of the completion requests (not priming)."""
        return [body["prompt"] for body in self.bodies if body["n_predict"]]

    def primes(self) -> list[dict[str, Any]]:
        """The priming requests."""
        return [body for body in self.bodies if body["n_predict"] == 0]


def make_config(**options: Any) -> Config:
    """No debounce, and no speculation unless asked for (then with no delay)."""
    base = Config(debounce_ms=0, speculative=False, speculative_delay_ms=0)
    return dataclasses.replace(base, **options)


def make_engine(
    server: FakeServer, config: Config | None = None, clock: Clock | None = None, **kwargs: Any
) -> tuple[Engine, FakeEditor]:
    """An engine talking to ``server``, drawing on a FakeEditor."""
    editor = FakeEditor()
    client = InfillClient(ENDPOINT, transport=httpx.MockTransport(server.handle))
    engine = Engine(
        config or make_config(),
        editor,
        client,
        clock=clock or Clock(),
        tokens=CharTokens(),
        **kwargs,
    )
    editor.report = lambda kind, payload: send(engine, kind, payload)
    # As the Lua half does when it is set up.
    send(engine, "enabled", {"enabled": engine.config.enable_at_startup})
    return engine, editor


def send(engine: Engine, kind: str, payload: dict[str, Any] | None = None) -> None:
    """Hand the engine one event as the Lua half would send it."""
    event = parse_event(kind, payload if payload is not None else {})
    assert event is not None, (kind, payload)
    engine.handle(event)


def snapshot_of(payload: dict[str, Any]) -> Snapshot:
    """The Snapshot a keystroke payload carries."""
    event = parse_event("keystroke", payload)
    assert isinstance(event, Keystroke), payload
    return event.snapshot


def event(
    before: str = "x = ",
    after: str = "",
    *,
    above: tuple[str, ...] = ("def f():",),
    below: tuple[str, ...] = (),
    tick: int = 1,
    manual: bool = False,
    filename: str = "/nowhere/m.py",
    filetype: str = "python",
    cwd: str = "/nowhere",
) -> dict[str, Any]:
    """A keystroke payload at the end of ``before``."""
    return {
        "buf": 1,
        "tick": tick,
        "row": len(above),
        "col": len(before.encode("utf-8", "surrogateescape")),
        "above": list(above),
        "before": before,
        "after": after,
        "below": list(below),
        "filename": filename,
        "filetype": filetype,
        "cwd": cwd,
        "vcol": len(before),
        "tabstop": 8,
        "manual": manual,
    }


async def settle() -> None:
    """Wait until every task but this one has finished; re-raise any that failed."""
    current = asyncio.current_task()
    while True:
        others = {task for task in asyncio.all_tasks() if task is not current}
        if not others:
            return
        done, pending = await asyncio.wait(others, timeout=5)
        assert not pending, f"tasks still pending after 5 s: {pending}"
        for task in done:
            if task.cancelled() or task.exception() is None or _wait_for_inner(task):
                continue
            raise AssertionError(f"engine task failed: {task.exception()!r}")


def _wait_for_inner(task: asyncio.Task[Any]) -> bool:
    """The task asyncio.wait_for wraps the client's exchange in: its awaiter handles it."""
    return getattr(task.get_coro(), "__qualname__", "") == "InfillClient._exchange"


async def turns(n: int) -> None:
    """Let the event loop run ``n`` iterations (no timed wait)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def finish(engine: Engine) -> None:
    """Settle, then close the engine."""
    await settle()
    await engine.close()


def chunk_lines(tag: str) -> list[str]:
    """Three lines whose words no other tag shares."""
    return [f"{tag}_{i} = {tag}{i}()" for i in range(3)]


def chunk_text(tag: str) -> str:
    """The text a chunk of ``chunk_lines(tag)`` holds."""
    return "".join(f"{line}\n" for line in chunk_lines(tag))


def chunk_event(path: str, tag: str, *, filetype: str = "python") -> dict[str, Any]:
    """A chunk payload of ``chunk_lines(tag)`` from ``path``."""
    return {"lines": chunk_lines(tag), "filename": path, "filetype": filetype, "cwd": "/nowhere"}


def names(body: dict[str, Any]) -> list[str]:
    """The file names of a body's extra context, in order."""
    return [extra["filename"] for extra in body["input_extra"]]


def in_project(root: Path, name: str) -> str:
    """A file name inside a project root."""
    return str(root / name)


def admit_all(engine: Engine, paths_and_tags: list[tuple[str, str]]) -> None:
    """Offer one chunk per (path, tag) and admit them all into the ring."""
    for path, tag in paths_and_tags:
        send(engine, "chunk", chunk_event(path, tag))
    while engine.ring.admit_one() is not None:
        pass


def held(ring: Ring, project: str = "/nowhere") -> list[Chunk]:
    """The ring's chunks of ``project``, oldest first (no budget leaves any out)."""
    return ring.extra_for(project, sys.maxsize)
