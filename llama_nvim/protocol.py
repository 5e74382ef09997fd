"""The llama-server /infill wire format: request bodies and parsed replies."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import Config
from .context import LocalContext, clean_text

# Ask only for what we show: without this the reply echoes the whole prompt.
RESPONSE_FIELDS = (
    "content",
    "stop",  # marks the last event of a streamed reply
    "truncated",
    "tokens_cached",
    "tokens_evaluated",
    "timings/prompt_n",
    "timings/prompt_ms",
    "timings/predicted_n",
    "timings/predicted_ms",
    "timings/cache_n",
    "model",  # the model that answered, for :LlamaStatus
)


@dataclass(frozen=True)
class ExtraChunk:
    """One piece of global context, sent in ``input_extra``."""

    filename: str
    text: str


class ProtocolError(ValueError):
    """The server's reply did not have the shape of an /infill reply."""


@dataclass(frozen=True)
class Timings:
    """Server-side cost of one request, from its ``timings``."""

    prompt_n: int = 0
    prompt_ms: float = 0.0
    predicted_n: int = 0
    predicted_ms: float = 0.0
    cache_n: int = 0


@dataclass(frozen=True)
class Completion:
    """A parsed /infill reply."""

    content: str
    timings: Timings = field(default_factory=Timings)
    tokens_cached: int = 0
    tokens_evaluated: int = 0
    truncated: bool = False
    model: str = ""


def build_infill_body(
    context: LocalContext,
    extra: Sequence[ExtraChunk],
    config: Config,
    *,
    n_predict: int,
    t_max_predict_ms: int,
    explore: bool = False,
    id_slot: int | None = None,
) -> dict[str, Any]:
    """The JSON body of one /infill request.

    ``explore`` asks for another suggestion than the likeliest: plain
    temperature sampling instead of the infill sampler, which keeps only the
    few tokens it is sure of and so gives back the same suggestion.
    ``id_slot``: the slot to use, if not the configured one (slot_lease.py).
    """
    sampling: dict[str, Any] = {
        "top_k": 40,
        "top_p": 0.90,
        "samplers": ["top_k", "top_p", "infill"],
    }
    if explore:
        sampling = {**sampling, "samplers": ["top_k", "top_p", "temperature"], "temperature": 0.9}
    return {
        "input_prefix": context.prefix,
        "input_suffix": context.suffix,
        "prompt": context.prompt,
        "input_extra": [{"filename": c.filename, "text": c.text} for c in extra],
        "n_predict": n_predict,
        "n_indent": context.n_indent,
        "stop": list(config.stop_strings),
        **sampling,
        # Streamed: llama-server notices a closed connection (and stops
        # computing) only while it streams; a cancelled non-streamed task runs
        # to its end and delays the next request. The client asks a fast
        # server for whole replies instead (streaming.py).
        "stream": True,
        "cache_prompt": True,
        "t_max_prompt_ms": config.t_max_prompt_ms,
        "t_max_predict_ms": t_max_predict_ms,
        "id_slot": config.id_slot if id_slot is None else id_slot,
        "response_fields": list(RESPONSE_FIELDS),
        **_model(config),
    }


def _model(config: Config) -> dict[str, str]:
    """The ``model`` field, only when one is configured: a router-mode server
    (or llama-swap) picks the model by it; a plain llama-server ignores it."""
    return {"model": config.model_fim} if config.model_fim else {}


def build_priming_body(
    extra: Sequence[ExtraChunk],
    config: Config,
    *,
    local: LocalContext | None = None,
    id_slot: int | None = None,
) -> dict[str, Any]:
    """A request that only makes the server compute (and cache) a prompt.

    Its prompt starts exactly like the next real request's, in the same slot,
    so that request reuses everything up to the local context; with ``local``
    (where the user last typed), up to the line that request changed.
    """
    return {
        "input_prefix": local.prefix if local is not None else "",
        "input_suffix": local.suffix if local is not None else "",
        "prompt": local.prompt if local is not None else "",
        "input_extra": [{"filename": c.filename, "text": c.text} for c in extra],
        "n_predict": 0,
        "samplers": [],
        "stream": True,
        "cache_prompt": True,
        "t_max_prompt_ms": 1,
        "t_max_predict_ms": 1,
        "id_slot": config.id_slot if id_slot is None else id_slot,
        "response_fields": list(RESPONSE_FIELDS),
        # The same model as the requests it prepares, or its cache is of no use.
        **_model(config),
    }


