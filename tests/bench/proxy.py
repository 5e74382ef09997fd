"""A transparent, logging TCP proxy in front of llama-server.

Bytes are forwarded unchanged in both directions as soon as they arrive; the
HTTP/1.1 exchanges are parsed on the side to record, per request, when it was
sent, when (and whether) it was answered, and the reply's ``timings``. A client
that closes its connection while a request is unanswered has cancelled it
(llama.nvim cancels a task, llama.vim kills its curl): the proxy then closes
the server side too, exactly as the client would have.

It runs in its own thread with its own asyncio loop, so it works the same for
every plugin, whatever the client (httpx, curl).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Exchange:
    """One HTTP request through the proxy."""

    conn: int
    method: str
    path: str
    t_start: int  # monotonic ns: first byte of the request
    t_sent: int = 0  # last byte of the request
    t_done: int = 0  # last byte of the reply (0: never answered)
    status: int = 0
    cancelled: bool = False  # the client closed the connection before the reply
    t_cancelled: int = 0  # monotonic ns: when it did
    stream: bool = False  # the request asked for a streamed reply
    n_predict: int | None = None
    n_extra: int = 0
    # Each extra chunk as "filename#hash of its text": which chunks moved between requests.
    extra_ids: list[str] = field(default_factory=list)
    reply: dict[str, Any] = field(default_factory=dict)
    # A streamed reply (server-sent events) is no JSON object: its last event,
    # which carries the timings, is kept here instead.
    streamed: dict[str, Any] = field(default_factory=dict)
    id_slot: int | None = None  # the slot the request asked for (-1: the server chooses)

    def timing(self, name: str) -> float | None:
        """A ``timings`` field of the reply, flattened ("timings/x") or nested."""
        value = self.reply.get(f"timings/{name}")
        if value is None:
            nested = self.reply.get("timings")
            if isinstance(nested, dict):
                value = nested.get(name)
        return float(value) if isinstance(value, int | float) else None

    def final_timing(self, name: str) -> float | None:
        """Like ``timing``, from the reply or else from a streamed reply's last event."""
        value = self.timing(name)
        if value is None:
            value = self.streamed.get(f"timings/{name}")
            nested = self.streamed.get("timings")
            if value is None and isinstance(nested, dict):
                value = nested.get(name)
        return float(value) if isinstance(value, int | float) else None

    @property
    def server_ms(self) -> float | None:
        """prompt_ms + predicted_ms as the server reported them."""
        prompt, predicted = self.timing("prompt_ms"), self.timing("predicted_ms")
        if prompt is None and predicted is None:
            return None
        return (prompt or 0.0) + (predicted or 0.0)

    @property
    def wall_ms(self) -> float | None:
        """Time from the request's last byte to the reply's last byte, at the proxy."""
        return (self.t_done - self.t_sent) / 1e6 if self.t_done and self.t_sent else None


class _Message:
    """Incremental parser of one direction of an HTTP/1.1 connection."""

    def __init__(self, is_request: bool) -> None:
        self.is_request = is_request
        self.buf = bytearray()
        self.head: bytes | None = None
        self.remaining = 0
        self.chunked = False
        self.body = bytearray()
        self.started = False

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        """Add bytes; return the (head, body) of every message completed."""
        self.buf += data
        done: list[tuple[bytes, bytes]] = []
        while True:
            if self.head is None:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return done
                self.head = bytes(self.buf[:end])
                del self.buf[: end + 4]
                self.body = bytearray()
                self.chunked = False
                self.remaining = 0
                status_line = self.head.split(b"\r\n", 1)[0]
                if not self.is_request and status_line[9:10] == b"1":
                    done.append((self.head, b""))  # 100 Continue: no body
                    self.head = None
                    continue
                for line in self.head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        self.remaining = int(value.strip() or b"0")
                    elif name == b"transfer-encoding" and b"chunked" in value.lower():
                        self.chunked = True
            if self.chunked:
                if not self._read_chunks():
                    return done
            else:
                take = min(self.remaining, len(self.buf))
                self.body += self.buf[:take]
                del self.buf[:take]
                self.remaining -= take
                if self.remaining:
                    return done
            done.append((self.head, bytes(self.body)))
            self.head = None

    def _read_chunks(self) -> bool:
        while True:
            if self.remaining > 0:
                take = min(self.remaining, len(self.buf))
                self.body += self.buf[:take]
                del self.buf[:take]
                self.remaining -= take
                if self.remaining:
                    return False
                if len(self.buf) < 2:
                    self.remaining = -2  # still owe the CRLF after the chunk
                    return False
                del self.buf[:2]
            if self.remaining == -2:
                if len(self.buf) < 2:
                    return False
                del self.buf[:2]
                self.remaining = 0
            end = self.buf.find(b"\r\n")
            if end < 0:
                return False
            size = int(bytes(self.buf[:end]).split(b";")[0] or b"0", 16)
            if size == 0:
                trailer = self.buf.find(b"\r\n\r\n", end)
                if trailer < 0:
                    return False
                del self.buf[: trailer + 4]
                return True
            del self.buf[: end + 2]
            self.remaining = size


