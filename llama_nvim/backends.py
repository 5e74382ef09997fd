"""Which kind of FIM server the endpoint is, and the adapter that speaks its wire format.

The plugin builds every request as an /infill body (request_builder.py) and
reads every reply as an /infill reply (protocol.py). A ``Wire``, chosen once
from the config, sits at the client's edge: it translates the body for the
server kind and turns its reply back into an /infill-shaped one, so
streaming, cancellation, the one-in-flight rule and problem reporting are the
same code for every kind.

- ``infill``: llama-server's /infill, unchanged. The only kind that gets the
  KV-cache layout, the far suffix in ``input_extra`` and idle-time priming.
- ``completions``: OpenAI-compatible /v1/completions (llama-server, vLLM,
  LM Studio, Ollama's OpenAI API): the FIM prompt is spelled out with a
  template (fim_templates.py), server-sent events with ``choices[0].text``.
- ``ollama``: Ollama's /api/generate: ``prompt`` + ``suffix`` for the model's
  own template, or ``raw`` with ours when ``fim_template`` is set;
  newline-delimited JSON with ``response`` pieces and ``done``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .config import Config
from .fim_templates import FimTemplate, resolve
from .problems import Kind, ServerProblem, describe
from .protocol import ExtraChunk, ProtocolError, StreamError, error_message

# Path endings that name a kind, longest first; server_root strips them too.
API_PATHS = (
    ("/v1/completions", "completions"),
    ("/api/generate", "ollama"),
    ("/completions", "completions"),
    ("/infill", "infill"),
)
# Keys the request builder adds for the adapter (the file being edited, its
# project); dropped from the body on the wire.
PATH_KEY = "llama_nvim_path"
REPO_KEY = "llama_nvim_repo"
# Sampling of a plain suggestion: near greedy, as the infill sampler is.
TEMPERATURE = 0.1

Decoder = Callable[[bytes, str], Any]


def detect_kind(endpoint: str, fim_api: str = "auto") -> str:
    """The server kind: ``fim_api`` if set, else from the endpoint's path (else /infill)."""
    if fim_api != "auto":
        return fim_api
    path = urlsplit(endpoint).path.rstrip("/")
    for ending, kind in API_PATHS:
        if path.endswith(ending):
            return kind
    return "infill"


def strip_api_path(path: str) -> str:
    """``path`` without the API endpoint's own ending (what the server root is)."""
    for ending, _ in API_PATHS:
        if path.endswith(ending):
            return path[: -len(ending)]
    return path


