"""transport.LeanTransport (under InfillClient) against the fault-injecting fake server."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from llama_nvim.client import InfillClient
from llama_nvim.problems import Kind, ServerProblem
from llama_nvim.protocol import Completion
from llama_nvim.transport import LeanTransport
from tests.fakeserver import FakeServer, Received, Reply
from tests.harness import wait_until

T = TypeVar("T")
BODY: dict[str, Any] = {"prompt": "x = ", "n_predict": 8}


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = FakeServer()
    yield server
    server.close()


def with_client(
    fake: FakeServer, scenario: Callable[[InfillClient], Awaitable[T]], timeout_s: float = 5.0
) -> T:
    async def main() -> T:
        client = InfillClient(fake.infill_url, timeout_s=timeout_s)
        try:
            return await scenario(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def answers(*replies: Reply) -> Callable[[Received], Reply]:
    """The fake's replies to /infill, in order (the last one repeated)."""
    queue = list(replies)

    def responder(_request: Received) -> Reply:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return responder


def contents(fake: FakeServer, n: int) -> list[str]:
    async def scenario(client: InfillClient) -> list[str]:
        return [(await client.infill(BODY)).content for _ in range(n)]

    return with_client(fake, scenario)


def test_requests_share_one_kept_alive_connection(fake: FakeServer) -> None:
    fake.responder = answers(Reply.completion("a"), Reply.completion("b"))
    assert contents(fake, 3) == ["a", "b", "b"]
    assert fake.connections == 1
    assert [r.json() for r in fake.infill_requests()] == [{**BODY, "stream": True}] + [
        {**BODY, "stream": False}
    ] * 2, "streamed until a reply came fast"


def test_chunked_streamed_reply_is_joined_and_the_connection_kept(fake: FakeServer) -> None:
    fake.responder = answers(Reply.infill_stream(["de", "f f", "():"]))
    assert contents(fake, 2) == ["def f():"] * 2
    assert fake.connections == 1


def test_a_streamed_reply_is_told_as_it_grows_over_the_socket(fake: FakeServer) -> None:
    # A server generating slowly: each event some time after the one before.
    fake.responder = answers(Reply.infill_stream(["de", "f f", "():"], event_gap=0.05))
    seen: list[tuple[str, float]] = []

    async def scenario(client: InfillClient) -> str:
        clock = asyncio.get_running_loop().time
        completion = await client.infill(BODY, lambda text: seen.append((text, clock())))
        seen.append(("end", clock()))
        return completion.content

    assert with_client(fake, scenario) == "def f():"
    assert [text for text, _ in seen] == ["de", "def f", "def f():", "end"]
    # Each piece was told as it came, not all at the reply's end (three gaps later).
    first_told, end = seen[0][1], seen[-1][1]
    assert end - first_told >= 0.1


def test_connection_dropped_by_the_server_after_an_answer_loses_nothing(fake: FakeServer) -> None:
    # The server closes each kept-alive connection after its answer without
    # saying so (as on its idle limit): every request still gets its answer,
    # each sent once.
    fake.responder = answers(Reply.completion("a", close_after=True))
    assert contents(fake, 3) == ["a"] * 3
    assert len(fake.infill_requests()) == 3
    assert fake.connections == 3


def test_connection_close_header_is_honoured(fake: FakeServer) -> None:
    fake.responder = answers(Reply.completion("a", headers={"Connection": "close"}))
    assert contents(fake, 2) == ["a"] * 2
    assert fake.connections == 2