class LoggingProxy:
    """Listens on 127.0.0.1:<port> and forwards to the server at ``upstream_port``."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._conns = 0
        # Called in the proxy's thread as each connection is accepted, with its
        # number (Exchange.conn) and the client's (host, port): who is calling.
        self.on_accept: Callable[[int, Any], None] | None = None

    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self.port = future.result(10)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def snapshot(self) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges)

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self._conns += 1
        conn = self._conns
        if self.on_accept is not None:
            self.on_accept(conn, client_w.get_extra_info("peername"))
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_w.close()
            return
        pending: list[Exchange] = []  # sent, not yet answered
        requests = _Message(is_request=True)
        replies = _Message(is_request=False)
        current: list[Exchange | None] = [None]

        async def up() -> None:
            while True:
                data = await client_r.read(65536)
                now = time.monotonic_ns()
                if not data:
                    return
                if current[0] is None:
                    current[0] = Exchange(conn, "", "", now)
                server_w.write(data)
                for head, body in requests.feed(data):
                    ex = current[0] or Exchange(conn, "", "", now)
                    current[0] = None
                    ex.t_sent = now
                    first = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
                    ex.method, ex.path = first[0], first[1] if len(first) > 1 else ""
                    _describe_body(ex, body)
                    pending.append(ex)
                    with self._lock:
                        self.exchanges.append(ex)
                    if requests.buf:
                        current[0] = Exchange(conn, "", "", now)
                await server_w.drain()

        async def down() -> None:
            while True:
                data = await server_r.read(65536)
                now = time.monotonic_ns()
                if not data:
                    return
                client_w.write(data)
                for head, body in replies.feed(data):
                    status_line = head.split(b"\r\n", 1)[0]
                    status = int(status_line[9:12] or b"0")
                    if 100 <= status < 200 or not pending:
                        continue
                    ex = pending.pop(0)
                    ex.status = status
                    ex.t_done = now
                    try:
                        reply = json.loads(body)
                    except ValueError:
                        ex.streamed = last_event(body)
                    else:
                        if isinstance(reply, dict):
                            ex.reply = reply
                await client_w.drain()

        up_task = asyncio.ensure_future(up())
        down_task = asyncio.ensure_future(down())
        try:
            await asyncio.wait({up_task, down_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if up_task.done():
                # The client hung up: whatever it still waited for is cancelled.
                for ex in pending:
                    ex.cancelled = True
                    ex.t_cancelled = time.monotonic_ns()
            for task in (up_task, down_task):
                task.cancel()
            for writer in (server_w, client_w):
                writer.close()
            await asyncio.gather(up_task, down_task, return_exceptions=True)


def last_event(body: bytes) -> dict[str, Any]:
    """The last JSON object among the ``data:`` events of a server-sent-events body."""
    for block in reversed(body.split(b"\n\n")):
        block = block.strip()
        if block.startswith(b"data:"):
            with contextlib.suppress(ValueError):
                event = json.loads(block[5:])
                if isinstance(event, dict):
                    return event
    return {}


def _describe_body(ex: Exchange, body: bytes) -> None:
    if not body:
        return
    try:
        data = json.loads(body)
    except ValueError:
        return
    if not isinstance(data, dict):
        return
    n_predict = data.get("n_predict")
    ex.n_predict = n_predict if isinstance(n_predict, int) else None
    ex.stream = data.get("stream") is True
    id_slot = data.get("id_slot")
    ex.id_slot = id_slot if isinstance(id_slot, int) else None
    extra = data.get("input_extra")
    ex.n_extra = len(extra) if isinstance(extra, list) else 0
    for chunk in extra if isinstance(extra, list) else ():
        if isinstance(chunk, dict):
            text = str(chunk.get("text", "")).encode("utf-8", "replace")
            ex.extra_ids.append(f"{chunk.get('filename')}#{hashlib.sha1(text).hexdigest()[:6]}")
