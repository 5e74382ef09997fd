"""A slow server's streamed answer is shown while it grows (user_request.GrowingAnswer).

The fake server streams the answer's pieces one gate at a time, so each test
sees what the editor was asked to draw between two pieces.
"""

from __future__ import annotations

import asyncio

import httpx

from llama_nvim.render import RenderPlan
from tests.unit.engine_fixture import (
    FakeEditor,
    FakeServer,
    event,
    finish,
    make_engine,
    ok_streamed,
    send,
    turns,
)


async def wait_for_plans(editor: FakeEditor, count: int) -> None:
    """Until the editor was asked to draw ``count`` plans (a bound, should it never be)."""
    for _ in range(500):
        if len(editor.shown) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(editor.shown)} plans drawn, waited for {count}")


def drawn(editor: FakeEditor) -> list[tuple[list[str], bool]]:
    return [(plan.lines, plan.growing) for plan in editor.shown]


def streaming_server(pieces: list[str], gates: list[asyncio.Event]) -> FakeServer:
    server = FakeServer()
    server.answer = lambda body: ok_streamed(pieces, gates)
    return server


def test_the_start_of_a_streamed_answer_is_shown_before_it_ends() -> None:
    async def main() -> tuple[FakeEditor, int, list[tuple[list[str], bool]]]:
        gates = [asyncio.Event() for _ in range(3)]
        gates[0].set()
        server = streaming_server(["foo", "(bar)", "\nbaz()"], gates)
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await wait_for_plans(editor, 1)
        first = drawn(editor)
        done_before = engine.counters.shown
        gates[1].set()
        gates[2].set()
        await finish(engine)
        return editor, done_before, first

    editor, shown_before_the_end, first = asyncio.run(main())
    assert first == [(["foo"], True)]
    assert shown_before_the_end == 0  # a growing hint is counted once finished
    final: RenderPlan = editor.shown[-1]
    assert (final.lines, final.growing) == (["foo(bar)", "baz()"], False)
    assert "receiving" in editor.shown[0].info


def test_an_answer_filtered_out_once_finished_takes_back_its_start() -> None:
    async def main() -> FakeEditor:
        gates = [asyncio.Event(), asyncio.Event()]
        gates[0].set()
        # The finished answer only retypes what is right of the cursor.
        server = streaming_server(["re", "turn"], gates)
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("    ", after="return"))
        await wait_for_plans(editor, 1)
        gates[1].set()
        await finish(engine)
        return editor

    editor = asyncio.run(main())
    assert drawn(editor) == [(["re"], True), ([], True)]


def test_a_later_key_stops_the_drawing_of_an_earlier_answer() -> None:
    async def main() -> tuple[FakeEditor, FakeServer]:
        gates = [asyncio.Event(), asyncio.Event()]
        gates[0].set()
        server = streaming_server(["count", " += 1"], gates)
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("    ", above=("for x in y:",)))
        await wait_for_plans(editor, 1)
        # The user types through the start shown: the request goes on for the rest.
        send(engine, "keystroke", event("    co", above=("for x in y:",), tick=2))
        await turns(5)
        gates[1].set()
        await finish(engine)
        return editor, server

    editor, server = asyncio.run(main())
    assert len(server.bodies) == 1
    assert server.cancelled == 0
    assert [(plan.snapshot.tick, plan.lines, plan.growing) for plan in editor.shown] == [
        (1, ["count"], True),
        (2, ["unt += 1"], False),
    ]


def test_a_whole_reply_is_shown_once() -> None:
    async def main() -> FakeEditor:
        server = FakeServer()
        server.answer = lambda body: httpx.Response(
            200, json={"content": "foo()", "timings/prompt_n": 3}
        )
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await finish(engine)
        return editor

    editor = asyncio.run(main())
    assert drawn(editor) == [(["foo()"], False)]
