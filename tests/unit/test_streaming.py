"""streaming.StreamChoice, and InfillClient asking for streamed replies only from a slow server."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import pytest

from llama_nvim.backends import Wire
from llama_nvim.client import InfillClient
from llama_nvim.fim_templates import resolve
from llama_nvim.problems import Kind, ServerProblem
from llama_nvim.streaming import FAST_REPLY_MS, StreamChoice


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def timed(
    choice: StreamChoice, clock: Clock, ms: float, error: BaseException | None = None
) -> None:
    """One request through ``choice`` that takes ``ms`` and ends with ``error`` if given."""
    expected = pytest.raises(type(error)) if error else contextlib.nullcontext()
    with expected, choice.timing(True):
        clock.now += ms / 1000
        if error:
            raise error


def test_streams_until_a_reply_comes_fast_and_again_after_a_slow_one() -> None:
    clock = Clock()
    choice = StreamChoice(clock)
    assert choice.stream, "the server's speed is unknown at first"
    timed(choice, clock, FAST_REPLY_MS - 1)
    assert not choice.stream
    timed(choice, clock, 20)
    assert not choice.stream
    timed(choice, clock, FAST_REPLY_MS)
    assert choice.stream


@pytest.mark.parametrize(
    "error", [ServerProblem(Kind.TIMEOUT), ServerProblem(Kind.UNREACHABLE), RuntimeError()]
)
def test_any_failure_goes_back_to_streaming(error: BaseException) -> None:
    clock = Clock()
    choice = StreamChoice(clock)
    timed(choice, clock, 10)
    assert not choice.stream
    timed(choice, clock, 1, error)
    assert choice.stream


def test_a_cancelled_request_streams_the_next_one_only_if_it_ran_long() -> None:
    clock = Clock()
    choice = StreamChoice(clock)
    timed(choice, clock, 1, asyncio.CancelledError())
    assert choice.stream, "cancelled quickly: nothing learnt"
    timed(choice, clock, 10)
    timed(choice, clock, 1, asyncio.CancelledError())
    assert not choice.stream, "cancelled quickly: still fast"
    timed(choice, clock, FAST_REPLY_MS + 1, asyncio.CancelledError())
    assert choice.stream


def test_requests_it_does_not_apply_to_change_nothing() -> None:
    clock = Clock()
    choice = StreamChoice(clock)
    with choice.timing(False):
        clock.now += 0.001
    assert choice.stream


# -- InfillClient ------------------------------------------------------------------------------


def sent_streams(bodies: list[dict[str, Any]], wire: Wire | None = None) -> list[Any]:
    """The ``stream`` field of each body as sent, replies coming at once."""
    seen: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content).get("stream"))
        if wire is not None and wire.kind == "completions":
            return httpx.Response(200, json={"choices": [{"text": "x", "finish_reason": "stop"}]})
        return httpx.Response(200, json={"content": "x"})

    async def main() -> None:
        client = InfillClient(
            "http://127.0.0.1:8012/infill", transport=httpx.MockTransport(handler), wire=wire
        )
        for body in bodies:
            await client.infill(body)
        await client.aclose()

    asyncio.run(main())
    return seen


def test_infill_requests_stream_only_until_the_server_proves_fast() -> None:
    body = {"prompt": "", "n_predict": 16, "stream": True}
    assert sent_streams([body] * 3) == [True, False, False]


def test_priming_requests_always_stream_and_teach_nothing() -> None:
    priming = {"prompt": "", "n_predict": 0, "stream": True}
    real = {"prompt": "", "n_predict": 16, "stream": True}
    assert sent_streams([priming, priming, real, priming]) == [True, True, True, True]


def test_other_server_kinds_keep_their_own_streaming() -> None:
    wire = Wire("completions", resolve("qwen"))
    body = {"prompt": "", "input_prefix": "", "input_suffix": "", "n_predict": 16, "stream": True}
    assert sent_streams([body] * 3, wire) == [True, True, True]
