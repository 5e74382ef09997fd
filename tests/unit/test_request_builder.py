"""The extra context's token budget and the request shaping, driven through the engine.

The fixtures (fake server, editor, clock) are tests/unit/engine_fixture.py's.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from llama_nvim.context import build_local_context
from llama_nvim.context_cost import FLOOR, SETTLE
from llama_nvim.engine import Engine
from llama_nvim.protocol import Timings
from llama_nvim.request_builder import BUDGET_FRAMING, BUDGET_SLACK, PlainShaping, RequestShaping
from tests.bench.naive import NaiveShaping
from tests.unit.engine_fixture import (
    FakeServer,
    admit_all,
    chunk_event,
    chunk_lines,
    event,
    finish,
    held,
    in_project,
    make_config,
    make_engine,
    names,
    send,
    settle,
    snapshot_of,
)

# -- the extra-context budget ---------------------------------------------------------------------


def sent_chunks(engine: Engine) -> int:
    context = build_local_context(snapshot_of(event()))
    return len(engine.builder.extra(engine.projects.current, context))


def expected_budget(
    n_ctx: int, n_batch: int, n_predict: int, scale: float = 1.0, *, far_suffix: bool = True
) -> int:
    # The far suffix (layout.py) has n_batch/4 tokens set aside for it.
    reserved = n_batch // 4 if far_suffix else 0
    left = n_ctx - n_batch - 2 * n_predict - reserved
    return int(left * BUDGET_SLACK / scale) - BUDGET_FRAMING


def budget_engine(
    n_batch: int, n_predict: int, n_chunks: int = 8, **options: Any
) -> tuple[Engine, int]:
    """An engine (no loop needed) whose ring holds ``n_chunks`` equal chunks; and their cost."""
    config = make_config(n_batch=n_batch, n_predict=n_predict, **options)
    engine, _ = make_engine(FakeServer(), config)
    engine.projects.current = "/nowhere"
    admit_all(engine, [(f"/nowhere/c{i}.py", f"c{i}") for i in range(n_chunks)])
    costs = {chunk.tokens for chunk in held(engine.ring)}
    assert len(costs) == 1
    return engine, costs.pop()


@pytest.mark.parametrize(("n_batch", "n_predict"), [(16, 8), (64, 1), (512, 128), (1024, 100)])
def test_the_budget_is_the_context_left_after_the_batch_and_twice_n_predict(
    n_batch: int, n_predict: int
) -> None:
    engine, each = budget_engine(n_batch, n_predict)
    base = n_batch + 2 * n_predict
    for n_ctx in range(base, base + 12 * each):
        engine.n_ctx = n_ctx
        budget = expected_budget(n_ctx, n_batch, n_predict)
        assert sent_chunks(engine) == min(8, max(0, budget) // each), n_ctx


def test_nothing_is_set_aside_for_a_far_suffix_when_the_suffix_is_not_split() -> None:
    engine, each = budget_engine(512, 128, n_suffix_fim=64)
    for n_ctx in range(768, 768 + 12 * each):
        engine.n_ctx = n_ctx
        budget = expected_budget(n_ctx, 512, 128, far_suffix=False)
        assert sent_chunks(engine) == min(8, max(0, budget) // each), n_ctx


def test_the_rings_cap_limits_the_chunks_sent_and_primed() -> None:
    engine, each = budget_engine(16, 8)
    engine.n_ctx = 100_000
    assert sent_chunks(engine) == 8
    engine.config = make_config(n_batch=16, n_predict=8, ring_budget_cap=3 * each)
    engine.builder.config = engine.config
    assert sent_chunks(engine) == 3
    # Priming asks for what requests send: the same newest chunks.
    body = engine.builder.priming_body(engine.projects.current, None)
    assert body is not None
    assert len(body["input_extra"]) == 3
    assert body["input_extra"][-1]["filename"] == "c7.py"


def big_chunks_engine(shaping: RequestShaping | None = None) -> tuple[Engine, int]:
    """An engine whose ring holds 8 chunks of ~300 tokens; and how many fit the cap's floor."""
    engine, _ = make_engine(FakeServer(), make_config(n_batch=16, n_predict=8))
    engine.projects.current = "/nowhere"
    words = [(i, "".join(f"_w{j}q{i}" for j in range(8))) for i in range(8)]
    admit_all(engine, [(f"/nowhere/c{i}.py", f"c{i}{tail}") for i, tail in words])
    if shaping is not None:
        engine.builder.shaping = shaping
    engine.n_ctx = 100_000
    at_floor = len(engine.ring.extra_for("/nowhere", int(FLOOR / engine.builder.token_scale)))
    assert 0 < at_floor < 8
    return engine, at_floor


