"""The suggestion cache and speculation, driven through the engine.

The fixtures (fake server, editor, clock) are tests/unit/engine_fixture.py's.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest

from llama_nvim.config import Config
from llama_nvim.context import LocalContext, build_local_context
from llama_nvim.engine import Engine
from llama_nvim.render import RenderPlan
from tests.unit.engine_fixture import (
    FakeEditor,
    FakeServer,
    after_accept,
    event,
    finish,
    make_config,
    make_engine,
    ok,
    reply_to,
    send,
    settle,
    snapshot_of,
    turns,
)

# -- the cache ---------------------------------------------------------------------------------


def test_a_cache_hit_is_shown_at_once_without_a_request() -> None:
    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await settle()
        assert len(editor.shown) == 1
        send(engine, "keystroke", event("x = ", tick=2))
        # shown inside on_keystroke: no loop turn, no request
        assert len(editor.shown) == 2
        await finish(engine)
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert server.prompts() == ["x = "]
    assert [plan.lines for plan in editor.shown] == [[reply_to("x = ")]] * 2
    assert editor.shown[1].snapshot.tick == 2
    assert editor.shown[1].info.startswith("llama: cached")
    assert engine.counters.cache_hits == 1
    assert engine.counters.requests == 1


def test_typing_through_a_cached_suggestion_is_shown_at_once() -> None:
    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        server.answer = lambda body: ok("foo(1, 2)\nbar()")
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await settle()
        send(engine, "keystroke", event("x = fo", tick=2))
        assert editor.shown[-1].lines == ["o(1, 2)", "bar()"]
        send(engine, "keystroke", event("x = foo(1,", tick=3))
        assert editor.shown[-1].lines == [" 2)", "bar()"]
        assert editor.shown[-1].snapshot.before == "x = foo(1,"
        await settle()
        assert len(server.bodies) == 1
        # a character the suggestion does not have: ask the server
        send(engine, "keystroke", event("x = foo(1,3", tick=4))
        assert len(editor.shown) == 3
        await finish(engine)
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert server.prompts() == ["x = ", "x = foo(1,3"]
    assert engine.counters.cache_hits == 2
    assert len(editor.shown) == 4


def test_without_a_cache_every_keystroke_asks_the_server() -> None:
    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        engine, _ = make_engine(server, make_config(max_cache_keys=0, speculative=True))
        for tick in (1, 2):
            send(engine, "keystroke", event("x = ", tick=tick))
            await settle()
        await engine.close()
        return engine, server

    engine, server = asyncio.run(main())
    assert server.prompts() == ["x = ", "x = "]  # no speculation without a cache either
    assert engine.counters.cache_hits == 0
    assert engine.counters.speculative == 0


# -- speculation -------------------------------------------------------------------------------


def accepted_context_of(ev: dict[str, Any], lines: list[str]) -> LocalContext:
    """The local context of the state after ``lines`` shown at ``ev`` are accepted."""
    plan = RenderPlan(snapshot_of(ev), lines, "", 0)
    return build_local_context(snapshot_of(after_accept(plan)))


def test_a_speculative_reply_goes_into_the_cache_and_is_never_shown() -> None:
    first = event("x = ")
    accepted = "x = " + reply_to("x = ")

    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        engine, editor = make_engine(server, make_config(speculative=True))
        send(engine, "keystroke", first)
        await settle()
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert server.prompts() == ["x = ", accepted]
    speculative = server.bodies[1]
    assert speculative["t_max_predict_ms"] == engine.config.t_max_predict_ms
    assert speculative["input_prefix"] == "def f():\n"
    assert [plan.lines for plan in editor.shown] == [[reply_to("x = ")]]
    hit = engine.cache.get(accepted_context_of(first, [reply_to("x = ")]))
    assert hit is not None
    assert hit.lines == [reply_to(accepted)]
    assert engine.counters.speculative == 1
    assert engine.counters.user_requests == 1


def test_speculation_for_a_multi_line_suggestion_predicts_the_next_line() -> None:
    async def main() -> FakeServer:
        server = FakeServer()
        server.answer = lambda body: ok("foo(\n    1,\n)" if body["prompt"] == "x = " else "z")
        engine, _ = make_engine(server, make_config(speculative=True))
        send(engine, "keystroke", event("x = ", below=("print(x)",)))
        await finish(engine)
        return server

    speculative = asyncio.run(main()).bodies[1]
    assert speculative["input_prefix"] == "def f():\nx = foo(\n    1,\n"
    assert speculative["prompt"] == ")"
    assert speculative["input_suffix"] == "\nprint(x)\n"


def test_speculation_in_flight_is_adopted_when_the_user_gets_there() -> None:
    accepted = "x = " + reply_to("x = ")

    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        server.hold_when(lambda body: body["prompt"] == accepted)
        engine, editor = make_engine(server, make_config(speculative=True))
        send(engine, "keystroke", event("x = "))
        await server.next_request()
        assert (await server.next_request())["prompt"] == accepted  # held
        send(engine, "keystroke", event(accepted, tick=2))  # the user accepts
        await turns(20)
        assert len(server.bodies) == 2, "no second request for the same state"
        assert len(editor.shown) == 1
        server.gate.set()
        await finish(engine)
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert server.prompts() == ["x = ", accepted, accepted + reply_to(accepted)]
    assert [plan.lines for plan in editor.shown] == [[reply_to("x = ")], [reply_to(accepted)]]
    assert editor.shown[1].snapshot.tick == 2
    assert editor.shown[1].info.startswith("llama: cached")
    assert engine.counters.speculative_adopted == 1
    assert engine.counters.user_requests == 1
    assert server.cancelled == 0
    assert server.peak == 1


def test_speculation_in_flight_is_cancelled_when_the_user_does_something_else() -> None:
    accepted = "x = " + reply_to("x = ")
    first = event("x = ")

    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        server.hold_when(lambda body: body["prompt"] == accepted)
        engine, editor = make_engine(server, make_config(speculative=True))
        send(engine, "keystroke", first)
        await server.next_request()
        await server.next_request()  # the speculative one, held
        send(engine, "keystroke", event("x = 99", tick=2))
        assert (await server.next_request())["prompt"] == "x = 99"
        server.gate.set()
        await finish(engine)
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert server.cancelled == 1
    assert engine.counters.cancelled == 1
    assert server.peak == 1
    assert [plan.snapshot.tick for plan in editor.shown] == [1, 2]
    assert engine.counters.speculative_adopted == 0
    # the cancelled speculation left nothing in the cache
    assert engine.cache.get(accepted_context_of(first, [reply_to("x = ")])) is None


def test_no_speculation_when_the_next_state_is_already_cached() -> None:
    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        engine, _ = make_engine(server, make_config(speculative=True))
        send(engine, "keystroke", event("x = "))
        await settle()
        send(engine, "keystroke", event("x = ", tick=2))  # cache hit; next state cached too
        await finish(engine)
        return engine, server

    engine, server = asyncio.run(main())
    assert len(server.bodies) == 2
    assert engine.counters.speculative == 1


def test_a_cache_hit_speculates_one_step_further() -> None:
    accepted = "x = " + reply_to("x = ")

    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server, make_config(speculative=True))
        send(engine, "keystroke", event("x = "))
        await settle()
        send(engine, "keystroke", event(accepted, tick=2))  # answered from the speculative reply
        await finish(engine)
        return server

    assert asyncio.run(main()).prompts() == [
        "x = ",
        accepted,
        accepted + reply_to(accepted),
    ]


def test_speculation_waits_for_the_suggestion_to_stay_on_screen() -> None:
    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        engine, _ = make_engine(server, make_config(speculative=True, speculative_delay_ms=30))
        send(engine, "keystroke", event("x = "))
        await server.next_request()
        await turns(50)
        assert server.prompts() == ["x = "], "no speculation before the delay"
        await server.next_request()  # after the delay
        await finish(engine)
        return engine, server

    engine, server = asyncio.run(main())
    assert server.prompts() == ["x = ", "x = " + reply_to("x = ")]
    assert engine.counters.speculative == 1


def test_typing_on_during_the_delay_sends_no_speculation() -> None:
    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        config = make_config(speculative=True, speculative_delay_ms=10_000)
        engine, _ = make_engine(server, config)
        send(engine, "keystroke", event("x = "))
        await server.next_request()
        await turns(20)
        send(engine, "keystroke", event("x = 9", tick=2))  # the hint flashed by
        await server.next_request()
        await turns(20)
        await engine.close()
        await settle()
        return engine, server

    engine, server = asyncio.run(main())
    assert server.prompts() == ["x = ", "x = 9"]
    assert engine.counters.speculative == 0
    assert server.peak == 1


def test_accepting_during_the_delay_sends_the_speculation_at_once() -> None:
    accepted = "x = " + reply_to("x = ")

    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        config = make_config(speculative=True, speculative_delay_ms=10_000)
        engine, editor = make_engine(server, config)
        send(engine, "keystroke", event("x = "))
        await server.next_request()
        await turns(20)
        send(engine, "keystroke", event(accepted, tick=2))
        assert (await server.next_request())["prompt"] == accepted
        await turns(20)
        await engine.close()
        await settle()
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert server.prompts() == ["x = ", accepted]
    assert [plan.lines for plan in editor.shown] == [[reply_to("x = ")], [reply_to(accepted)]]
    assert engine.counters.speculative_adopted == 1
    assert engine.counters.user_requests == 1


def test_at_most_one_request_is_ever_in_flight_while_typing_and_accepting() -> None:
    # A seeded session of typing, accepting and retyping against a server whose
    # replies are held back at random; the server counts /infill in flight.
    rng = random.Random(7)

    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        server.hold_when(lambda body: True)
        server.gate.set()
        engine, editor = make_engine(server, make_config(speculative=True))
        text = "v = "
        for tick in range(1, 300):
            action = rng.random()
            if action < 0.4 and editor.shown:
                text = editor.shown[-1].snapshot.before + editor.shown[-1].lines[0]  # accept
            elif action < 0.8:
                text += rng.choice("abc(")
            elif action < 0.9:
                text = text[:-1] or "v"
            send(engine, "keystroke", event(text, tick=tick))
            pause = rng.random()
            if pause < 0.3:
                server.gate.clear()
            elif pause < 0.6:
                server.gate.set()
            if pause < 0.85:
                await turns(rng.randrange(8))
            else:  # the user waits for the suggestion
                server.gate.set()
                await settle()
            assert server.peak <= 1, f"two requests in flight at keystroke {tick}"
        server.gate.set()
        await finish(engine)
        return engine, server

    engine, server = asyncio.run(main())
    assert server.peak == 1
    counters = engine.counters
    # the session went through every path
    assert counters.speculative > 5
    assert counters.speculative_adopted > 0
    assert counters.cache_hits > 5
    assert counters.cancelled > 5
    assert server.cancelled > 0


# -- cache and speculation ------------------------------------------------------------------------


def test_same_context_again_is_answered_from_the_cache() -> None:
    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await settle()
        send(engine, "keystroke", event("x = ", tick=2))
        await finish(engine)
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert len(server.bodies) == 1
    assert [plan.lines for plan in editor.shown] == [[reply_to("x = ")]] * 2
    assert editor.shown[1].info.startswith("llama: cached")
    assert engine.counters.cache_hits == 1


def test_typing_the_start_of_a_suggestion_shows_the_rest_without_a_request() -> None:
    async def main() -> tuple[FakeEditor, FakeServer]:
        server = FakeServer()
        server.answer = lambda body: ok("foo(1)\nbar()")
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await settle()
        send(engine, "keystroke", event("x = fo", tick=2))
        await finish(engine)
        return editor, server

    editor, server = asyncio.run(main())
    assert len(server.bodies) == 1
    assert editor.shown[-1].lines == ["o(1)", "bar()"]


def test_manual_trigger_asks_the_server_even_on_a_cache_hit() -> None:
    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await settle()
        send(engine, "keystroke", event("x = ", tick=2, manual=True))
        await finish(engine)
        return server

    assert len(asyncio.run(main()).bodies) == 2


def test_speculative_request_prepares_the_suggestion_after_accepting() -> None:
    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        engine, editor = make_engine(server, make_config(speculative=True))
        send(engine, "keystroke", event("x = "))
        await settle()
        # the user accepts the suggestion: the next state is already cached
        send(engine, "keystroke", event("x = " + reply_to("x = "), tick=2))
        await finish(engine)
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    accepted = "x = " + reply_to("x = ")
    assert [body["prompt"] for body in server.bodies][:2] == ["x = ", accepted]
    first, speculative = server.bodies[:2]
    assert first["t_max_predict_ms"] == Config().t_max_predict_ms_first
    assert speculative["t_max_predict_ms"] == Config().t_max_predict_ms
    assert [plan.lines for plan in editor.shown] == [[reply_to("x = ")], [reply_to(accepted)]]
    assert engine.counters.cache_hits == 1
    assert engine.counters.speculative >= 1


def test_failed_speculative_request_is_not_reported() -> None:
    async def main() -> tuple[Engine, FakeEditor]:
        server = FakeServer()
        engine, editor = make_engine(server, make_config(speculative=True))

        def answer(body: dict[str, Any]) -> httpx.Response:
            if body["prompt"] == "x = ":
                return ok("1")
            return httpx.Response(500, text="boom")

        server.answer = answer
        send(engine, "keystroke", event("x = "))
        await finish(engine)
        return engine, editor

    engine, editor = asyncio.run(main())
    assert [plan.lines for plan in editor.shown] == [["1"]]
    assert engine.counters.failed == 1
    assert editor.messages == []


@pytest.mark.parametrize("filename", [".env", "/home/u/.ssh/config", "certs/server.pem"])
def test_no_request_for_a_private_file(filename: str) -> None:
    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server)
        ev = event(manual=True)
        ev["filename"] = filename
        send(engine, "keystroke", ev)
        await finish(engine)
        return server

    assert asyncio.run(main()).bodies == []
