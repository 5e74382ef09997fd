"""Server problems: how requests fail, back off and are reported, driven through the engine.

The fixtures (fake server, editor, clock) are tests/unit/engine_fixture.py's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from llama_nvim.client import InfillClient
from llama_nvim.engine import Engine
from llama_nvim.messages import RequestDone, RequestStarted
from llama_nvim.problems import Kind, ServerProblem, describe
from tests.unit.engine_fixture import (
    ENDPOINT,
    Clock,
    FakeEditor,
    FakeServer,
    event,
    finish,
    make_config,
    make_engine,
    ok,
    refused,
    send,
    settle,
)

ANSWERS_AGAIN = ("llama.nvim: llama-server answers again", False)


def error(kind: Kind, detail: str = "") -> tuple[str, bool]:
    """The error message the user should get for one problem."""
    return ("llama.nvim: " + describe(ServerProblem(kind, detail), ENDPOINT), True)


# -- errors and their reporting -------------------------------------------------------------------


def test_twenty_keystrokes_against_a_refused_connection_give_one_message_and_back_off() -> None:
    async def main() -> tuple[Engine, FakeEditor, FakeServer]:
        server = FakeServer()
        server.answer = refused
        clock = Clock()
        engine, editor = make_engine(server, clock=clock)
        for i in range(20):
            clock.now = i / 10
            send(engine, "keystroke", event("x" * (i + 1), tick=i))
            await settle()
        await engine.close()
        return engine, editor, server

    engine, editor, server = asyncio.run(main())
    assert editor.messages == [error(Kind.UNREACHABLE, "[Errno 111] Connection refused")]
    # Backoff 0.5 s, 1 s, 2 s: requests at t = 0, 0.5 and 1.5 s only.
    assert len(server.bodies) == 3
    assert engine.counters.requests == 3
    assert engine.counters.failed == 3
    assert engine.counters.events == 20
    assert editor.shown == []


def test_success_after_an_outage_gives_one_answers_again_message() -> None:
    async def main() -> tuple[Engine, FakeEditor]:
        server = FakeServer()
        server.answer = refused
        clock = Clock()
        engine, editor = make_engine(server, clock=clock)
        send(engine, "keystroke", event("a"))
        await settle()
        server.answer = lambda body: ok("ok")
        clock.now = 10.0
        for i in range(5):
            send(engine, "keystroke", event("a" * (i + 2), tick=i + 2))
            await settle()
        await engine.close()
        return engine, editor

    _, editor = asyncio.run(main())
    assert editor.messages == [
        error(Kind.UNREACHABLE, "[Errno 111] Connection refused"),
        ANSWERS_AGAIN,
    ]
    assert len(editor.shown) == 5


def test_keystrokes_during_backoff_send_nothing_until_the_retry_time() -> None:
    async def main() -> FakeServer:
        server = FakeServer()
        server.answer = refused
        clock = Clock()
        engine, _ = make_engine(server, clock=clock)
        send(engine, "keystroke", event("a"))
        await settle()
        server.answer = lambda body: ok("ok")
        clock.now = 0.49
        send(engine, "keystroke", event("ab", tick=2))
        await settle()
        assert len(server.bodies) == 1
        clock.now = 0.5
        send(engine, "keystroke", event("abc", tick=3))
        await finish(engine)
        return server

    assert [body["prompt"] for body in asyncio.run(main()).bodies] == ["a", "abc"]


def test_manual_trigger_ignores_the_backoff() -> None:
    async def main() -> tuple[FakeEditor, FakeServer]:
        server = FakeServer()
        server.answer = refused
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("a"))
        await settle()
        server.answer = lambda body: ok("ok")
        send(engine, "keystroke", event("a", tick=2, manual=True))
        await finish(engine)
        return editor, server

    editor, server = asyncio.run(main())
    assert len(server.bodies) == 2
    assert len(editor.shown) == 1
    assert editor.messages[-1] == ANSWERS_AGAIN


@pytest.mark.parametrize(
    ("status", "server_message", "kind"),
    [
        (401, "Invalid API Key", Kind.UNAUTHORIZED),
        (501, "This server does not support infill.", Kind.NO_FIM),
        (404, "File Not Found", Kind.NOT_FOUND),
        (500, "boom", Kind.SERVER_ERROR),
        (400, "context too long", Kind.BAD_REQUEST),
    ],
)
def test_http_error_is_reported_once(status: int, server_message: str, kind: Kind) -> None:
    body = {"error": {"code": status, "message": server_message}}

    async def main() -> tuple[Engine, FakeEditor]:
        server = FakeServer()
        server.answer = lambda _: httpx.Response(status, json=body)
        clock = Clock()
        engine, editor = make_engine(server, clock=clock)
        for i in range(5):
            clock.now = 100.0 * i  # past any backoff: every keystroke is sent
            send(engine, "keystroke", event("x" * (i + 1), tick=i))
            await settle()
        await engine.close()
        return engine, editor

    engine, editor = asyncio.run(main())
    assert editor.messages == [error(kind, f"HTTP {status}: {server_message}")]
    assert engine.counters.requests == 5
    assert engine.counters.failed == 5
    assert editor.shown == []


def test_loading_model_is_quiet() -> None:
    async def main() -> tuple[Engine, FakeEditor]:
        server = FakeServer()
        server.answer = lambda _: httpx.Response(
            503, json={"error": {"code": 503, "message": "Loading model"}}
        )
        clock = Clock()
        engine, editor = make_engine(server, clock=clock)
        for i in range(5):
            clock.now = float(i)
            send(engine, "keystroke", event("x" * (i + 1), tick=i))
            await settle()
        server.answer = lambda body: ok("ready")
        clock.now = 10.0
        send(engine, "keystroke", event("done", tick=9))
        await finish(engine)
        return engine, editor

    engine, editor = asyncio.run(main())
    assert editor.messages == []
    assert engine.counters.failed == 5
    assert [plan.lines for plan in editor.shown] == [["ready"]]


@pytest.mark.parametrize(
    ("response", "detail"),
    [
        (httpx.Response(200, text="<html>proxy</html>"), "reply is not valid JSON"),
        (httpx.Response(200, json={"content": 42}), "'content' is int, not a string"),
        (
            httpx.Response(200, json={"content": "x" * (1 << 20)}),
            "reply larger than 1 MiB",
        ),
    ],
)
def test_bad_reply_is_reported_once_and_not_shown(response: httpx.Response, detail: str) -> None:
    async def main() -> tuple[Engine, FakeEditor]:
        server = FakeServer()
        server.answer = lambda _: response
        clock = Clock()
        engine, editor = make_engine(server, clock=clock)
        for i in range(3):
            clock.now = 100.0 * i
            send(engine, "keystroke", event("x" * (i + 1), tick=i))
            await settle()
        await engine.close()
        return engine, editor

    engine, editor = asyncio.run(main())
    assert editor.messages == [error(Kind.BAD_RESPONSE, detail)]
    assert editor.shown == []
    assert engine.counters.failed == 3


def test_each_distinct_problem_gets_its_own_message() -> None:
    async def main() -> FakeEditor:
        server = FakeServer()
        clock = Clock()
        engine, editor = make_engine(server, clock=clock)
        answers: list[Callable[[dict[str, Any]], httpx.Response]] = [
            refused,
            lambda _: httpx.Response(500, text="boom"),
            refused,
            lambda _: httpx.Response(500, text="boom"),
        ]
        for i, answer in enumerate(answers):
            server.answer = answer
            clock.now = 100.0 * i
            send(engine, "keystroke", event("x" * (i + 1), tick=i))
            await settle()
        await engine.close()
        return editor

    assert asyncio.run(main()).messages == [
        error(Kind.UNREACHABLE, "[Errno 111] Connection refused"),
        error(Kind.SERVER_ERROR, "HTTP 500: boom"),
    ]


def test_timeout_is_reported_and_not_shown() -> None:
    async def main() -> tuple[Engine, FakeEditor]:
        server = FakeServer()
        server.gate = asyncio.Event()  # never opened
        editor = FakeEditor()
        client = InfillClient(
            ENDPOINT, timeout_s=0.01, transport=httpx.MockTransport(server.handle)
        )
        engine = Engine(make_config(), editor, client, clock=Clock())
        send(engine, "enabled", {"enabled": True})  # as the Lua half does when set up
        send(engine, "keystroke", event())
        await finish(engine)
        return engine, editor

    engine, editor = asyncio.run(main())
    assert editor.messages == [error(Kind.TIMEOUT, "after 0.01 s")]
    assert engine.counters.failed == 1
    assert engine.counters.cancelled == 0


def test_last_problem_keeps_the_full_text_for_status() -> None:
    async def main() -> Engine:
        server = FakeServer()
        server.answer = lambda _: httpx.Response(503, text="Loading model")
        engine, editor = make_engine(server)
        send(engine, "keystroke", event())
        await finish(engine)
        assert editor.messages == []  # quiet, yet remembered
        return engine

    engine = asyncio.run(main())
    expected = describe(ServerProblem(Kind.LOADING, "HTTP 503: Loading model"), ENDPOINT)
    assert engine.sender.last_problem == expected


def test_no_last_problem_while_all_is_well() -> None:
    async def main() -> Engine:
        engine, _ = make_engine(FakeServer())
        send(engine, "keystroke", event())
        await finish(engine)
        return engine

    assert asyncio.run(main()).sender.last_problem == ""


# -- request start and end, for the statusline and the User events -------------------------------


def test_each_request_the_user_waits_for_is_announced_when_sent_and_when_ended() -> None:
    async def main() -> FakeEditor:
        server = FakeServer()
        server.gate = asyncio.Event()
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await server.next_request()
        send(engine, "keystroke", event("y = ", tick=2))  # cancels: no answer for "x = " serves it
        await server.next_request()
        server.gate.set()
        await finish(engine)
        return editor

    editor = asyncio.run(main())
    assert [type(m).__name__ for m in editor.requests] == [
        "RequestStarted",
        "RequestDone",
        "RequestStarted",
        "RequestDone",
    ]
    first_started, first_done, second_started, second_done = editor.requests
    assert (first_started.id, second_started.id) == (1, 2)
    assert first_done == RequestDone(1, "cancelled", 0, "")
    assert second_done == RequestDone(2, "ok", 0, "")
    assert editor.shown, "the answer is shown after its request was announced done"


def test_a_failed_request_is_announced_with_its_problem() -> None:
    async def main() -> FakeEditor:
        server = FakeServer()
        server.answer = refused
        engine, editor = make_engine(server)
        send(engine, "keystroke", event("x = "))
        await finish(engine)
        return editor

    editor = asyncio.run(main())
    expected = describe(ServerProblem(Kind.UNREACHABLE, "[Errno 111] Connection refused"), ENDPOINT)
    assert editor.requests == [RequestStarted(1), RequestDone(1, "error", 0, expected)]


def test_background_requests_are_not_announced() -> None:
    async def main() -> tuple[FakeEditor, FakeServer]:
        server = FakeServer()
        engine, editor = make_engine(server, make_config(speculative=True))
        send(engine, "keystroke", event("x = "))
        await finish(engine)
        return editor, server

    editor, server = asyncio.run(main())
    assert len(server.prompts()) == 2, "the suggestion's request and the speculative one"
    assert editor.requests == [RequestStarted(1), RequestDone(1, "ok", 0, "")]
