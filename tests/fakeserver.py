"""A fault-injecting stand-in for llama-server, on 127.0.0.1, for the error paths.

It speaks just enough HTTP/1.1 to answer the plugin's requests however a test
scripts it (status, body, delay, dribbling, closing the socket) and records
what arrived, including whether the client hung up before the answer.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OPENSSL = "/usr/bin/openssl"

# The request fields of OpenAI's chat completions API: a strict server (vLLM's
# way) answers HTTP 400 to any other.
OPENAI_CHAT_FIELDS = frozenset(
    {"messages", "model", "stream", "stream_options", "temperature", "top_p", "n", "stop",
     "max_tokens", "max_completion_tokens", "presence_penalty", "frequency_penalty",
     "logit_bias", "logprobs", "top_logprobs", "user", "seed", "response_format", "tools",
     "tool_choice", "parallel_tool_calls"}
)  # fmt: skip


@dataclass
class Reply:
    """How to answer one request."""

    status: int = 200
    body: bytes = b""
    delay: float = 0.0
    dribble: float = 0.0  # seconds between body bytes
    close_without_answer: bool = False
    content_type: str = "application/json"
    # Send the head and only this many bytes of the body, then close (-1: all of it).
    cut_after: int = -1
    # Chunked transfer encoding (a chunk per server-sent event), as llama-server streams.
    chunked: bool = False
    # Seconds between the chunks of a chunked reply (a server generating slowly).
    event_gap: float = 0.0
    # Close the connection after the answer without saying so (a kept-alive
    # connection dropped by the server).
    close_after: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def completion(cls, content: Any, **kwargs: Any) -> Reply:
        data = {
            "content": content,
            "timings": {"prompt_n": 5, "cache_n": 0, "prompt_ms": 1.0, "predicted_n": 3,
                        "predicted_ms": 2.0},
            "tokens_cached": 8,
        }  # fmt: skip
        return cls(body=json.dumps(data).encode(), **kwargs)

    @classmethod
    def infill_stream(cls, pieces: list[str], **kwargs: Any) -> Reply:
        """A streamed /infill reply as llama-server sends it: chunked events, the last with stop."""
        events: list[dict[str, Any]] = [{"content": p, "stop": False} for p in pieces]
        events.append({"content": "", "stop": True, **json.loads(cls.completion("").body)})
        events[-1]["content"] = ""
        body = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
        return cls(body=body.encode(), content_type="text/event-stream", chunked=True, **kwargs)

    @classmethod
    def openai_stream(cls, pieces: list[str], model: str = "fake.gguf", **kwargs: Any) -> Reply:
        """A streamed OpenAI /v1/completions reply: server-sent events, then [DONE]."""
        texts = [(piece, None) for piece in pieces] + [("", "stop")]
        events: list[dict[str, Any]] = [
            {"choices": [{"text": text, "index": 0, "finish_reason": end}], "model": model}
            for text, end in texts
        ]
        events[-1]["usage"] = {"prompt_tokens": 9, "completion_tokens": len(pieces)}
        body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        return cls(body=body.encode(), content_type="text/event-stream", **kwargs)

    @classmethod
    def chat_stream(cls, pieces: list[str], **kwargs: Any) -> Reply:
        """A streamed OpenAI /v1/chat/completions reply: content deltas, then [DONE]."""
        deltas = [{"content": piece} for piece in pieces]
        events = [{"choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
        body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        return cls(body=body.encode(), content_type="text/event-stream", **kwargs)

    @classmethod
    def ollama_stream(
        cls, pieces: list[str], model: str = "qwen2.5-coder:1.5b", **kwargs: Any
    ) -> Reply:
        """A streamed Ollama /api/generate reply: one JSON object a line, the last one done."""
        lines: list[dict[str, Any]] = [
            {"model": model, "created_at": "2026-01-01T00:00:00Z", "response": p, "done": False}
            for p in pieces
        ]
        lines.append(
            {"model": model, "created_at": "2026-01-01T00:00:00Z", "response": "", "done": True,
             "done_reason": "stop", "prompt_eval_count": 9, "prompt_eval_duration": 2_000_000,
             "eval_count": len(pieces), "eval_duration": 3_000_000}
        )  # fmt: skip
        body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        return cls(body=body, content_type="application/x-ndjson", **kwargs)

    @classmethod
    def error(cls, status: int, message: str, kind: str = "server_error") -> Reply:
        body = {"error": {"code": status, "message": message, "type": kind}}
        return cls(status=status, body=json.dumps(body).encode())

    @classmethod
    def of_json(cls, data: Any, **kwargs: Any) -> Reply:
        """Any JSON value as the body (for replies of the wrong shape)."""
        return cls(body=json.dumps(data).encode(), **kwargs)


@dataclass
class Received:
    """One request as the fake server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    hung_up: bool = False  # the client closed the connection before the answer
    started: float = field(default_factory=time.monotonic)
    ended: float = 0.0  # when answered or found hung up

    def json(self) -> Any:
        return json.loads(self.body)