def _field(data: Mapping[str, Any], dotted: str) -> Any:
    """Read ``timings/prompt_n`` whether the server flattened it or nested it."""
    if dotted in data:
        return data[dotted]
    node: Any = data
    for part in dotted.split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)


def parse_completion(data: Any) -> Completion:
    """Validate a decoded /infill reply; raise ProtocolError if it is not one."""
    if not isinstance(data, Mapping):
        raise ProtocolError(f"expected a JSON object, got {type(data).__name__}")
    content = data.get("content")
    if not isinstance(content, str):
        raise ProtocolError(f"'content' is {type(content).__name__}, not a string")
    return Completion(
        # json.loads lets lone surrogates through (escaped or raw); the editor
        # cannot hold them.
        content=clean_text(content),
        timings=Timings(
            prompt_n=int(_number(_field(data, "timings/prompt_n"))),
            prompt_ms=_number(_field(data, "timings/prompt_ms")),
            predicted_n=int(_number(_field(data, "timings/predicted_n"))),
            predicted_ms=_number(_field(data, "timings/predicted_ms")),
            cache_n=int(_number(_field(data, "timings/cache_n"))),
        ),
        tokens_cached=int(_number(data.get("tokens_cached"))),
        tokens_evaluated=int(_number(data.get("tokens_evaluated"))),
        truncated=data.get("truncated") is True,
        model=data["model"] if isinstance(data.get("model"), str) else "",
    )


class StreamReader:
    """Reads a streamed /infill reply (server-sent events) as its bytes arrive.

    Each event carries a piece of ``content``; the last one (``stop: true``)
    carries the timings and other fields asked for in ``response_fields``.
    ``feed`` takes the bytes as they come, so what has come so far can be shown
    while the server still generates.
    """

    def __init__(self) -> None:
        self._pending = b""
        self._pieces: list[str] = []
        self._final: dict[str, Any] | None = None

    @property
    def content(self) -> str:
        """The text received so far."""
        return "".join(self._pieces)

    def feed(self, data: bytes) -> bool:
        """Take the next bytes of the reply; True if the content grew."""
        blocks = (self._pending + data).split(b"\n\n")
        self._pending = blocks.pop()  # the last block may be cut mid-event
        grew = False
        for block in blocks:
            grew = self._event(block) or grew
        return grew

    def result(self) -> dict[str, Any]:
        """The reply as one object, once all its bytes were fed."""
        if self._pending:
            self._event(self._pending)
            self._pending = b""
        if self._final is None:
            raise ProtocolError("the stream ended before its last event")
        return {**self._final, "content": self.content}

    def _event(self, block: bytes) -> bool:
        block = block.strip()
        if not block.startswith(b"data:"):
            return False
        try:
            event = json.loads(block[5:])
        except ValueError:
            raise ProtocolError("a streamed event is not valid JSON") from None
        if not isinstance(event, dict):
            raise ProtocolError("a streamed event is not a JSON object")
        if "error" in event:
            raise StreamError(error_message(event) or "error in the stream")
        if event.get("stop") is True:
            self._final = event
        piece = event.get("content")
        if isinstance(piece, str):
            self._pieces.append(piece)
            return bool(piece)
        if piece is not None:
            raise ProtocolError(f"'content' is {type(piece).__name__}, not a string")
        return False


def merge_stream(raw: bytes) -> dict[str, Any]:
    """Join a whole streamed /infill reply into one reply object (see StreamReader)."""
    reader = StreamReader()
    reader.feed(raw)
    return reader.result()


class StreamError(Exception):
    """The server reported an error in the middle of a streamed reply."""


def error_message(data: Any) -> str | None:
    """The message of llama-server's ``{"error": {...}}`` body, if it is one."""
    if isinstance(data, Mapping):
        error = data.get("error")
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return None


@dataclass(frozen=True)
class ServerProps:
    """What /props tells about the loaded model."""

    n_ctx: int = 0
    model: str = ""
    build: str = ""
    total_slots: int = 0


def parse_props(data: Any) -> ServerProps:
    """Read the few /props fields we use; missing ones stay empty."""
    if not isinstance(data, Mapping):
        raise ProtocolError("expected a JSON object from /props")
    settings = data.get("default_generation_settings")
    n_ctx = settings.get("n_ctx") if isinstance(settings, Mapping) else None
    model = data.get("model_path") or data.get("model_alias") or ""
    return ServerProps(
        n_ctx=int(_number(n_ctx)),
        model=str(model) if isinstance(model, str) else "",
        build=str(data.get("build_info", "")),
        total_slots=int(_number(data.get("total_slots"))),
    )