def slow_replies(engine: Engine, cache_n: int) -> None:
    """SETTLE keystroke replies of 500 ms from a cache of ``cache_n`` tokens."""
    slow = Timings(prompt_n=70, prompt_ms=350.0, predicted_n=30, predicted_ms=150.0)
    for _ in range(SETTLE):
        engine.builder.context_cost.observe(dataclasses.replace(slow, cache_n=cache_n))


def test_a_higher_cap_reaches_requests_only_through_a_priming() -> None:
    engine, at_floor = big_chunks_engine()
    builder, project = engine.builder, engine.projects.current
    assert sent_chunks(engine) == 8
    # A slow server: the ring's budget is probed at the floor, at once.
    slow_replies(engine, 7000)
    assert sent_chunks(engine) == at_floor
    assert builder.rise_tokens(project) == 0
    # As slow at the floor: cached tokens are cheap, the whole budget is decided...
    slow_replies(engine, FLOOR + 500)
    assert sent_chunks(engine) == at_floor  # ...but requests keep the floor
    assert builder.context_cost.decision.cap is None
    whole = round(sum(c.tokens for c in held(engine.ring)) * builder.token_scale)
    assert builder.rise_tokens(project) == whole
    body = builder.priming_body(project, None)
    assert body is not None
    assert len(body["input_extra"]) == at_floor
    body = builder.priming_body(project, None, rise=True)
    assert body is not None
    assert len(body["input_extra"]) == 8
    assert sent_chunks(engine) == 8  # from that priming on
    assert builder.rise_tokens(project) == 0


def test_where_nothing_primes_a_higher_cap_applies_at_once() -> None:
    engine, at_floor = big_chunks_engine(PlainShaping())
    slow_replies(engine, 7000)
    assert sent_chunks(engine) == at_floor
    slow_replies(engine, FLOOR + 500)
    assert sent_chunks(engine) == 8
    assert engine.builder.rise_tokens(engine.projects.current) == 0


def test_the_far_suffix_is_sent_before_the_budget_is_known() -> None:
    below = tuple(f"line_{i} = {i}" for i in range(12))

    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server)
        assert engine.n_ctx == 0
        send(engine, "keystroke", event("x = ", below=below))
        await finish(engine)
        return server

    (body,) = asyncio.run(main()).bodies
    assert body["input_suffix"] == "\n" + "".join(f"{x}\n" for x in below[:3])
    assert body["input_extra"] == [
        {"filename": "m.py", "text": "".join(f"{x}\n" for x in below[3:])}
    ]


def test_n_predict_counts_twice_and_n_batch_once() -> None:
    # Formula-free: one more token of n_predict costs what two of n_ctx do.
    results: dict[tuple[int, int, int], int] = {}
    for n_batch, n_predict in [(16, 8), (17, 8), (16, 9)]:
        engine, _ = budget_engine(n_batch, n_predict)
        for n_ctx in range(40, 600):
            engine.n_ctx = n_ctx
            results[(n_ctx, n_batch, n_predict)] = sent_chunks(engine)
    for n_ctx in range(42, 600):
        assert results[(n_ctx, 17, 8)] == results[(n_ctx - 1, 16, 8)]
        assert results[(n_ctx, 16, 9)] == results[(n_ctx - 2, 16, 8)]
    assert len(set(results.values())) > 5


def test_the_budget_is_used_in_the_request_body() -> None:
    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server, make_config(n_batch=16, n_predict=8))
        admit_all(engine, [(f"/nowhere/c{i}.py", f"c{i}") for i in range(6)])
        each = held(engine.ring)[0].tokens
        # room for exactly three chunks
        engine.n_ctx = next(n for n in range(32, 10_000) if expected_budget(n, 16, 8) >= 3 * each)
        send(engine, "keystroke", event())
        await finish(engine)
        return server

    (body,) = asyncio.run(main()).bodies
    assert names(body) == ["c3.py", "c4.py", "c5.py"]  # the newest, oldest first


def test_no_extra_context_while_the_context_size_is_unknown() -> None:
    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        engine, _ = make_engine(server)
        admit_all(engine, [("/nowhere/c0.py", "c0")])
        send(engine, "keystroke", event())
        await settle()  # the reply makes the engine ask /props
        server.n_ctx = 4096
        send(engine, "keystroke", event("y = 1", tick=2))
        await settle()
        send(engine, "keystroke", event("y = 12", tick=3))
        await finish(engine)
        return engine, server

    engine, server = asyncio.run(main())
    assert [names(body) for body in server.bodies] == [[], [], ["c0.py"]]
    assert engine.n_ctx == 4096


