"""Instructions: the requests of each pending instruction and the states it shows."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest

from llama_nvim.chat_client import ChatClient
from llama_nvim.instruct import Instructions, Preview
from llama_nvim.messages import InstAsk, InstClose, InstOpen, InstRerun, parse_event
from llama_nvim.protocol import ExtraChunk
from llama_nvim.slot_lease import SlotLease

ENDPOINT = "http://server/v1/chat/completions"
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def sse(*deltas: str) -> bytes:
    chunks = [{"choices": [{"delta": {"content": d}}]} for d in deltas]
    return (
        b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    )


# The request fields of OpenAI's chat API that instruction editing may send.
OPENAI_FIELDS = {"messages", "model", "stream", "temperature"}


class Server:
    """A scripted chat server behind httpx's mock transport; records every request.

    ``llama_server=False``: a strict OpenAI-compatible server (vLLM's way): no
    /props, and HTTP 400 for a request with a field OpenAI's API has not.
    """

    def __init__(
        self,
        *,
        total_slots: int = 1,
        answer: bytes = sse("new ", "text"),
        llama_server: bool = True,
    ) -> None:
        self.requests: list[httpx.Request] = []
        self.total_slots = total_slots
        self.llama_server = llama_server
        self.answer = answer
        self.status = 200
        self.hold: asyncio.Event | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/props" and self.llama_server:
            settings = {"n_ctx": 4096}
            props = {"default_generation_settings": settings, "total_slots": self.total_slots}
            return httpx.Response(200, json=props)
        if request.url.path == "/props":
            return httpx.Response(404, json={"detail": "Not Found"})
        body = json.loads(request.content)
        unknown = set(body) - OPENAI_FIELDS
        if not self.llama_server and unknown:
            return httpx.Response(400, json={"error": {"message": f"unknown fields {unknown}"}})
        if not body["stream"]:
            return httpx.Response(200, json={"choices": [{"message": {"content": ""}}]})
        if self.hold is not None:
            await self.hold.wait()
        if self.status != 200:
            return httpx.Response(self.status, json={"error": {"message": "boom"}})
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=self.answer
        )

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.method == "POST"]


class View:
    def __init__(self) -> None:
        self.updates: list[tuple[int, dict[str, Any]]] = []
        self.changed = asyncio.Event()

    def update(self, inst_id: int, state: dict[str, Any]) -> None:
        self.updates.append((inst_id, state))
        self.changed.set()

    def statuses(self) -> list[str]:
        return [state["status"] for _, state in self.updates]

    async def until(self, status: str) -> dict[str, Any]:
        while True:
            for _, state in self.updates:
                if state["status"] == status:
                    return state
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 5)


def make(
    server: Server, *, lease_dir: str = "", model: str = "", api_key: str = ""
) -> tuple[Instructions, View]:
    client = ChatClient(ENDPOINT, api_key=api_key, transport=httpx.MockTransport(server))
    view = View()
    instructions = Instructions(
        client,
        view,
        model=model,
        extra=lambda filename, cwd: [ExtraChunk("other.py", f"near {filename}")],
        lease=lambda: SlotLease(lease_dir) if lease_dir else None,
        clock=lambda: 100.0,  # a stopped clock: one 'gen' update until the end
    )
    return instructions, view


def run(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """An async test run to its end in a fresh event loop."""

    @functools.wraps(test)
    def sync(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return sync


OPEN = InstOpen(1, ("above",), ("old 1", "old 2"), ("below",), "/p/a.py", "/p")


async def settle(instructions: Instructions) -> None:
    tasks = [t for i in instructions.pending.values() for t in (i.warm, i.task) if t]
    if tasks:
        await asyncio.wait(tasks)


@run
async def test_open_warms_up_then_the_instruction_streams_to_ready() -> None:
    server = Server()
    instructions, view = make(server, model="coder", api_key="secret")
    instructions.handle(OPEN)
    instructions.handle(InstAsk(1, "shorter"))
    ready = await view.until("ready")
    warm, stream = server.bodies()
    assert warm["n_predict"] == 0
    assert "near /p/a.py" in warm["messages"][0]["content"]
    assert "old 1\nold 2" in warm["messages"][0]["content"]
    assert stream["messages"][1] == {"role": "user", "content": "INSTRUCTION: shorter"}
    assert stream["model"] == "coder"
    assert server.requests[-1].headers["authorization"] == "Bearer secret"
    assert view.statuses() == ["proc", "gen", "ready"]
    assert ready == {"status": "ready", "text": "new text", "n_gen": 2}
    assert instructions.pending[1].conversation.messages[-1]["content"] == "new text"


@run
async def test_a_strict_openai_server_gets_openai_fields_only_and_no_warm_up() -> None:
    server = Server(llama_server=False)
    instructions, view = make(server, model="coder")
    instructions.handle(OPEN)
    instructions.handle(InstAsk(1, "shorter"))
    ready = await view.until("ready")
    (stream,) = server.bodies()
    assert set(stream) == OPENAI_FIELDS
    assert stream["messages"][1] == {"role": "user", "content": "INSTRUCTION: shorter"}
    assert ready["text"] == "new text"
    instructions.handle(InstRerun(1))
    await settle(instructions)
    assert [r.url.path for r in server.requests].count("/props") == 1  # asked once


@run
async def test_llama_server_is_asked_about_again_until_it_answers() -> None:
    server = Server()
    down = [True]

    async def flaky(request: httpx.Request) -> httpx.Response:
        if down[0]:
            raise httpx.ConnectError("connection refused", request=request)
        return await server(request)

    client = ChatClient(ENDPOINT, transport=httpx.MockTransport(flaky))
    instructions = Instructions(client, View(), model="", extra=lambda f, c: [])
    instructions.handle(OPEN)
    await settle(instructions)
    down[0] = False
    instructions.handle(InstAsk(1, "shorter"))
    await settle(instructions)
    (stream,) = server.bodies()
    assert stream["cache_prompt"] is True  # known to be llama-server once it answered


@run
async def test_rerun_sends_the_same_conversation_again() -> None:
    server = Server()
    instructions, view = make(server)
    instructions.handle(OPEN)
    instructions.handle(InstAsk(1, "shorter"))
    await view.until("ready")
    view.updates.clear()
    instructions.handle(InstRerun(1))
    await view.until("ready")
    first, rerun = server.bodies()[1:]
    assert rerun["messages"] == first["messages"]


@run
async def test_a_failed_request_is_one_error_update_and_the_instruction_is_gone() -> None:
    server = Server()
    server.status = 500
    instructions, view = make(server)
    instructions.handle(OPEN)
    instructions.handle(InstAsk(1, "shorter"))
    error = await view.until("error")
    assert error["error"].startswith("llama.nvim: instruction failed:")
    assert "boom" in error["error"]
    assert not instructions.pending


@run
async def test_close_cancels_the_stream_and_nothing_more_is_shown() -> None:
    server = Server()
    server.hold = asyncio.Event()
    instructions, view = make(server)
    instructions.handle(OPEN)
    instructions.handle(InstAsk(1, "shorter"))
    await view.until("proc")
    task = instructions.pending[1].task
    assert task is not None
    instructions.handle(InstClose(1))
    await asyncio.wait([task])
    assert task.cancelled()
    assert view.statuses() == ["proc"]
    assert not instructions.pending


@run
async def test_events_for_unknown_instructions_are_ignored() -> None:
    instructions, view = make(Server())
    instructions.handle(InstAsk(7, "x"))
    instructions.handle(InstRerun(7))
    instructions.handle(InstClose(7))
    assert not view.updates


@run
async def test_each_instruction_leases_a_free_slot_and_gives_it_back(tmp_path: Path) -> None:
    server = Server(total_slots=3)
    held_by_fim = SlotLease(str(tmp_path))
    assert held_by_fim.acquire(3) == 0
    instructions, _ = make(server, lease_dir=str(tmp_path))
    instructions.handle(OPEN)
    instructions.handle(InstOpen(2, (), ("x",), ()))
    await settle(instructions)
    assert [instructions.pending[i].id_slot for i in (1, 2)] == [1, 2]
    instructions.handle(InstOpen(3, (), ("y",), ()))
    await settle(instructions)
    assert instructions.pending[3].id_slot == -1  # none free: the server chooses
    instructions.handle(InstClose(1))
    again = SlotLease(str(tmp_path))
    assert again.acquire(3) == 1
    for lease in (held_by_fim, again):
        lease.release()
    await instructions.close()


def test_instruction_events_are_parsed_and_checked() -> None:
    lines = {"n": 2, "text": "a\nb"}
    payload = {"id": 3, "prefix": lines, "selection": lines, "filename": "f", "cwd": "c"}
    assert parse_event("inst_open", payload) == InstOpen(3, ("a", "b"), ("a", "b"), (), "f", "c")
    assert parse_event("inst_ask", {"id": 3, "instruction": "go"}) == InstAsk(3, "go")
    assert parse_event("inst_rerun", {"id": 3}) == InstRerun(3)
    assert parse_event("inst_close", {"id": 3}) == InstClose(3)
    rejected: list[str] = []
    assert parse_event("inst_ask", {"id": 3, "instruction": ""}, rejected.append) is None
    assert parse_event("inst_close", {"id": True}, rejected.append) is None
    assert rejected == [
        "event 'inst_ask': instruction: empty",
        "event 'inst_close': id: not an integer",
    ]


@pytest.mark.parametrize("status", [401, 404])
@run
async def test_failures_name_the_option_to_fix(status: int) -> None:
    server = Server()
    server.status = status
    instructions, view = make(server)
    instructions.handle(OPEN)
    instructions.handle(InstAsk(1, "x"))
    error = await view.until("error")
    assert ("api_key" if status == 401 else "endpoint_inst") in error["error"]


def test_a_secret_file_gets_no_instruction() -> None:
    server = Server()
    client = ChatClient(ENDPOINT, transport=httpx.MockTransport(server))
    view = View()
    instructions = Instructions(
        client, view, model="", extra=lambda f, c: [], secret=lambda f, c: f.endswith(".env")
    )
    instructions.handle(InstOpen(1, (), ("KEY=1",), (), "/p/.env", "/p"))
    instructions.handle(InstAsk(1, "x"))
    assert view.statuses() == ["error"]
    assert "never sent" in view.updates[0][1]["error"]
    assert not instructions.pending
    assert not server.requests


@run
async def test_a_change_held_back_by_the_preview_pace_is_sent_when_due() -> None:
    now = [0.0]
    sent: list[float] = []
    delivered = asyncio.Event()

    def send() -> None:
        sent.append(now[0])
        delivered.set()

    preview = Preview(send, lambda: now[0])
    preview.changed()
    now[0] = 0.01
    delivered.clear()
    preview.changed()  # too soon: held back ...
    preview.changed()
    assert sent == [0.0]
    assert preview.held
    await asyncio.wait_for(delivered.wait(), 5)  # ... and sent once it is due, unasked
    assert sent == [0.0, 0.01]
    assert not preview.held
    now[0] = 0.02
    preview.changed()  # too soon after that one: held back, then the stream ends
    preview.stop()
    assert not preview.held
    assert sent == [0.0, 0.01]