def answered_raw(raw: bytes) -> Completion | ServerProblem:
    """One /infill request answered with ``raw`` bytes by a bare socket (not an HTTP server)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        async def main() -> Completion | ServerProblem:
            client = InfillClient(f"http://127.0.0.1:{port}/infill")
            task = asyncio.ensure_future(client.infill(BODY))
            loop = asyncio.get_running_loop()
            conn, _ = await loop.run_in_executor(None, listener.accept)
            with conn:
                await loop.run_in_executor(None, conn.recv, 65536)
                conn.sendall(raw)
            try:
                return await task
            except ServerProblem as problem:
                return problem
            finally:
                await client.aclose()

        return asyncio.run(main())


def test_reply_without_length_is_read_to_the_end_of_the_connection() -> None:
    reply = json.dumps({"content": "to the end"}).encode()
    answer = answered_raw(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + reply)
    assert isinstance(answer, Completion)
    assert answer.content == "to the end"


@pytest.mark.parametrize(
    "reply",
    [
        Reply.completion("a", cut_after=5),
        Reply.infill_stream(["a", "b"], cut_after=5),
        Reply(close_without_answer=True),
    ],
    ids=["cut-body", "cut-stream", "no-answer"],
)
def test_a_reply_cut_short_is_one_problem_and_the_next_request_works(
    fake: FakeServer, reply: Reply
) -> None:
    fake.responder = answers(reply, Reply.completion("next"))

    async def scenario(client: InfillClient) -> tuple[Kind, str]:
        with pytest.raises(ServerProblem) as info:
            await client.infill(BODY)
        return info.value.kind, (await client.infill(BODY)).content

    assert with_client(fake, scenario) == (Kind.UNREACHABLE, "next")
    assert len(fake.infill_requests()) == 2, "a request the server took is not sent again"


def test_malformed_reply_head_is_one_problem() -> None:
    problem = answered_raw(b"SPDY/3 200\r\n\r\n")
    assert isinstance(problem, ServerProblem)
    assert problem.kind is Kind.UNREACHABLE


def test_a_cancelled_request_hangs_up_and_the_next_one_uses_a_new_connection(
    fake: FakeServer,
) -> None:
    fake.responder = answers(Reply.completion("warm"), Reply.completion("late", delay=30))

    async def scenario(client: InfillClient) -> str:
        await client.infill(BODY)  # a kept-alive connection
        task = asyncio.ensure_future(client.infill(BODY))
        while len(fake.infill_requests()) < 2:
            await asyncio.sleep(0.005)
        task.cancel()
        await asyncio.wait({task})
        while not fake.infill_requests()[1].hung_up:
            await asyncio.sleep(0.005)
        fake.responder = answers(Reply.completion("after"))
        return (await client.infill(BODY)).content

    assert with_client(fake, scenario) == "after"
    assert fake.infill_requests()[1].hung_up
    assert fake.connections == 2


def test_a_frozen_server_trips_the_deadline_and_is_hung_up_on(fake: FakeServer) -> None:
    fake.responder = answers(Reply.completion("never", delay=30))

    async def scenario(client: InfillClient) -> Kind:
        with pytest.raises(ServerProblem) as info:
            await client.infill(BODY)
        return info.value.kind

    started = time.monotonic()
    assert with_client(fake, scenario, timeout_s=0.3) is Kind.TIMEOUT
    assert time.monotonic() - started < 10
    wait_until(lambda: fake.infill_requests()[0].hung_up, timeout=5, what="the hang-up")


def test_nothing_listening_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused

    async def main() -> ServerProblem:
        client = InfillClient(f"http://127.0.0.1:{port}/infill")
        try:
            with pytest.raises(ServerProblem) as info:
                await client.infill(BODY)
            return info.value
        finally:
            await client.aclose()

    assert asyncio.run(main()).kind is Kind.UNREACHABLE


def test_transport_speaks_plain_httpx(fake: FakeServer) -> None:
    async def main() -> list[Any]:
        async with httpx.AsyncClient(transport=LeanTransport()) as http:
            got = await http.get(fake.url + "/health")
            posted = await http.post(fake.infill_url, json={"prompt": "p"})
            with pytest.raises(httpx.UnsupportedProtocol):
                await http.get("ftp://127.0.0.1/x")
            return [got.status_code, got.json(), posted.json()["content"]]

    assert asyncio.run(main()) == [200, {"status": "ok"}, "x"]
    request = fake.infill_requests()[0]
    assert request.method == "POST"
    assert request.headers["content-length"] == str(len(request.body))
    assert request.headers["host"] == f"127.0.0.1:{fake.port}"


def test_a_read_timeout_of_httpx_is_kept(fake: FakeServer) -> None:
    fake.responder = answers(Reply.completion("late", delay=5))

    async def main() -> None:
        async with httpx.AsyncClient(transport=LeanTransport(), timeout=0.2) as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.post(fake.infill_url, content=b"{}")

    asyncio.run(main())
    wait_until(lambda: fake.infill_requests()[0].hung_up, timeout=5, what="the hang-up")
