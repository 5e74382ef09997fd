"""A lean HTTP/1.1 transport under httpx, for the plugin's small, frequent requests.

httpx stays the client API (timeouts, headers, errors); this replaces what
sits under it (httpcore's pool, h11's state machine, anyio's streams), which
cost the editor's host process more CPU per keystroke than the rest of the
plugin. It keeps a connection to the server alive between requests and reads
replies with a few buffered reads.

An exchange that ends early (cancelled, failed, its reply left unread) closes
its connection: that is how llama-server learns to drop the work. A kept-alive
connection the server closed while idle is noticed and replaced; a request
sent on one that closes before any byte of the answer is sent once more on a
fresh connection (the server never read it).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

# Below cpp-httplib's (llama-server's) 5 s idle limit, so that a connection is
# not reused just as the server closes it.
KEEPALIVE_S = 4.0
MAX_IDLE = 2  # idle connections kept per server
READ_SIZE = 1 << 16
MAX_HEAD_BYTES = 1 << 16
T = TypeVar("T")


class _ServerClosed(Exception):
    """A reused connection closed before any byte of the answer: safe to send again."""


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = field(default_factory=time.monotonic)

    def reusable(self, now: float) -> bool:
        """Still open, not closed by the server while idle, not idle too long."""
        return (
            not self.writer.is_closing()
            and not self.reader.at_eof()
            and now - self.idle_since < KEEPALIVE_S
        )

    def close(self) -> None:
        # No waiting for the close to complete: this runs in cancelled tasks too.
        self.writer.close()


async def within(awaitable: Awaitable[T], seconds: float) -> T:
    """``awaitable``'s result; asyncio.TimeoutError after ``seconds``.

    asyncio.timeout where there is one: wait_for (before Python 3.12) makes a
    task of ``awaitable``, a cost on every read.
    """
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)


async def _within(
    awaitable: Awaitable[T],
    seconds: float | None,
    timeout: type[httpx.TimeoutException],
    request: httpx.Request,
) -> T:
    """``awaitable``'s result, or ``timeout`` raised after ``seconds`` (None: no limit)."""
    if seconds is None:
        return await awaitable
    try:
        return await within(awaitable, seconds)
    except asyncio.TimeoutError:
        raise timeout(f"no answer within {seconds:g} s", request=request) from None


@dataclass
class _Head:
    version: bytes
    status: int
    headers: list[tuple[bytes, bytes]]

    def values(self, name: bytes) -> list[bytes]:
        return [v.strip().lower() for k, v in self.headers if k.lower() == name]

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip() for v in self.values(b"connection") for t in v.split(b",")}
        if self.version == b"HTTP/1.1":
            return b"close" not in tokens
        return b"keep-alive" in tokens