def make_self_signed_cert(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (an IP address) made with openssl: (cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", f"/CN={host}", "-addext", f"subjectAltName=IP:{host}"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@dataclass
class FakeServer:
    """Answers with ``responder(request)``; runs in a daemon thread.

    ``port`` fixes the port (e.g. one a test reserved before the server was up);
    ``tls`` = (cert, key) makes it speak HTTPS. ``connections`` counts every TCP
    connection accepted, ``tls_failures`` the TLS handshakes that failed.
    ``openai_only`` makes it a strict OpenAI-compatible server: no /props, and
    HTTP 400 for a chat request with a field OpenAI's API does not have.
    """

    responder: Callable[[Received], Reply] = field(default=lambda _req: Reply.completion("x"))
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    tls: tuple[Path, Path] | None = None
    openai_only: bool = False
    n_ctx: int = 2048  # the context size /props tells
    connections: int = field(default=0, init=False)
    tls_failures: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._tls: ssl.SSLContext | None = None
        if self.tls is not None:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def infill_url(self) -> str:
        return self.url + "/infill"

    def infill_requests(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == "/infill"]

    def requests_to(self, path: str) -> list[Received]:
        """Every request for ``path`` so far."""
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def infill_bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of every /infill request so far (each must be valid JSON)."""
        return [r.json() for r in self.infill_requests()]

    def close(self) -> None:
        self._stop.set()
        # Wake the thread blocked in accept(): closing alone leaves the port
        # bound until then, and a fixed port could not be taken again.
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        if self._tls is not None:
            try:
                conn.settimeout(10)
                conn = self._tls.wrap_socket(conn, server_side=True)
                conn.settimeout(None)
            except (ssl.SSLError, OSError):
                with self._lock:
                    self.tls_failures += 1
                conn.close()
                return
        with conn:
            buffer = b""
            while True:
                request, buffer = self._read_request(conn, buffer)
                if request is None:
                    return
                with self._lock:
                    self.requests.append(request)
                answered = self._answer(conn, request, self._route(request))
                request.ended = time.monotonic()
                if not answered:
                    return

    def _route(self, request: Received) -> Reply:
        if request.path == "/health":
            return Reply(body=b'{"status": "ok"}')
        if self.openai_only:
            strict = self._strict(request)
            if strict is not None:
                return strict
        if request.path == "/props":
            props = {"default_generation_settings": {"n_ctx": self.n_ctx}, "total_slots": 1,
                     "model_path": "fake.gguf", "build_info": "fake"}  # fmt: skip
            return Reply(body=json.dumps(props).encode())
        # The health checks of the other server kinds (Ollama's, OpenAI's).
        if request.path == "/api/version":
            return Reply(body=b'{"version": "0.0.0-fake"}')
        if request.path == "/v1/models":
            return Reply(body=b'{"object": "list", "data": [{"id": "fake.gguf"}]}')
        return self.responder(request)

    @staticmethod
    def _strict(request: Received) -> Reply | None:
        """A strict server's refusal of ``request``, if it refuses it."""
        if request.path == "/props":
            return Reply.error(404, "Not Found", "not_found_error")
        if request.path.endswith("/chat/completions"):
            unknown = sorted(set(request.json()) - OPENAI_CHAT_FIELDS)
            if unknown:
                text = f"Extra inputs are not permitted: {', '.join(unknown)}"
                return Reply.error(400, text, "BadRequestError")
        return None

    @staticmethod
    def _read_request(conn: socket.socket, buffer: bytes) -> tuple[Received | None, bytes]:
        while b"\r\n\r\n" not in buffer:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return None, b""
            if not chunk:
                return None, b""
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            rest += chunk
        return Received(method, path, headers, rest[:length]), rest[length:]

    def _client_gone(self, conn: socket.socket) -> bool:
        conn.setblocking(False)
        try:
            # An SSLSocket refuses recv flags: peek at the raw TCP stream instead.
            return socket.socket.recv(conn, 1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            conn.setblocking(True)

    def _wait(self, conn: socket.socket, request: Received, seconds: float) -> bool:
        """Sleep, noticing a hang-up; False if the client went away."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._client_gone(conn) or self._stop.is_set():
                request.hung_up = True
                return False
            time.sleep(0.005)
        return True

    def _answer(self, conn: socket.socket, request: Received, reply: Reply) -> bool:
        if not self._wait(conn, request, reply.delay):
            return False
        if reply.close_without_answer:
            return False
        extra = "".join(f"{name}: {value}\r\n" for name, value in reply.headers.items())
        framing = (
            "Transfer-Encoding: chunked" if reply.chunked else f"Content-Length: {len(reply.body)}"
        )
        head = (
            f"HTTP/1.1 {reply.status} X\r\nContent-Type: {reply.content_type}\r\n"
            f"{framing}\r\n{extra}\r\n"
        ).encode()
        chunks = _chunks(reply.body) if reply.chunked else [reply.body]
        body = b"".join(chunks)
        try:
            if reply.cut_after >= 0:
                conn.sendall(head + body[: reply.cut_after])
                request.ended = time.monotonic()
                return False
            if reply.dribble:
                conn.sendall(head)
                for i in range(len(body)):
                    if not self._wait(conn, request, reply.dribble):
                        return False
                    conn.sendall(body[i : i + 1])
            else:
                conn.sendall(head + chunks[0])
                for chunk in chunks[1:]:  # one send per chunk, as a streaming server does
                    if reply.event_gap and not self._wait(conn, request, reply.event_gap):
                        return False
                    conn.sendall(chunk)
        except OSError:
            request.hung_up = True
            return False
        return not reply.close_after


def _chunks(body: bytes) -> list[bytes]:
    """``body`` in chunked encoding, a chunk per server-sent event, then the last chunk."""
    events = [e + b"\n\n" for e in body.split(b"\n\n") if e] if body else []
    return [b"%x\r\n%s\r\n" % (len(e), e) for e in events] + [b"0\r\n\r\n"]
