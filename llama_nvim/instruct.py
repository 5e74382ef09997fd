"""Instruction editing: one conversation per selection, streamed to the Lua half.

The Lua half (lua/llama_nvim/instruct.lua) owns the selection, its marks, the
keys and the prompt for the instruction; it tells us when a selection is
opened (``InstOpen``: we warm the server's cache while the user types),
asked (``InstAsk``: first instruction or a follow-up), asked again
(``InstRerun``) and closed (``InstClose``: accepted, cancelled or dropped).
We answer with state updates (``InstructView.update``): processing,
generating with the text so far (at most one update per ``UPDATE_S``), ready
with the whole text, or failed. Every instruction runs on its own: several
may stream at once, each on a server slot of its own when one is free.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from .chat import Conversation, EditContext, stream_body, system_message, warm_up_body
from .chat_client import ChatClient, ChatServer
from .debuglog import DebugLog
from .messages import InstAsk, InstClose, InstEvent, InstOpen
from .problems import Kind, ServerProblem
from .protocol import ExtraChunk
from .slot_lease import SERVER_CHOOSES, SlotLease

# The preview is redrawn at most this often (seconds).
UPDATE_S = 0.03


class InstructView(Protocol):
    """Where the state of each instruction goes (the Lua half, or a test's recorder)."""

    def update(self, inst_id: int, state: dict[str, Any]) -> None:
        """Draw ``state`` for instruction ``inst_id``."""


class NvimInstructView:
    """Sends the updates to lua/llama_nvim/instruct.lua, never waiting for Neovim."""

    def __init__(self, nvim: Any) -> None:
        self._nvim = nvim

    def update(self, inst_id: int, state: dict[str, Any]) -> None:
        """An async notification: Neovim draws it when it gets to it."""
        self._nvim.exec_lua(
            "require('llama_nvim.instruct').update(...)", inst_id, state, async_=True
        )


def failure_text(problem: ServerProblem, url: str) -> str:
    """What went wrong asking ``url`` (the chat endpoint, or its model list), for the user."""
    detail = f" ({problem.detail})" if problem.detail else ""
    kind = problem.kind
    if kind is Kind.UNREACHABLE:
        return f"server not reachable at {url}{detail}"
    if kind is Kind.UNAUTHORIZED:
        return "API key rejected (HTTP 401): set g:llama_config.api_key"
    if kind is Kind.NOT_FOUND:
        return f"HTTP 404 from {url}: is g:llama_config.endpoint_inst a chat completions URL?"
    if kind is Kind.TIMEOUT:
        return f"server too slow to answer{detail}"
    if kind is Kind.TLS:
        return f"TLS failed{detail}: see g:llama_config.ca_bundle"
    return f"the server failed{detail}"


def describe_failure(problem: ServerProblem, endpoint: str) -> str:
    """One line for the user: what went wrong with an instruction."""
    return f"llama.nvim: instruction failed: {failure_text(problem, endpoint)}"


class Preview:
    """Sends the text so far at most every UPDATE_S; a change held back follows when due."""

    def __init__(self, send: Callable[[], None], clock: Callable[[], float]) -> None:
        self._send = send
        self._clock = clock
        self._sent_at: float | None = None
        self._due: asyncio.TimerHandle | None = None

    def changed(self) -> None:
        """The text grew: send it now, or once UPDATE_S has passed since the last."""
        now = self._clock()
        if self._sent_at is None or now - self._sent_at >= UPDATE_S:
            self._send_now()
        elif self._due is None:
            wait = UPDATE_S - (now - self._sent_at)
            self._due = asyncio.get_running_loop().call_later(wait, self._send_now)

    @property
    def held(self) -> bool:
        """A change waits to be sent."""
        return self._due is not None

    def _send_now(self) -> None:
        self.stop()
        self._sent_at = self._clock()
        self._send()

    def stop(self) -> None:
        """Nothing more to send (the stream ended, failed or was cancelled)."""
        if self._due is not None:
            self._due.cancel()
        self._due = None


@dataclass
class Instruction:
    """One selection's conversation and the requests made for it."""

    conversation: Conversation
    id_slot: int = SERVER_CHOOSES
    lease: SlotLease | None = None
    warm: asyncio.Task[None] | None = None
    task: asyncio.Task[None] | None = None
    text: list[str] = field(default_factory=list)
    n_gen: int = 0

    def stop(self) -> None:
        """Cancel what runs (closing its connection stops the server's work)."""
        for task in (self.warm, self.task):
            if task is not None:
                task.cancel()


class Instructions:
    """Every pending instruction of this editor, by the id the Lua half gave it."""

    def __init__(
        self,
        client: ChatClient,
        view: InstructView,
        *,
        model: str,
        extra: Callable[[str, str], list[ExtraChunk]],
        lease: Callable[[], SlotLease | None] = lambda: None,
        secret: Callable[[str, str], bool] = lambda filename, cwd: False,
        log: DebugLog | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.model = model
        self._view = view
        self._extra = extra
        self._lease = lease
        self._secret = secret
        self._log = log or DebugLog("", enabled=False)
        self._clock = clock
        self._pending: dict[int, Instruction] = {}
        self._server: ChatServer | None = None

    @property
    def pending(self) -> dict[int, Instruction]:
        """The instructions open now (read-only use: tests, status)."""
        return self._pending

    def handle(self, event: InstEvent) -> None:
        """One event from the Lua half."""
        if isinstance(event, InstOpen):
            self._open(event)
            return
        inst = self._pending.get(event.id)
        if inst is None:
            return
        if isinstance(event, InstClose):
            self._close(event.id)
        elif isinstance(event, InstAsk):
            inst.conversation.ask(event.instruction)
            self._send(event.id, inst)
        elif inst.conversation.retry():
            self._send(event.id, inst)

    async def close(self) -> None:
        """Stop every instruction (the plugin reloads or ends)."""
        tasks = [t for i in self._pending.values() for t in (i.warm, i.task) if t is not None]
        for inst_id in list(self._pending):
            self._close(inst_id)
        if tasks:
            await asyncio.wait(tasks)

    # -- the requests --------------------------------------------------------------------

    def _open(self, event: InstOpen) -> None:
        if event.id in self._pending:
            return
        if self._secret(event.filename, event.cwd):
            error = (
                "llama.nvim: no instruction here: this file is never sent to the server "
                "(:help llama_nvim-privacy)"
            )
            self._view.update(event.id, {"status": "error", "error": error})
            return
        context = EditContext(
            event.prefix,
            event.selection,
            event.suffix,
            tuple(self._extra(event.filename, event.cwd)),
        )
        inst = Instruction(Conversation(system_message(context)))
        self._pending[event.id] = inst
        inst.warm = self._spawn(self._warm_up(event.id, inst))

    def _close(self, inst_id: int) -> None:
        inst = self._pending.pop(inst_id, None)
        if inst is None:
            return
        inst.stop()
        if inst.lease is not None:
            inst.lease.release()

    def _send(self, inst_id: int, inst: Instruction) -> None:
        if inst.task is not None:
            inst.task.cancel()
        inst.text, inst.n_gen = [], 0
        inst.task = self._spawn(self._stream(inst_id, inst, inst.task))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return asyncio.ensure_future(coro)

    async def _server_kind(self) -> ChatServer:
        """llama-server or another kind, asked once (again while the server does not answer)."""
        if self._server is None:
            self._server = await self.client.server()
            if self._server is not None:
                self._log.write("inst_server", llama_server=self._server.llama_server)
        # Unknown yet: OpenAI's fields only, which every kind accepts.
        return self._server or ChatServer(llama_server=False)

    def _slot(self, inst: Instruction, total_slots: int) -> int:
        """A server slot no other editor or instruction holds, or the server's choice."""
        lease = self._lease() if total_slots > 1 else None
        slot = lease.acquire(total_slots) if lease is not None else None
        if lease is not None and slot is not None:
            inst.lease, inst.id_slot = lease, slot
        return inst.id_slot

    async def _warm_up(self, inst_id: int, inst: Instruction) -> None:
        server = await self._server_kind()
        if not server.llama_server:
            return  # n_predict 0 and slots are llama-server's: nothing to warm elsewhere
        id_slot = self._slot(inst, server.total_slots)
        body = warm_up_body(inst.conversation.warm_up(), model=self.model, id_slot=id_slot)
        self._log.write("inst_warm_up", id=inst_id, id_slot=id_slot)
        try:
            await self.client.warm_up(body)
        except ServerProblem as problem:
            # The instruction itself will say what is wrong, if it still is.
            self._log.write("inst_warm_up_failed", id=inst_id, error=str(problem))

    async def _stream(
        self, inst_id: int, inst: Instruction, previous: asyncio.Task[None] | None
    ) -> None:
        # The warm-up (and a stream just cancelled) end first: on a pinned
        # slot the server would queue this request behind them anyway.
        for earlier in (inst.warm, previous):
            if earlier is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([earlier])
        self._view.update(inst_id, {"status": "proc"})
        server = await self._server_kind()
        body = stream_body(
            inst.conversation.messages,
            model=self.model,
            id_slot=inst.id_slot,
            llama_server=server.llama_server,
        )
        self._log.write(
            "inst_send", id=inst_id, id_slot=body.get("id_slot"), messages=len(body["messages"])
        )
        preview = Preview(lambda: self._view.update(inst_id, self._generating(inst)), self._clock)
        try:
            stream = self.client.stream(body)
            async with contextlib.aclosing(stream):
                async for delta in stream:
                    inst.text.append(delta)
                    inst.n_gen += 1
                    preview.changed()
        except ServerProblem as problem:
            self._log.write("inst_failed", id=inst_id, error=str(problem))
            inst.task = None  # this task: it ends here, not cancelled
            self._close(inst_id)
            error = describe_failure(problem, self.client.endpoint)
            self._view.update(inst_id, {"status": "error", "error": error})
            return
        finally:
            preview.stop()
        text = "".join(inst.text)
        inst.conversation.answered(text)
        self._log.write("inst_done", id=inst_id, n_gen=inst.n_gen, chars=len(text))
        self._view.update(inst_id, {"status": "ready", "text": text, "n_gen": inst.n_gen})

    @staticmethod
    def _generating(inst: Instruction) -> dict[str, Any]:
        return {"status": "gen", "text": "".join(inst.text), "n_gen": inst.n_gen}