def _parse_head(raw: bytes, request: httpx.Request) -> _Head:
    lines = raw[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise httpx.RemoteProtocolError("malformed status line from the server", request=request)
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            raise httpx.RemoteProtocolError("malformed header from the server", request=request)
        headers.append((name.strip(), value.strip()))
    return _Head(parts[0], int(parts[1]), headers)


class _Body(httpx.AsyncByteStream):
    """A reply's body, read as the client asks for it; gives the connection back when done."""

    def __init__(
        self,
        transport: LeanTransport,
        key: tuple[str, str, int],
        conn: _Connection,
        head: _Head,
        request: httpx.Request,
    ) -> None:
        self._transport = transport
        self._key = key
        self._conn = conn
        self._head = head
        self._request = request
        self._finished = False
        self._closed = False
        self._reusable = head.keep_alive
        timeouts = request.extensions.get("timeout", {})
        self._read_timeout: float | None = timeouts.get("read")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        head = self._head
        try:
            if self._request.method == "HEAD" or head.status in (204, 304):
                pass
            elif b"chunked" in b",".join(head.values(b"transfer-encoding")):
                async for piece in self._chunked():
                    yield piece
            else:
                lengths = set(head.values(b"content-length"))
                if len(lengths) > 1 or not all(v.isdigit() for v in lengths):
                    raise httpx.RemoteProtocolError("bad Content-Length", request=self._request)
                async for piece in self._sized(int(lengths.pop()) if lengths else -1):
                    yield piece
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as err:
            self._drop()
            raise _read_problem(err, self._request) from err
        except BaseException:
            self._drop()
            raise
        self._finished = True
        self._done()

    async def _read(self, size: int) -> bytes:
        reading = self._conn.reader.read(size)
        piece = await _within(reading, self._read_timeout, httpx.ReadTimeout, self._request)
        if not piece:
            raise asyncio.IncompleteReadError(b"", size)
        return piece

    async def _sized(self, length: int) -> AsyncIterator[bytes]:
        """``length`` bytes; -1: up to the end of the connection (not reusable after)."""
        if length < 0:
            self._reusable = False
            with contextlib.suppress(asyncio.IncompleteReadError):
                while True:
                    yield await self._read(READ_SIZE)
        while length > 0:
            piece = await self._read(min(length, READ_SIZE))
            length -= len(piece)
            yield piece

    async def _line(self) -> bytes:
        reading = self._conn.reader.readuntil(b"\r\n")
        return await _within(reading, self._read_timeout, httpx.ReadTimeout, self._request)

    async def _chunked(self) -> AsyncIterator[bytes]:
        while True:
            size_field = (await self._line()).split(b";", 1)[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                raise httpx.RemoteProtocolError("bad chunk size", request=self._request) from None
            if size == 0:
                while await self._line() != b"\r\n":
                    pass  # trailers: unused
                return
            async for piece in self._sized(size):
                yield piece
            if await self._line() != b"\r\n":
                raise httpx.RemoteProtocolError("bad chunk end", request=self._request)

    def _drop(self) -> None:
        if not self._closed:
            self._closed = True
            self._conn.close()

    def _done(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._reusable:
            self._transport.keep(self._key, self._conn)
        else:
            self._conn.close()

    async def aclose(self) -> None:
        """Close the connection unless the whole reply was read (then keep it alive)."""
        if not self._finished:
            self._drop()


def _read_problem(err: Exception, request: httpx.Request) -> httpx.TransportError:
    if isinstance(err, asyncio.IncompleteReadError):
        return httpx.RemoteProtocolError(
            "the server closed the connection before the end of its reply", request=request
        )
    if isinstance(err, asyncio.LimitOverrunError):
        return httpx.RemoteProtocolError("reply head too long", request=request)
    return httpx.ReadError(str(err) or type(err).__name__, request=request)


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio streams, with kept-alive connections; http and https.

    ``verify``: the TLS context for https (certificates are always checked).
    """

    def __init__(self, verify: ssl.SSLContext | None = None) -> None:
        self._ssl = verify or ssl.create_default_context()
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self.connections_opened = 0  # for tests: how often a connection was made

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; the reply's head is read, its body is read as the client reads it."""
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {url.scheme!r}", request=request)
        key = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        payload = _request_bytes(request, await request.aread())
        conn, head = await self._send(key, payload, request)
        return httpx.Response(
            head.status,
            headers=head.headers,
            stream=_Body(self, key, conn, head, request),
            extensions={"http_version": head.version},
        )

    async def _send(
        self, key: tuple[str, str, int], payload: bytes, request: httpx.Request
    ) -> tuple[_Connection, _Head]:
        """The connection the request went on, and the reply's head."""
        conn = self._reusable(key)
        if conn is not None:
            try:
                return conn, await self._exchange(conn, payload, request, reused=True)
            except _ServerClosed:
                pass  # closed by the server while idle: a fresh connection
        conn = await self._connect(key, request)
        return conn, await self._exchange(conn, payload, request, reused=False)

    def _reusable(self, key: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(key, [])
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.reusable(now):
                return conn
            conn.close()
        return None

    def keep(self, key: tuple[str, str, int], conn: _Connection) -> None:
        """Keep ``conn`` (its exchange ended cleanly) for the next request."""
        idle = self._idle.setdefault(key, [])
        if len(idle) >= MAX_IDLE:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    async def _connect(self, key: tuple[str, str, int], request: httpx.Request) -> _Connection:
        scheme, host, port = key
        tls = self._ssl if scheme == "https" else None
        timeouts = request.extensions.get("timeout", {})
        opening = asyncio.open_connection(
            host, port, ssl=tls, server_hostname=host if tls else None, limit=MAX_HEAD_BYTES
        )
        try:
            reader, writer = await _within(
                opening, timeouts.get("connect"), httpx.ConnectTimeout, request
            )
        except ssl.SSLError as err:
            raise httpx.ConnectError(f"SSL: {err}", request=request) from err
        except OSError as err:
            raise httpx.ConnectError(str(err) or type(err).__name__, request=request) from err
        self.connections_opened += 1
        return _Connection(reader, writer)

    async def _exchange(
        self, conn: _Connection, payload: bytes, request: httpx.Request, *, reused: bool
    ) -> _Head:
        """Send ``payload`` and read the reply's head (skipping interim 1xx replies)."""
        timeouts = request.extensions.get("timeout", {})
        try:
            conn.writer.write(payload)
            await conn.writer.drain()
            while True:
                reading = conn.reader.readuntil(b"\r\n\r\n")
                raw = await _within(reading, timeouts.get("read"), httpx.ReadTimeout, request)
                head = _parse_head(raw, request)
                if not 100 <= head.status < 200:
                    return head
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as err:
            conn.close()
            nothing = isinstance(err, asyncio.IncompleteReadError) and not err.partial
            if reused and (nothing or isinstance(err, ConnectionError)):
                raise _ServerClosed from err
            if isinstance(err, ConnectionError | asyncio.IncompleteReadError) and not reused:
                raise httpx.RemoteProtocolError(
                    "the server closed the connection without answering", request=request
                ) from err
            raise _read_problem(err, request) from err
        except BaseException:
            conn.close()  # cancelled or timed out: the server must see the hang-up
            raise

    async def aclose(self) -> None:
        """Close the kept-alive connections."""
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


def _request_bytes(request: httpx.Request, body: bytes) -> bytes:
    """The request line, headers and body, as sent."""
    lines = [b"%s %s HTTP/1.1" % (request.method.encode(), request.url.raw_path)]
    lines.extend(b"%s: %s" % (name, value) for name, value in request.headers.raw)
    if body and "content-length" not in request.headers:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