@dataclass(frozen=True)
class Wire:
    """How requests and replies look for one server kind."""

    kind: str = "infill"
    # The prompt's template: always for completions; for Ollama only when the
    # user chose one (raw mode), else Ollama applies the model's own.
    template: FimTemplate | None = None
    model: str = ""  # model_fim, for requests made outside the request builder

    @classmethod
    def from_config(cls, config: Config) -> Wire:
        """The adapter for ``config``'s endpoint and fim_api / fim_template."""
        kind = detect_kind(config.endpoint, config.fim_api)
        template = None
        if kind == "completions" or (kind == "ollama" and config.fim_template != "auto"):
            template = resolve(config.fim_template)
        return cls(kind, template, config.model_fim)

    @property
    def server_name(self) -> str:
        """The server as messages name it."""
        return {"infill": "llama-server", "ollama": "Ollama"}.get(self.kind, "the server")

    @property
    def llama_server(self) -> bool:
        """True if the server may be llama-server, with /props, /tokenize and slots."""
        return self.kind != "ollama"

    @property
    def cache_layout(self) -> bool:
        """True if requests get the KV-cache layout and idle-time priming (/infill only)."""
        return self.kind == "infill"

    @property
    def health_path(self) -> str:
        """What to GET to see whether the server is up."""
        return {"infill": "/health", "completions": "/v1/models"}.get(self.kind, "/api/version")

    @property
    def label(self) -> str:
        """The kind, as :LlamaStatus and :checkhealth show it."""
        if self.kind == "completions":
            assert self.template is not None
            return f"/v1/completions (OpenAI-compatible), FIM template {self.template.name}"
        if self.kind == "ollama":
            how = f"FIM template {self.template.name}" if self.template else "the model's template"
            return f"Ollama /api/generate, {how}"
        return "llama-server /infill"

    def problems(self, config: Config) -> list[str]:
        """What is wrong with the config for this kind, worded for the user."""
        if self.kind == "ollama" and not config.model_fim:
            return [
                "g:llama_config.model_fim must name the Ollama model (e.g. 'qwen2.5-coder:1.5b')"
            ]
        return []

    def annotate(self, body: dict[str, Any], path: str, repo: str) -> dict[str, Any]:
        """``body`` with what a template needs besides it: the file's path, the project's name."""
        if self.template is None:
            return body
        return {**body, PATH_KEY: path, REPO_KEY: repo}

    def translate(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The body to send for an /infill-shaped ``body``."""
        if self.kind == "infill":
            return dict(body)
        n_predict = max(1, int(body.get("n_predict", 1)))  # some servers refuse 0
        stop = [*body.get("stop", ()), *(self.template.stop_strings if self.template else ())]
        sampling = {"temperature": body.get("temperature", TEMPERATURE), "top_p": 0.9}
        stream = bool(body.get("stream", False))
        model = body.get("model", "")
        if self.kind == "completions":
            out: dict[str, Any] = {"prompt": self._prompt(body), "max_tokens": n_predict}
            out.update(sampling, stop=stop, stream=stream)
            if model:
                out["model"] = model
            if isinstance(body.get("id_slot"), int) and body["id_slot"] >= 0:
                out["id_slot"] = body["id_slot"]  # llama-server: this editor's slot
            return out
        options: dict[str, Any] = {"num_predict": n_predict, **sampling}
        if stop:
            options["stop"] = stop
        out = {"model": model, "stream": stream, "options": options}
        if self.template is None:
            prefix = body.get("input_prefix", "") + body.get("prompt", "")
            out.update(prompt=prefix, suffix=body.get("input_suffix", ""))
        else:
            out.update(prompt=self._prompt(body), raw=True)
        return out

    def _prompt(self, body: Mapping[str, Any]) -> str:
        assert self.template is not None
        chunks = [ExtraChunk(c["filename"], c["text"]) for c in body.get("input_extra", ())]
        return self.template.prompt(
            body.get("input_prefix", "") + body.get("prompt", ""),
            body.get("input_suffix", ""),
            chunks,
            body.get(PATH_KEY, ""),
            body.get(REPO_KEY, ""),
        )

    def decoder(self) -> Decoder | None:
        """How to read a completion reply (None: /infill's own way)."""
        if self.kind == "completions":
            return decode_openai
        if self.kind == "ollama":
            return decode_ollama
        return None

    def describe(self, problem: ServerProblem, endpoint: str) -> str:
        """One line for the user, naming this kind of server."""
        if self.kind == "infill":
            return describe(problem, endpoint)
        name = self.server_name
        detail = f" ({problem.detail})" if problem.detail else ""
        if problem.kind is Kind.UNREACHABLE:
            return f"{name} not reachable at {endpoint}; retrying quietly{detail}"
        if problem.kind is Kind.NOT_FOUND:
            # The server's reason first (Ollama: the model is not there): in
            # insert mode the message is cut to the command line's width.
            return (
                f"{name} answered {problem.detail or 'HTTP 404'}: check "
                f"g:llama_config.endpoint ({endpoint}) and g:llama_config.model_fim"
            )
        if problem.kind is Kind.UNAUTHORIZED:
            return f"API key rejected by {name} (HTTP 401): set g:llama_config.api_key"
        if problem.kind is Kind.NO_FIM:
            return f"{name} cannot fill in the middle{detail}"
        return describe(problem, endpoint).replace("llama-server", name)


# -- replies ------------------------------------------------------------------------------------


def _object(data: Any) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ProtocolError("a reply event is not a JSON object")
    if "error" in data:
        raise StreamError(error_message(data) or "error in the reply")
    return data


def _sse_events(raw: bytes) -> tuple[list[Any], bool]:
    """The JSON events of a server-sent-events body, and whether it ended with [DONE]."""
    events: list[Any] = []
    done = False
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        block = block.strip()
        if not block.startswith(b"data:"):
            continue
        data = block[5:].strip()
        if data == b"[DONE]":
            done = True
            continue
        try:
            events.append(json.loads(data))
        except ValueError:
            raise ProtocolError("a streamed event is not valid JSON") from None
    return events, done


def decode_openai(raw: bytes, content_type: str) -> dict[str, Any]:
    """An OpenAI /v1/completions reply (streamed or not) as an /infill-shaped reply."""
    streamed = content_type.startswith("text/event-stream")
    events, done = _sse_events(raw) if streamed else ([json.loads(raw)], True)
    pieces: list[str] = []
    reply: dict[str, Any] = {}
    for event in map(_object, events):
        choices = event.get("choices")
        if not isinstance(choices, list):
            raise ProtocolError("'choices' is missing")
        if choices:
            choice = choices[0] if isinstance(choices[0], Mapping) else {}
            text = choice.get("text")
            if not isinstance(text, str):
                raise ProtocolError(f"'text' is {type(text).__name__}, not a string")
            pieces.append(text)
            done = done or bool(choice.get("finish_reason"))
        _keep(reply, event)
    if not done:
        raise ProtocolError("the stream ended before its last event")
    return {**reply, "content": "".join(pieces)}


def _keep(reply: dict[str, Any], event: Mapping[str, Any]) -> None:
    """Carry the model's name, llama-server's timings and the usage into ``reply``."""
    if isinstance(event.get("model"), str):
        reply["model"] = event["model"]
    if isinstance(event.get("timings"), Mapping):
        reply["timings"] = event["timings"]
    usage = event.get("usage")
    if isinstance(usage, Mapping) and "prompt_tokens" in usage:
        reply["tokens_evaluated"] = usage["prompt_tokens"]


def decode_ollama(raw: bytes, content_type: str) -> dict[str, Any]:
    """An Ollama /api/generate reply (newline-delimited JSON, or one object) as /infill's."""
    pieces: list[str] = []
    final: Mapping[str, Any] | None = None
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:
            raise ProtocolError("a streamed line is not valid JSON") from None
        event = _object(data)
        piece = event.get("response", "")
        if not isinstance(piece, str):
            raise ProtocolError(f"'response' is {type(piece).__name__}, not a string")
        pieces.append(piece)
        if event.get("done") is True:
            final = event
    if final is None:
        raise ProtocolError("the stream ended before its last event")
    return {
        "content": "".join(pieces),
        "model": final.get("model", ""),
        "tokens_evaluated": final.get("prompt_eval_count", 0),
        "timings": {
            "prompt_n": final.get("prompt_eval_count", 0),
            "prompt_ms": _ms(final.get("prompt_eval_duration")),
            "predicted_n": final.get("eval_count", 0),
            "predicted_ms": _ms(final.get("eval_duration")),
        },
    }


def _ms(nanoseconds: Any) -> float:
    if isinstance(nanoseconds, bool) or not isinstance(nanoseconds, int | float):
        return 0.0
    return nanoseconds / 1e6
