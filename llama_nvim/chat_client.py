"""HTTP edge of instruction editing: streams a chat reply from ``endpoint_inst``.

Unlike InfillClient (which reads a whole reply), the deltas are handed on as
they arrive, for the live preview. Each exchange has a connection of its own,
closed when it ends or is cancelled, so a cancelled instruction stops the
server's work at once. Everything that goes wrong comes out as a ServerProblem.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from .chat import SseParser, delta_content
from .client import _short, _status_problem
from .problems import Kind, ServerProblem
from .protocol import StreamError

# An answer bigger than this is not an edit of a selection.
MAX_ANSWER_BYTES = 4 << 20
# Between two pieces of a reply; the first may wait for a long prompt.
READ_TIMEOUT_S = 120.0
# The probes (/props, the model list) answer at once when the server is there.
PROBE_TIMEOUT_S = 3.0


def chat_root(endpoint: str) -> str:
    """The server's base URL, from the configured chat endpoint."""
    parts = urlsplit(endpoint)
    path = parts.path.rstrip("/")
    for tail in ("/v1/chat/completions", "/chat/completions"):
        if path.endswith(tail):
            path = path[: -len(tail)]
            break
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def models_url(endpoint: str) -> str:
    """The model list beside the chat endpoint: .../chat/completions -> .../models."""
    parts = urlsplit(endpoint)
    path = parts.path.rstrip("/")
    if path.endswith("/chat/completions"):
        path = path[: -len("/chat/completions")]
    return urlunsplit((parts.scheme, parts.netloc, path + "/models", "", ""))


@dataclass(frozen=True)
class ChatServer:
    """The kind of server behind the chat endpoint, asked once."""

    llama_server: bool
    total_slots: int = 0


def _transport_problem(err: Exception) -> ServerProblem:
    if isinstance(err, httpx.ConnectError):
        if isinstance(err.__cause__, ssl.SSLError) or "SSL" in str(err):
            return ServerProblem(Kind.TLS, _short(err))
        return ServerProblem(Kind.UNREACHABLE, _short(err))
    if isinstance(err, httpx.TimeoutException):
        return ServerProblem(Kind.TIMEOUT, _short(err))
    return ServerProblem(Kind.UNREACHABLE, _short(err))


class ChatClient:
    """Async client for an OpenAI-compatible /v1/chat/completions, /v1/models (and /props)."""

    def __init__(
        self,
        endpoint: str,
        *,
        api_key: str = "",
        timeout_s: float = 5.0,
        ca_bundle: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.root = chat_root(endpoint)
        self._api_key = api_key
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = httpx.Timeout(max(timeout_s, READ_TIMEOUT_S), connect=min(timeout_s, 2.0))
        try:
            self._verify: ssl.SSLContext = ssl.create_default_context(cafile=ca_bundle or None)
        except (OSError, ssl.SSLError):
            self._verify = ssl.create_default_context()
        self._transport = transport

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            headers=self._headers,
            timeout=self._timeout,
            transport=self._transport,
            trust_env=False,
            follow_redirects=False,
            verify=self._verify,
        )

    def _redacted(self, problem: ServerProblem) -> ServerProblem:
        # A server (or proxy) may echo the request's key in its error text.
        if self._api_key and self._api_key in problem.detail:
            return ServerProblem(problem.kind, problem.detail.replace(self._api_key, "<redacted>"))
        return problem

    async def stream(self, body: Mapping[str, Any]) -> AsyncGenerator[str, None]:
        """POST ``body`` and yield the answer's text as it arrives."""
        content = json.dumps(body).encode("utf-8")
        try:
            async with (
                self._http() as http,
                http.stream("POST", self.endpoint, content=content) as response,
            ):
                if response.status_code != 200:
                    raw = await response.aread()
                    raise self._redacted(_status_problem(response.status_code, raw[:4096]))
                if not response.headers.get("content-type", "").startswith("text/event-stream"):
                    # A server that ignores "stream": one whole reply.
                    raw = await response.aread()
                    yield _whole_reply(raw)
                    return
                parser = SseParser()
                size = 0
                async for piece in response.aiter_bytes():
                    size += len(piece)
                    if size > MAX_ANSWER_BYTES:
                        raise ServerProblem(Kind.BAD_RESPONSE, "answer larger than 4 MiB")
                    for delta in parser.feed(piece):
                        yield delta
                for delta in parser.finish():
                    yield delta
        except StreamError as err:
            raise self._redacted(ServerProblem(Kind.SERVER_ERROR, str(err))) from None
        except (httpx.HTTPError, httpx.InvalidURL) as err:
            raise self._redacted(_transport_problem(err)) from None

    async def warm_up(self, body: Mapping[str, Any]) -> None:
        """POST a request that only fills the server's cache; its answer is dropped."""
        content = json.dumps(body).encode("utf-8")
        try:
            async with self._http() as http:
                response = await http.post(self.endpoint, content=content)
        except (httpx.HTTPError, httpx.InvalidURL) as err:
            raise self._redacted(_transport_problem(err)) from None
        if response.status_code != 200:
            raise self._redacted(_status_problem(response.status_code, response.content[:4096]))

    async def server(self) -> ChatServer | None:
        """What /props at the server's root tells; None if no answer came (ask again later).

        Only llama-server answers /props with its settings: another server
        (vLLM, LM Studio, Ollama) gets OpenAI's fields only and no warm-up.
        """
        try:
            async with self._http() as http:
                response = await http.get(self.root + "/props", timeout=PROBE_TIMEOUT_S)
        except (httpx.HTTPError, httpx.InvalidURL):
            return None
        try:
            data = response.json() if response.status_code == 200 else None
        except ValueError:
            data = None
        if not isinstance(data, dict) or "default_generation_settings" not in data:
            return ChatServer(llama_server=False)
        slots = data.get("total_slots")
        if not isinstance(slots, int) or isinstance(slots, bool):
            slots = 0
        return ChatServer(llama_server=True, total_slots=slots)

    async def models(self) -> list[str]:
        """The model ids the server lists (OpenAI's /v1/models, llama-server's too).

        A cheap probe that every OpenAI-compatible server answers.
        """
        try:
            async with self._http() as http:
                response = await http.get(models_url(self.endpoint), timeout=PROBE_TIMEOUT_S)
        except (httpx.HTTPError, httpx.InvalidURL) as err:
            raise self._redacted(_transport_problem(err)) from None
        if response.status_code != 200:
            raise self._redacted(_status_problem(response.status_code, response.content[:4096]))
        try:
            data = response.json()
        except ValueError:
            raise ServerProblem(Kind.BAD_RESPONSE, "/models reply is not valid JSON") from None
        entries = data.get("data") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            return []
        ids = (e.get("id") for e in entries if isinstance(e, dict))
        return [i for i in ids if isinstance(i, str)]


def _whole_reply(raw: bytes) -> str:
    try:
        data = json.loads(raw)
    except ValueError:
        raise ServerProblem(Kind.BAD_RESPONSE, "reply is not valid JSON") from None
    return delta_content(data)
