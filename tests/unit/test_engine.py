"""engine.Engine: keystrokes in, suggestions and messages out, against a fake server.

The fixtures (fake server, editor, clock) are tests/unit/engine_fixture.py's.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from llama_nvim.config import Config
from llama_nvim.counters import Counters
from llama_nvim.engine import Engine
from llama_nvim.problems import Kind, ServerProblem, describe
from llama_nvim.protocol import RESPONSE_FIELDS
from llama_nvim.slot_lease import SlotLease
from tests.unit.engine_fixture import (
    ENDPOINT,
    FakeEditor,
    FakeServer,
    event,
    finish,
    make_config,
    make_engine,
    ok,
    reply_to,
    send,
    settle,
    turns,
)

ANSWERS_AGAIN = ("llama.nvim: llama-server answers again", False)


def error(kind: Kind, detail: str = "") -> tuple[str, bool]:
    """The error message the user should get for one problem."""
    return ("llama.nvim: " + describe(ServerProblem(kind, detail), ENDPOINT), True)


# -- the happy path --------------------------------------------------------------------------


def test_keystroke_shows_the_filtered_suggestion() -> None:
    async def main() -> tuple[Engine, FakeEditor]:
        server = FakeServer()
        server.answer = lambda body: ok("foo()\n\n\n")
        engine, editor = make_engine(server, make_config(show_info=1))
        send(engine, "keystroke", event("x = ", tick=5))
        await finish(engine)
        return engine, editor

    engine, editor = asyncio.run(main())
    (plan,) = editor.shown
    assert plan.lines == ["foo()"]
    assert plan.snapshot.position == (1, 5, 1, 4)
    assert plan.snapshot.before == "x = "
    assert plan.show_info == 1
    assert engine.counters.requests == 1
    assert engine.counters.shown == 1
    assert editor.messages == []


def test_request_body_is_built_from_the_event_and_config() -> None:
    config = make_config(
        n_predict=64,
        t_max_prompt_ms=222,
        t_max_predict_ms=999,
        t_max_predict_ms_first=111,
        id_slot=2,
        stop_strings=("\n\n",),
    )

    async def main() -> dict[str, Any]:
        server = FakeServer()
        engine, _ = make_engine(server, config)
        send(
            engine,
            "keystroke",
            event(
                "    return a",
                "",
                above=("def f():", "    a = 1"),
                below=("", "print(f())"),
            ),
        )
        await finish(engine)
        return server.bodies[0]

    body = asyncio.run(main())
    assert body["input_prefix"] == "def f():\n    a = 1\n"
    assert body["prompt"] == "    return a"
    assert body["input_suffix"] == "\n\nprint(f())\n"
    assert body["n_indent"] == 4
    assert body["n_predict"] == 64
    assert body["t_max_prompt_ms"] == 222
    assert body["t_max_predict_ms"] == 111
    assert body["id_slot"] == 2
    assert body["stop"] == ["\n\n"]
    assert body["samplers"] == ["top_k", "top_p", "infill"]
    assert body["cache_prompt"] is True
    assert body["response_fields"] == list(RESPONSE_FIELDS)
    assert body["input_extra"] == []


def test_n_indent_is_zero_on_a_blank_line() -> None:
    async def main() -> dict[str, Any]:
        server = FakeServer()
        engine, _ = make_engine(server)
        send(engine, "keystroke", event("        "))
        await finish(engine)
        return server.bodies[0]

    assert asyncio.run(main())["n_indent"] == 0


def test_undecodable_bytes_in_the_buffer_are_sent_as_replacement_characters() -> None:
    bad = b"\xff".decode("utf-8", "surrogateescape")

    async def main() -> dict[str, Any]:
        server = FakeServer()
        engine, editor = make_engine(server)
        send(engine, "keystroke", event(f"s = '{bad}", above=(f"# {bad}",)))
        await finish(engine)
        assert len(editor.shown) == 1
        return server.bodies[0]

    body = asyncio.run(main())
    assert body["prompt"] == "s = '\ufffd"
    assert body["input_prefix"] == "# \ufffd\n"


def test_info_text_uses_the_servers_context_size() -> None:
    async def main() -> FakeEditor:
        server = FakeServer()
        engine, editor = make_engine(server)
        engine.n_ctx = 4096
        send(engine, "keystroke", event())
        await finish(engine)
        return editor

    (plan,) = asyncio.run(main()).shown
    assert plan.info.startswith("llama: ctx 30/4096 | reused 27, computed 3")


def test_counters_accumulate_server_timings() -> None:
    async def main() -> Counters:
        server = FakeServer()
        engine, _ = make_engine(server)
        for text in ("a", "ab", "abc"):
            send(engine, "keystroke", event(text))
            await settle()
        await engine.close()
        return engine.counters

    counters = asyncio.run(main()).as_dict()
    assert counters["events"] == 3
    assert counters["requests"] == 3
    assert counters["shown"] == 3
    assert counters["prompt_n"] == 9
    assert counters["cache_n"] == 81
    assert counters["cancelled"] == counters["failed"] == 0


# -- superseding, cancellation, staleness -------------------------------------------------------


def test_keystroke_supersedes_the_in_flight_request() -> None:
    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        server.gate = asyncio.Event()
        server.close_turns = 2
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await server.next_request()
        # The text left of the cursor changed: no answer for "x = " can serve it.
        send(engine, "keystroke", event("y = ", tick=2))
        assert (await server.next_request())["prompt"] == "y = "
        server.gate.set()
        await finish(engine)
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert server.cancelled == 1
    assert engine.counters.cancelled == 1
    assert engine.counters.requests == 2
    assert [plan.lines for plan in editor.shown] == [[reply_to("y = ")]]
    assert server.peak == 1


def test_edits_while_the_server_is_slow_keep_one_request_in_flight() -> None:
    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        server.gate = asyncio.Event()
        server.close_turns = 2
        engine, editor = make_engine(server)
        for i in range(10):
            # Each key rewrites the text left of the cursor: every answer is useless.
            send(engine, "keystroke", event(f"v{i} = ", tick=i))
            await server.next_request()
        server.gate.set()
        await finish(engine)
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert server.peak == 1
    assert engine.counters.requests == 10
    assert engine.counters.cancelled == 9
    assert server.cancelled == 9
    assert [plan.snapshot.tick for plan in editor.shown] == [9]


def test_typing_on_while_the_server_is_slow_waits_for_the_answer_instead_of_cancelling() -> None:
    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        server.gate = asyncio.Event()
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await server.next_request()
        for i in range(1, 10):
            send(engine, "keystroke", event("x = " + "1" * i, tick=i))
        await turns(5)
        in_flight_while_typing = len(server.bodies)
        server.gate.set()
        await finish(engine)
        assert in_flight_while_typing == 1
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    # The answer for "x = " does not start with what was typed: one request
    # for the newest state follows, none for the keys in between.
    assert server.prompts() == ["x = ", "x = " + "1" * 9]
    assert server.cancelled == 0
    assert engine.counters.cancelled == 0
    assert engine.counters.waited == 9
    assert server.peak == 1
    assert [plan.snapshot.tick for plan in editor.shown] == [9]


def test_an_answer_for_a_place_typed_through_shows_the_rest_on_arrival() -> None:
    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        server.gate = asyncio.Event()
        server.answer = lambda body: ok("count += 1")
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("    ", above=("for x in y:",)))
        await server.next_request()
        send(engine, "keystroke", event("    c", above=("for x in y:",), tick=2))
        send(engine, "keystroke", event("    co", above=("for x in y:",), tick=3))
        server.gate.set()
        await finish(engine)
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert len(server.bodies) == 1
    assert engine.counters.served_on_arrival == 1
    assert [(plan.snapshot.tick, plan.lines) for plan in editor.shown] == [(3, ["unt += 1"])]


def test_ending_the_line_the_answer_ends_waits_for_it_and_shows_its_next_line() -> None:
    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        server.gate = asyncio.Event()
        server.answer = lambda body: ok("x + 1\n    return y")
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("    y = ", above=("def f(x):",)))
        await server.next_request()
        send(engine, "keystroke", event("    y = x + 1", above=("def f(x):",), tick=2))
        # Enter, and the new line's indent: the answer may still serve it.
        send(engine, "keystroke", event("    ", above=("def f(x):", "    y = x + 1"), tick=3))
        server.gate.set()
        await finish(engine)
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert len(server.bodies) == 1
    assert server.cancelled == 0
    assert engine.counters.waited == 2
    assert engine.counters.served_on_arrival == 1
    assert [(plan.snapshot.tick, plan.lines) for plan in editor.shown] == [(3, ["return y"])]


def test_a_cached_answer_serves_the_line_after_its_first_line_was_typed_and_ended() -> None:
    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        server.answer = lambda body: ok("1\nz = 2")
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await finish(engine)
        send(engine, "keystroke", event("", above=("def f():", "x = 1"), tick=2))
        await finish(engine)
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert len(server.bodies) == 1
    assert engine.counters.cache_hits == 1
    assert [plan.lines for plan in editor.shown] == [["1", "z = 2"], ["z = 2"]]


def test_moving_to_another_line_cancels_the_request_that_cannot_serve_it() -> None:
    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        server.gate = asyncio.Event()
        engine, _ = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await server.next_request()
        # Up to the line above: no typing gets there from "x = ".
        send(engine, "keystroke", event("def f():", above=(), tick=2))
        await server.next_request()
        server.gate.set()
        await finish(engine)
        return engine, server

    engine, server = asyncio.run(main())
    assert server.cancelled == 1
    assert engine.counters.waited == 0


def test_ctrl_f_while_a_request_runs_asks_anew() -> None:
    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        server.gate = asyncio.Event()
        engine, _ = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await server.next_request()
        send(engine, "trigger", event("x = 1", tick=2, manual=True))
        await server.next_request()
        server.gate.set()
        await finish(engine)
        return engine, server

    engine, server = asyncio.run(main())
    assert server.prompts() == ["x = ", "x = 1"]
    assert server.cancelled == 1
    assert engine.counters.waited == 0


@pytest.mark.parametrize("gap", [0, 1])
def test_new_request_waits_for_a_cancelled_one_that_is_still_closing(gap: int) -> None:
    # Two keystrokes while the first request is still closing its connection:
    # the third keystroke's request must not start before the first has closed.
    async def main() -> FakeServer:
        server = FakeServer()
        server.gate = asyncio.Event()
        server.close_turns = 2
        engine, _ = make_engine(server)
        send(engine, "keystroke", event("a"))
        await server.next_request()
        send(engine, "keystroke", event("b", tick=2))
        await turns(gap)
        send(engine, "keystroke", event("c", tick=3))
        await server.next_request()
        server.gate.set()
        await finish(engine)
        return server

    server = asyncio.run(main())
    assert server.peak == 1


def test_speculation_after_a_cache_hit_waits_for_the_cancelled_request_to_close() -> None:
    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server, make_config(speculative=True))
        send(engine, "keystroke", event("x = "))
        await settle()  # shown, and the state after accepting it fetched into the cache
        server.gate = asyncio.Event()
        server.close_turns = 2
        send(engine, "keystroke", event("y = ", tick=2))
        await server.next_request()
        # the user goes back and accepts: a cache hit, which speculates one step further
        send(engine, "keystroke", event("x = " + reply_to("x = "), tick=3))
        await server.next_request()
        server.gate.set()
        await finish(engine)
        return server

    server = asyncio.run(main())
    assert len(server.bodies) == 4
    assert server.peak == 1


def test_reply_arriving_after_a_newer_keystroke_is_dropped_as_stale() -> None:
    async def main() -> tuple[Engine, FakeEditor]:
        server = FakeServer()
        server.close_turns = 0  # the reply is complete before the cancel could land
        engine, editor = make_engine(server)

        def answer(body: dict[str, Any]) -> httpx.Response:
            # The user types on while the reply is on its way; this keystroke
            # wants no request (long text right of the cursor).
            send(engine, "keystroke", event("x = ", "y" * 40, tick=2))
            return ok("stale")

        server.answer = answer
        send(engine, "keystroke", event("x = "))
        await finish(engine)
        return engine, editor

    engine, editor = asyncio.run(main())
    assert editor.shown == []
    assert engine.counters.dropped_stale == 1
    assert engine.counters.requests == 1


def test_reply_arriving_as_insert_mode_is_left_is_not_shown() -> None:
    async def main() -> tuple[Engine, FakeEditor]:
        server = FakeServer()
        server.gate = asyncio.Event()
        engine, editor = make_engine(server)
        send(engine, "keystroke", event())
        await server.next_request()
        server.gate.set()
        send(engine, "cancel")
        await finish(engine)
        return engine, editor

    engine, editor = asyncio.run(main())
    assert editor.shown == []
    assert engine.counters.dropped_stale + engine.counters.cancelled == 1


@pytest.mark.parametrize("kind", ["cancel", "leave"])
def test_cancel_or_leaving_insert_mode_drops_the_in_flight_request(kind: str) -> None:
    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        server.gate = asyncio.Event()
        engine, editor = make_engine(server)
        send(engine, "keystroke", event())
        await server.next_request()
        send(engine, kind)
        await settle()
        server.gate.set()
        await finish(engine)
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert server.cancelled == 1
    assert engine.counters.cancelled == 1
    assert editor.shown == []


def test_close_cancels_pending_work() -> None:
    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        server.gate = asyncio.Event()
        engine, editor = make_engine(server)
        send(engine, "keystroke", event())
        await server.next_request()
        await engine.close()
        await settle()
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert server.cancelled == 1
    assert engine.counters.cancelled == 1
    assert editor.shown == []


# -- debounce -------------------------------------------------------------------------------------


def test_typed_keystroke_waits_for_the_debounce_and_a_cancel_sends_nothing() -> None:
    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        engine, _ = make_engine(server, make_config(debounce_ms=5000))
        send(engine, "keystroke", event())
        await turns(20)
        assert server.bodies == []
        send(engine, "cancel")
        await finish(engine)
        return engine, server

    engine, server = asyncio.run(main())
    assert server.bodies == []
    assert engine.counters.requests == 0


def test_manual_trigger_skips_the_debounce() -> None:
    async def main() -> FakeEditor:
        server = FakeServer()
        engine, editor = make_engine(server, make_config(debounce_ms=5000))
        send(engine, "keystroke", event(manual=True))
        await server.next_request()
        await finish(engine)
        return editor

    assert len(asyncio.run(main()).shown) == 1


# -- filtering ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "after", "below", "lines"),
    [
        ("foo\n\n  \n", "", (), ["foo"]),
        ("a\r\nb\r\n", "", (), ["a", "b"]),
        ("a\nb\nc", "", ("b", "c", "d"), ["a"]),
        ("   \n\t\n", "", (), None),
        ("", "", (), None),
        ("):", "):", (), None),
    ],
)
def test_filtering_is_applied_to_replies(
    content: str, after: str, below: tuple[str, ...], lines: list[str] | None
) -> None:
    async def main() -> tuple[Engine, FakeEditor]:
        server = FakeServer()
        server.answer = lambda body: ok(content)
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("f(x", after, below=below))
        await finish(engine)
        return engine, editor

    engine, editor = asyncio.run(main())
    if lines is None:
        assert editor.shown == []
        assert engine.counters.dropped_filtered == 1
    else:
        assert [plan.lines for plan in editor.shown] == [lines]
        assert engine.counters.dropped_filtered == 0


# -- when no request is wanted ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "ev"),
    [
        (make_config(enable_at_startup=False), event()),
        (make_config(enable_at_startup=False), event(manual=True)),
        (make_config(disabled_filetypes=("python",)), event()),
        (make_config(disabled_filetypes=("python",)), event(manual=True)),
        (make_config(auto_fim=False), event()),
        (make_config(max_line_suffix=8), event("f(", "a, b, c, d)")),
        (make_config(max_line_suffix=0), event("f(", ")")),
    ],
)
def test_no_request_when_not_wanted(config: Config, ev: dict[str, Any]) -> None:
    async def main() -> tuple[Engine, FakeServer]:
        server = FakeServer()
        engine, _ = make_engine(server, config)
        send(engine, "keystroke", ev)
        await finish(engine)
        return engine, server

    engine, server = asyncio.run(main())
    assert server.bodies == []
    assert engine.counters.requests == 0
    assert engine.counters.events == 1


@pytest.mark.parametrize(
    ("config", "ev"),
    [
        (make_config(auto_fim=False), event(manual=True)),
        (make_config(), event("f(", "a, b, c, d)", manual=True)),
        (make_config(max_line_suffix=8), event("f(", "12345678")),
        (make_config(disabled_filetypes=("markdown",)), event()),
    ],
)
def test_request_when_wanted(config: Config, ev: dict[str, Any]) -> None:
    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server, config)
        send(engine, "keystroke", ev)
        await finish(engine)
        return server

    assert len(asyncio.run(main()).bodies) == 1


def test_disabling_cancels_the_request_and_shows_nothing() -> None:
    # (the Lua half hides a shown hint itself: test_completion.py's test_disable_and_enable)
    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        server.gate = asyncio.Event()
        engine, editor = make_engine(server)
        send(engine, "keystroke", event())
        await server.next_request()
        send(engine, "enabled", {"enabled": False})
        await settle()
        server.gate.set()
        send(engine, "keystroke", event("x = 2", tick=2))
        await finish(engine)
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert not engine.enabled
    assert editor.shown == []
    assert server.cancelled == 1
    assert len(server.bodies) == 1


def test_enabling_after_startup_disabled_allows_requests() -> None:
    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server, make_config(enable_at_startup=False))
        send(engine, "keystroke", event())
        await settle()
        send(engine, "enabled", {"enabled": True})
        send(engine, "keystroke", event(tick=2))
        await finish(engine)
        return server

    assert len(asyncio.run(main()).bodies) == 1


def test_toggling_auto_fim_at_runtime() -> None:
    async def main() -> FakeServer:
        server = FakeServer()
        engine, _ = make_engine(server)
        engine.auto_fim = False
        send(engine, "keystroke", event())
        await settle()
        engine.auto_fim = True
        send(engine, "keystroke", event(tick=2))
        await finish(engine)
        return server

    assert [body["prompt"] for body in asyncio.run(main()).bodies] == ["x = "]


def test_requests_go_to_the_slot_leased_once_props_tell_several(tmp_path: Path) -> None:
    async def main() -> tuple[list[int], int | None]:
        server = FakeServer()
        server.n_ctx, server.total_slots = 4096, 2
        other = SlotLease(str(tmp_path))
        other.acquire(2)  # another editor holds slot 0
        engine, _ = make_engine(server, lease=SlotLease(str(tmp_path)))
        send(engine, "keystroke", event("x = "))  # before /props: the server chooses
        await settle()
        await engine.refresh_props()
        send(engine, "keystroke", event("y = "))
        await finish(engine)
        after_close = SlotLease(str(tmp_path))
        freed = after_close.acquire(2)
        after_close.release()
        other.release()
        return [body["id_slot"] for body in server.bodies], freed

    slots, freed = asyncio.run(main())
    assert slots == [-1, 1]
    assert freed == 1  # closing the engine gave its slot back


def test_one_slot_server_leaves_the_choice_to_it(tmp_path: Path) -> None:
    async def main() -> list[int]:
        server = FakeServer()
        server.n_ctx, server.total_slots = 4096, 1
        engine, _ = make_engine(server, lease=SlotLease(str(tmp_path)))
        await engine.refresh_props()
        send(engine, "keystroke", event("x = "))
        await finish(engine)
        return [body["id_slot"] for body in server.bodies]

    assert asyncio.run(main()) == [-1]
