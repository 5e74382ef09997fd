"""Other suggestions for the same place (next / previous), driven through the engine.

The fixtures (fake server, editor, clock) are tests/unit/engine_fixture.py's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.unit.engine_fixture import (
    FakeEditor,
    FakeServer,
    event,
    finish,
    make_engine,
    ok,
    send,
    settle,
)

# -- other suggestions (next / previous) -----------------------------------------------------


def cycle_event(step: int, shown: list[str], **fields: Any) -> dict[str, Any]:
    return {**event(**fields), "step": step, "shown": shown}


def explored(server: FakeServer) -> list[dict[str, Any]]:
    return [body for body in server.bodies if "temperature" in body["samplers"]]


def test_next_fetches_another_suggestion_and_previous_recalls_the_first() -> None:
    async def main() -> tuple[FakeServer, FakeEditor]:
        server = FakeServer()
        replies = iter(["first", "second"])
        server.answer = lambda body: ok(next(replies))
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await settle()
        assert editor.shown[-1].lines == ["first"]
        send(engine, "cycle", cycle_event(1, ["first"]))
        await settle()
        send(engine, "cycle", cycle_event(-1, ["second"]))
        send(engine, "cycle", cycle_event(1, ["first"]))
        await finish(engine)
        return server, editor

    server, editor = asyncio.run(main())
    assert [plan.lines for plan in editor.shown] == [["first"], ["second"], ["first"], ["second"]]
    assert ["suggestion 2/2" in plan.info for plan in editor.shown] == [False, True, False, True]
    assert "suggestion 1/2" in editor.shown[2].info
    (request,) = explored(server)  # recalling needs no request
    assert request["samplers"] == ["top_k", "top_p", "temperature"]
    assert request["prompt"] == "x = "
    assert request["cache_prompt"] is True


def test_a_repeated_suggestion_is_asked_again_then_the_user_is_told() -> None:
    async def main() -> tuple[FakeServer, FakeEditor]:
        server = FakeServer()
        server.answer = lambda body: ok("same")
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await settle()
        send(engine, "cycle", cycle_event(1, ["same"]))
        await finish(engine)
        return server, editor

    server, editor = asyncio.run(main())
    assert len(explored(server)) == 3
    assert [plan.lines for plan in editor.shown] == [["same"]]
    assert editor.messages == [("llama.nvim: no other suggestion here", False)]


def test_a_keystroke_makes_a_pending_alternative_stale() -> None:
    async def main() -> FakeEditor:
        server = FakeServer()
        server.hold_when(lambda body: "temperature" in body["samplers"])
        server.answer = lambda body: ok("other" if server.hold(body) else "first")
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await settle()
        send(engine, "cycle", cycle_event(1, ["first"]))
        await server.next_request()
        send(engine, "keystroke", event("x = y", tick=2))
        server.gate.set()
        await finish(engine)
        return editor

    editor = asyncio.run(main())
    assert all(plan.lines != ["other"] for plan in editor.shown)


def test_cycling_somewhere_new_starts_from_what_is_shown_there() -> None:
    # After type-through the hint on screen is the rest of the old one: that is
    # the first suggestion of the new place.
    async def main() -> FakeEditor:
        server = FakeServer()
        replies = iter(["abc", "zz", "yy"])
        server.answer = lambda body: ok(next(replies))
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await settle()
        send(engine, "cycle", cycle_event(1, ["abc"]))
        await settle()
        send(engine, "cycle", cycle_event(1, ["c"], before="x = ab", tick=3))
        await settle()
        send(engine, "cycle", cycle_event(-1, ["yy"], before="x = ab", tick=3))
        await finish(engine)
        return editor

    editor = asyncio.run(main())
    assert [plan.lines for plan in editor.shown] == [["abc"], ["zz"], ["yy"], ["c"]]
    assert "suggestion 1/2" in editor.shown[-1].info
