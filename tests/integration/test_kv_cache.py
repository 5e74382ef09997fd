"""The ring's promise, measured on a real llama-server: the server recomputes little.

These drive the engine directly (no Neovim) so each request is under the
test's control; the figures come from the server's own ``timings``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from llama_nvim.client import InfillClient
from llama_nvim.config import Config
from llama_nvim.context import LocalContext
from llama_nvim.engine import Engine
from llama_nvim.messages import (
    Enabled,
    Keystroke,
    RequestDone,
    RequestStarted,
    TextChunk,
    parse_event,
)
from llama_nvim.protocol import ExtraChunk, build_infill_body
from llama_nvim.render import RenderPlan
from llama_nvim.transport import LeanTransport
from tests.bench.naive import NaiveShaping
from tests.harness import LlamaServer, wait_until

pytestmark = pytest.mark.integration

SOURCE = Path(httpx.__file__).with_name("_models.py")


class RecordingEditor:
    def __init__(self) -> None:
        self.plans: list[RenderPlan] = []
        self.messages: list[str] = []

    def show(self, plan: RenderPlan) -> None:
        self.plans.append(plan)

    def notify(self, message: str, *, error: bool) -> None:
        self.messages.append(message)

    def request_started(self, started: RequestStarted) -> None:
        pass

    def request_done(self, done: RequestDone) -> None:
        pass


class RecordingTransport(httpx.AsyncBaseTransport):
    """Forwards to the real server (the plugin's transport) and keeps every /infill body."""

    def __init__(self) -> None:
        # httpx's default pool may reuse a connection the server is closing
        # after a streamed reply, and fail the request; the plugin's transport
        # sends it again on a fresh connection, as it does for users.
        self.inner = LeanTransport()
        self.bodies: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/infill"):
            self.bodies.append(json.loads(request.content))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def source_chunks(count: int, size: int = 40) -> list[list[str]]:
    """Pieces of a real third-party source file."""
    lines = SOURCE.read_text().split("\n")
    return [lines[i * size : (i + 1) * size] for i in range(count)]


def run(
    server: LlamaServer,
    test: Callable[[Engine, RecordingTransport], Awaitable[None]],
    shaping: NaiveShaping | None = None,
    **cfg: Any,
) -> None:
    settings: dict[str, Any] = {"debounce_ms": 0, "speculative": False, "ring_n_chunks": 8}
    config = dataclasses.replace(Config(), endpoint=server.infill_url, **{**settings, **cfg})

    async def main() -> None:
        transport = RecordingTransport()
        # These measure the server's cache, not its speed: a request may wait
        # for a slot another test's cancelled prompt still holds.
        client = InfillClient(config.endpoint, transport=transport, timeout_s=30)
        engine = Engine(config, RecordingEditor(), client, shaping=shaping)
        engine.handle(Enabled(True))  # as the Lua half tells it when set up
        engine.tokens.load()
        await engine.refresh_props()
        assert engine.n_ctx == server.ctx
        try:
            await test(engine, transport)
        finally:
            await engine.close()

    asyncio.run(main())


def keystroke(payload: dict[str, Any]) -> Keystroke:
    event = parse_event("keystroke", payload)
    assert isinstance(event, Keystroke)
    return event


def chunk(payload: dict[str, Any]) -> TextChunk:
    event = parse_event("chunk", payload)
    assert isinstance(event, TextChunk)
    return event


async def request(
    engine: Engine, line: str, filename: str = "/proj/app.py", above: list[str] | None = None
) -> None:
    """One user FIM request, awaited to the end."""
    above = ["import os", "", ""] if above is None else above
    event = {
        "buf": 1, "tick": 1, "row": len(above), "col": len(line), "above": above,
        "before": line, "after": "", "below": [], "filename": filename, "cwd": "/proj",
        "manual": True,
    }  # fmt: skip
    failed = engine.counters.failed
    engine.on_keystroke(keystroke(event))
    task = engine.scheduler.task
    assert task is not None
    await task
    assert engine.counters.failed == failed, engine.sender.last_problem


def offer(engine: Engine, chunks: list[list[str]], filename: str = "/proj/lib.py") -> None:
    for lines in chunks:
        engine.on_chunk(chunk({"lines": lines, "filename": filename, "cwd": "/proj"}))


def test_after_priming_a_request_reuses_the_cached_extra_context(
    llama_server: LlamaServer,
) -> None:
    async def scenario(engine: Engine, transport: RecordingTransport) -> None:
        offer(engine, source_chunks(6, size=20))
        engine.projects.current = "/proj"
        while engine.ring.queued:
            await engine.priming.admit_and_prime()
        assert engine.counters.primes == 6
        await request(engine, "value = ")
        c = engine.counters
        assert c.last_extra_chunks == 6
        assert c.last_tokens_evaluated > 1000
        assert c.last_cache_n >= 0.9 * c.last_tokens_evaluated, dataclasses.asdict(c)

    run(llama_server, scenario)


def test_after_priming_a_request_back_where_the_user_typed_recomputes_only_its_line(
    llama_server: LlamaServer,
) -> None:
    above = SOURCE.read_text().split("\n")[200:260]

    async def scenario(engine: Engine, transport: RecordingTransport) -> None:
        await request(engine, "        value = ", above=above)
        offer(engine, source_chunks(2, size=20))
        while engine.ring.queued:
            await engine.priming.admit_and_prime()
        primed = transport.bodies[-1]
        assert primed["n_predict"] == 0
        assert primed["input_prefix"], "primed with the local part"
        await request(engine, "        value = s", above=above)
        c = engine.counters
        assert c.last_extra_chunks == 2
        assert c.last_tokens_evaluated > 500  # the lines above alone are more
        assert c.last_prompt_n < 30, dataclasses.asdict(c)

    run(llama_server, scenario)


def test_evicting_the_oldest_chunk_costs_far_less_than_the_whole_extra_context(
    llama_server: LlamaServer,
) -> None:
    async def scenario(engine: Engine, transport: RecordingTransport) -> None:
        chunks = source_chunks(9, size=32)  # 8 fit in the budget
        offer(engine, chunks[:8])
        while engine.ring.admit_one():
            pass
        await request(engine, "value = ")
        await request(engine, "value = ")
        extra_tokens = engine.ring.last_extra_tokens
        assert engine.counters.last_extra_chunks == 8

        offer(engine, chunks[8:])
        engine.ring.admit_one()
        assert engine.ring.evicted == 1
        await request(engine, "value = ")
        recomputed = engine.counters.last_prompt_n
        sent = [c["text"] for c in transport.bodies[-1]["input_extra"]]
        assert sent == ["".join(f"{x}\n" for x in c) for c in chunks[1:9]], "order kept"
        # Only the new chunk and the local context are new; the 7 shifted
        # chunks come from the cache (--cache-reuse).
        assert recomputed < extra_tokens / 3, (recomputed, extra_tokens)

    run(llama_server, scenario)


def test_only_the_current_projects_chunks_are_sent_and_primed(
    llama_server: LlamaServer,
) -> None:
    async def scenario(engine: Engine, transport: RecordingTransport) -> None:
        chunks = source_chunks(4)
        engine.on_chunk(chunk({"lines": chunks[0], "filename": "/a/x.py", "cwd": "/a"}))
        engine.on_chunk(chunk({"lines": chunks[1], "filename": "/b/y.py", "cwd": "/b"}))
        engine.on_chunk(chunk({"lines": chunks[2], "filename": "/a/z.py", "cwd": "/a"}))
        while engine.ring.admit_one():
            pass
        event = {"before": "x = ", "filename": "/b/main.py", "cwd": "/b", "manual": True}
        engine.on_keystroke(keystroke(event))
        assert engine.scheduler.task is not None
        await engine.scheduler.task
        sent = transport.bodies[-1]["input_extra"]
        assert [c["filename"] for c in sent] == ["y.py"]

        await engine.priming.prime()  # primes the current project: /b
        assert [c["filename"] for c in transport.bodies[-1]["input_extra"]] == ["y.py"]

    run(llama_server, scenario)


def test_extra_context_stays_within_the_servers_budget(
    llama_server: LlamaServer,
) -> None:
    async def scenario(engine: Engine, transport: RecordingTransport) -> None:
        offer(engine, source_chunks(16, size=64))
        engine.projects.current = "/proj"
        while engine.ring.queued:
            await engine.priming.admit_and_prime()
        await request(engine, "value = ")
        body = transport.bodies[-1]
        budget = llama_server.ctx - 1024 - 2 * engine.config.n_predict
        assert 0 < engine.ring.last_extra_tokens <= budget
        real = sum(
            len(
                httpx.post(llama_server.url + "/tokenize", json={"content": c["text"]}).json()[
                    "tokens"
                ]
            )
            for c in body["input_extra"]
        )
        assert real <= budget, "the server never has to cut the extra context"
        assert engine.counters.last_extra_chunks < 16, "oldest chunks left out"

    run(llama_server, scenario, ring_n_chunks=16)


async def type_lines(engine: Engine, row: int, typed: list[str]) -> list[int]:
    """Type ``typed`` into SOURCE as new lines at ``row``, key by key, each request
    awaited; the server's prompt_n of every request."""
    lines = SOURCE.read_text().split("\n")
    recomputed = []
    for n, line in enumerate(typed):
        above = [*lines[:row], *typed[:n]]
        for end in range(1, len(line) + 1):
            event = {
                "buf": 1, "tick": 1, "row": row + n, "col": end, "above": above[-256:],
                "before": line[:end], "after": "", "below": lines[row : row + 64],
                "filename": "/proj/_models.py", "cwd": "/proj", "manual": True,
            }  # fmt: skip
            failed = engine.counters.failed
            engine.on_keystroke(keystroke(event))
            assert engine.scheduler.task is not None
            await engine.scheduler.task
            assert engine.counters.failed == failed, engine.sender.last_problem
            recomputed.append(engine.counters.last_prompt_n)
    return recomputed


TYPED = ["    def total(self) -> int:", "        return sum(self._sizes)", ""]


def test_typing_deep_in_a_file_recomputes_a_line_not_the_suffix(
    llama_server: LlamaServer,
) -> None:
    per_key: dict[str, list[int]] = {}
    fim_suffix: dict[str, int] = {}

    def measure(mode: str) -> Callable[[Engine, RecordingTransport], Awaitable[None]]:
        async def scenario(engine: Engine, transport: RecordingTransport) -> None:
            recomputed = await type_lines(engine, 600, TYPED)
            per_key[mode] = recomputed[1:]  # the first request computes everything
            text = transport.bodies[-1]["input_suffix"]
            reply = httpx.post(llama_server.url + "/tokenize", json={"content": text})
            fim_suffix[mode] = len(reply.json()["tokens"])

        return scenario

    run(llama_server, measure("naive"), shaping=NaiveShaping())
    run(llama_server, measure("llama.nvim"))
    naive, shaped = per_key["naive"], per_key["llama.nvim"]
    print(f"prompt_n per key: naive {naive}\nllama.nvim {shaped}")
    # Plain layout: the whole suffix after the typed text, on every key. (The
    # prefix, cut at its front by the server, shifts on every new line; with
    # --cache-reuse the server shifts its cache along instead of recomputing.)
    assert min(naive) > 200, naive
    # Shaped: the typed line and the few lines of the FIM suffix; on a new
    # line, also the line just finished.
    assert fim_suffix["llama.nvim"] < 60, fim_suffix
    assert max(shaped) <= fim_suffix["llama.nvim"] + 50, shaped
    assert sum(shaped) <= sum(naive) / 3, (sum(shaped), sum(naive))


def test_a_cancelled_request_stops_the_servers_work(llama_server: LlamaServer) -> None:
    """Closing the connection of a streamed request makes llama-server drop the task
    (a non-streamed one would run to its end and hold up the next request)."""

    def logged(what: str) -> int:
        return llama_server.log_path.read_text(errors="replace").count(what)

    async def scenario() -> None:
        client = InfillClient(llama_server.infill_url, timeout_s=30)
        long_text = SOURCE.read_text()[:12000]
        extra = [ExtraChunk(f"f{i}.py", long_text[i * 3000 : (i + 1) * 3000]) for i in range(4)]
        context = LocalContext("def f():\n", "    x = ", "\n", 4)
        body = build_infill_body(context, extra, Config(), n_predict=64, t_max_predict_ms=1000)
        before, started = logged("cancel task"), logged("processing task")
        task = asyncio.ensure_future(client.infill(body))
        # Cancelled once the server is at work on it (waited for in a thread,
        # so that this loop goes on sending the request meanwhile).
        await asyncio.get_running_loop().run_in_executor(
            None,
            lambda: wait_until(
                lambda: logged("processing task") > started,
                timeout=10,
                interval=0.005,
                what="the server to start the task",
            ),
        )
        task.cancel()
        await asyncio.wait({task})
        await client.aclose()
        wait_until(
            lambda: logged("cancel task") > before, timeout=10, what="the server to cancel the task"
        )

    asyncio.run(scenario())
