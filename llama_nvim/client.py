"""HTTP edge: talks to llama-server over a kept-alive connection (httpx on transport.py).

Everything that can go wrong on the wire comes out as a ServerProblem, so the
rest of the plugin never sees an httpx exception. Cancelling the awaiting task
closes the connection, which makes llama-server drop the work of a streamed
request; /infill requests are streamed only while the server is slow
(streaming.py), and a streamed answer is handed on as it grows, so a slow
server's suggestion can be shown while it is still being generated.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from .backends import Decoder, Wire, strip_api_path
from .problems import Kind, ServerProblem
from .protocol import (
    Completion,
    ProtocolError,
    ServerProps,
    StreamError,
    StreamReader,
    error_message,
    merge_stream,
    parse_completion,
    parse_props,
)
from .streaming import StreamChoice
from .transport import LeanTransport, within

# A reply bigger than this is not a code suggestion; stop reading rather than
# hold megabytes in the editor's host process.
MAX_REPLY_BYTES = 1 << 20

# Told the answer's text so far, each time a streamed reply adds to it.
OnText = Callable[[str], None]


def server_root(endpoint: str) -> str:
    """The server's base URL, from the configured endpoint (/infill, /v1/completions...)."""
    parts = urlsplit(endpoint)
    path = strip_api_path(parts.path)
    return urlunsplit((parts.scheme, parts.netloc, path.rstrip("/"), "", ""))


def _status_problem(status: int, body: bytes) -> ServerProblem:
    try:
        message = error_message(json.loads(body))
    except ValueError:
        message = None
    if message is None:
        text = body[:200].decode("utf-8", "replace").strip()
        message = text if text and "<" not in text[:1] else ""
    detail = f"HTTP {status}" + (f": {message}" if message else "")
    if status == 401:
        return ServerProblem(Kind.UNAUTHORIZED, detail)
    if status == 404:
        return ServerProblem(Kind.NOT_FOUND, detail)
    if status == 501:
        return ServerProblem(Kind.NO_FIM, detail)
    if status == 503:
        return ServerProblem(Kind.LOADING, detail)
    if 400 <= status < 500:
        return ServerProblem(Kind.BAD_REQUEST, detail)
    return ServerProblem(Kind.SERVER_ERROR, detail)