def test_the_budget_scales_by_the_measured_server_tokens_per_local_token(
    projects: tuple[Path, Path],
) -> None:
    a, _ = projects
    n_batch, n_predict = 16, 8

    async def main() -> tuple[Engine, list[float], list[int]]:
        server = FakeServer()
        engine, _ = make_engine(server, make_config(n_batch=n_batch, n_predict=n_predict))
        engine.n_ctx = 600
        send(engine, "enter", {"filename": in_project(a, "m.py"), "cwd": "/"})
        # The server's model makes twice as many tokens of each chunk as we count
        # (a chunk costs its text plus its "cN.py\n" header plus one).
        server.tokens_for = lambda text: 2 * (len(text) + len("c0.py\n") + 1)
        scales: list[float] = []
        sent: list[int] = []
        for i in range(8):
            send(engine, "chunk", chunk_event(in_project(a, f"c{i}.py"), f"c{i}"))
            await engine.priming.admit_and_prime()
            scales.append(engine.builder.token_scale)
            sent.append(len(server.primes()[-1]["input_extra"]))
        await finish(engine)
        return engine, scales, sent

    engine, scales, sent = asyncio.run(main())
    each = held(engine.ring, str(a))[0].tokens
    measured = [(i + 1) * each for i in range(8)]
    # Below 200 measured tokens the counts are trusted as they are.
    assert scales == [2.0 if m >= 200 else 1.0 for m in measured]
    assert 1.0 in scales
    assert 2.0 in scales
    for i, scale in enumerate(scales):
        budget = expected_budget(600, n_batch, n_predict, scale)
        assert sent[i] == min(i + 1, max(0, budget) // each), i


def test_the_token_scale_never_drops_below_a_quarter(projects: tuple[Path, Path]) -> None:
    a, _ = projects

    async def main() -> Engine:
        server = FakeServer()
        server.tokens_for = lambda text: 1
        engine, _ = make_engine(server)
        send(engine, "enter", {"filename": in_project(a, "m.py"), "cwd": "/"})
        for i in range(6):
            send(engine, "chunk", chunk_event(in_project(a, f"c{i}.py"), f"c{i}"))
            await engine.priming.admit_and_prime()
        await finish(engine)
        return engine

    assert asyncio.run(main()).builder.token_scale == 0.25


def test_chunks_the_local_context_holds_are_not_sent() -> None:
    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server)
        engine.n_ctx = 8192
        admit_all(engine, [(f"/nowhere/c{i}.py", f"c{i}") for i in range(3)])
        send(engine, "keystroke", event("x = ", above=("def f():", *chunk_lines("c1"))))
        await finish(engine)
        return server

    (body,) = asyncio.run(main()).bodies
    assert names(body) == ["c0.py", "c2.py"]


def test_only_the_current_projects_chunks_are_sent(projects: tuple[Path, Path]) -> None:
    a, b = projects

    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server)
        engine.n_ctx = 8192
        admit_all(
            engine,
            [
                (in_project(a, "a0.py"), "a0"),
                (in_project(b, "b0.py"), "b0"),
                (in_project(a, "sub/a1.py"), "a1"),
            ],
        )
        send(engine, "keystroke", event("x = ", filename=in_project(a, "sub/m.py")))
        await settle()
        send(engine, "keystroke", event("y = ", tick=2, filename=in_project(b, "m.py")))
        await finish(engine)
        return server

    first, second = asyncio.run(main()).bodies
    assert names(first) == ["a0.py", "sub/a1.py"]
    assert names(second) == ["b0.py"]


# -- the benchmark's naive baseline (tests/bench/naive.py) -----------------------------------------


def test_naive_shaping_admits_at_once_and_sends_newest_first() -> None:
    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        engine, _ = make_engine(server, shaping=NaiveShaping())
        engine.n_ctx = 8192
        for i in range(3):
            send(engine, "chunk", chunk_event(f"/nowhere/c{i}.py", f"c{i}"))
            assert engine.ring.queued == 0
            assert engine.ring.state().chunks == i + 1
        await engine.priming.admit_and_prime()  # nothing queued: no priming either
        send(engine, "keystroke", event())
        await finish(engine)
        return engine, server

    engine, server = asyncio.run(main())
    assert [names(body) for body in server.bodies] == [["c2.py", "c1.py", "c0.py"]]
    assert engine.counters.primes == 0
    assert [c.filename for c in held(engine.ring)] == ["c0.py", "c1.py", "c2.py"]


def test_fifo_mode_queues_and_sends_oldest_first() -> None:
    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server)
        engine.n_ctx = 8192
        for i in range(3):
            send(engine, "chunk", chunk_event(f"/nowhere/c{i}.py", f"c{i}"))
        assert engine.ring.queued == 3
        assert engine.ring.state().chunks == 0
        while engine.ring.admit_one() is not None:
            pass
        send(engine, "keystroke", event())
        await finish(engine)
        return server

    (body,) = asyncio.run(main()).bodies
    assert names(body) == ["c0.py", "c1.py", "c2.py"]