class InfillClient:
    """Async client for llama-server's /infill, /props and /health.

    ``transport`` is injectable so tests can fake the server without sockets.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        api_key: str = "",
        timeout_s: float = 5.0,
        ca_bundle: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
        wire: Wire | None = None,
    ) -> None:
        self.endpoint = endpoint
        # The server kind's request and reply format (backends.py).
        self.wire = wire or Wire()
        self._no_props: ServerProblem | None = None  # a server without /props, once found
        self._api_key = api_key
        self._root = server_root(endpoint)
        self._timeout_s = timeout_s
        headers = {"Content-Type": "application/json"}
        # No key, no header: an empty Bearer token confuses some proxies.
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        # Certificates are always checked; a private CA can be named.
        verify = ssl.create_default_context(cafile=ca_bundle or None)
        # The lean transport unless a test brings its own (transport.py).
        self._transport = transport or LeanTransport(verify)
        self._http = httpx.AsyncClient(
            headers=headers,
            # Reads have no limit of their own: the deadline of the whole
            # exchange (_request) comes first, and a limit costs each read.
            timeout=httpx.Timeout(None, connect=min(timeout_s, 2.0)),
            transport=self._transport,
            # Requests go to the configured endpoint only: no proxies from
            # the environment, no redirects elsewhere.
            trust_env=False,
            follow_redirects=False,
        )
        self.streaming = StreamChoice()

    async def aclose(self) -> None:
        """Close the kept-alive connections."""
        await self._http.aclose()

    async def infill(self, body: Mapping[str, Any], on_text: OnText | None = None) -> Completion:
        """POST an /infill-shaped body (translated for the server kind) and parse the reply.

        ``on_text`` is told the answer so far while a streamed reply comes in.
        """
        chosen = body
        if self.wire.kind == "infill" and body.get("n_predict", 0) > 0:
            chosen = {**body, "stream": self.streaming.stream}
        with self.streaming.timing(chosen is not body):
            data = await self._request(
                "POST", self.endpoint, self.wire.translate(chosen), self.wire.decoder(), on_text
            )
        try:
            return parse_completion(data)
        except ProtocolError as err:
            raise ServerProblem(Kind.BAD_RESPONSE, str(err)) from None

    async def props(self) -> ServerProps:
        """GET /props: model, context size, build (llama-server only)."""
        if not self.wire.llama_server:
            raise ServerProblem(Kind.NOT_FOUND, f"{self.wire.server_name} has no /props")
        if self._no_props is not None:
            raise self._no_props  # asked once: not llama-server behind /v1/completions
        try:
            data = await self._request("GET", self._root + "/props", None)
        except ServerProblem as problem:
            if problem.kind is Kind.NOT_FOUND and not self.wire.cache_layout:
                self._no_props = problem
            raise
        try:
            return parse_props(data)
        except ProtocolError as err:
            raise ServerProblem(Kind.BAD_RESPONSE, str(err)) from None

    async def tokenize(self, text: str) -> int:
        """How many tokens the server's model makes of ``text`` (POST /tokenize)."""
        if not self.wire.llama_server:
            raise ServerProblem(Kind.NOT_FOUND, f"{self.wire.server_name} has no /tokenize")
        data = await self._request("POST", self._root + "/tokenize", {"content": text})
        tokens = data.get("tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, list):
            raise ServerProblem(Kind.BAD_RESPONSE, "/tokenize reply has no token list")
        return len(tokens)

    async def health(self) -> None:
        """GET /health (or the server kind's like); raises ServerProblem unless ready."""
        await self._request("GET", self._root + self.wire.health_path, None)

    async def _request(
        self,
        method: str,
        url: str,
        body: Mapping[str, Any] | None,
        decode: Decoder | None = None,
        on_text: OnText | None = None,
    ) -> Any:
        # The whole exchange has a deadline: a server that dribbles one byte
        # a second would never trip a limit per read.
        try:
            exchange = self._exchange(method, url, body, decode, on_text)
            return await within(exchange, self._timeout_s)
        except asyncio.TimeoutError:
            raise ServerProblem(Kind.TIMEOUT, f"after {self._timeout_s:g} s") from None
        except ServerProblem as problem:
            # A server (or proxy) may echo the request's key in its error text.
            if self._api_key and self._api_key in problem.detail:
                detail = problem.detail.replace(self._api_key, "<redacted>")
                raise ServerProblem(problem.kind, detail) from None
            raise

    async def _exchange(
        self,
        method: str,
        url: str,
        body: Mapping[str, Any] | None,
        decode: Decoder | None,
        on_text: OnText | None,
    ) -> Any:
        content = None if body is None else json.dumps(body).encode("utf-8")
        reader: StreamReader | None = None
        try:
            async with self._http.stream(method, url, content=content) as response:
                status = response.status_code
                content_type = response.headers.get("content-type", "")
                streamed = content_type.startswith("text/event-stream")
                if streamed and status == 200 and decode is None and on_text is not None:
                    reader = StreamReader()
                raw = bytearray()
                async for piece in response.aiter_bytes():
                    raw += piece
                    if len(raw) > MAX_REPLY_BYTES:
                        raise ServerProblem(Kind.BAD_RESPONSE, "reply larger than 1 MiB")
                    if reader is not None and on_text is not None:
                        reader = _fed(reader, piece, on_text)
        except httpx.ConnectError as err:
            if isinstance(err.__cause__, ssl.SSLError) or "SSL" in str(err):
                raise ServerProblem(Kind.TLS, _short(err)) from None
            raise ServerProblem(Kind.UNREACHABLE, _short(err)) from None
        except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError) as err:
            kind = Kind.TIMEOUT if isinstance(err, httpx.TimeoutException) else Kind.UNREACHABLE
            raise ServerProblem(kind, _short(err)) from None
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as err:
            raise ServerProblem(Kind.UNREACHABLE, _short(err)) from None
        if status != 200:
            raise _status_problem(status, bytes(raw))
        try:
            if decode is not None:  # another server kind's reply (backends.py)
                return decode(bytes(raw), content_type)
            if reader is not None:
                return reader.result()
            return merge_stream(bytes(raw)) if streamed else json.loads(raw)
        except StreamError as err:
            raise ServerProblem(Kind.SERVER_ERROR, str(err)) from None
        except ProtocolError as err:
            raise ServerProblem(Kind.BAD_RESPONSE, str(err)) from None
        except ValueError:
            raise ServerProblem(Kind.BAD_RESPONSE, "reply is not valid JSON") from None


def _fed(reader: StreamReader, piece: bytes, on_text: OnText) -> StreamReader | None:
    """Feed ``piece`` to ``reader``, telling ``on_text`` if the answer grew.

    A reply that does not parse stops being read as it comes (None): it is
    parsed whole at its end, which reports the problem.
    """
    try:
        grew = reader.feed(piece)
    except (ProtocolError, StreamError):
        return None
    if grew:
        on_text(reader.content)
    return reader


def _short(err: Exception) -> str:
    text = str(err) or type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."
