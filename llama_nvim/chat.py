"""The OpenAI chat wire format of instruction editing: bodies, conversation, streamed reply.

Pure data, no I/O: chat_client.py sends what is built here and feeds the
reply's bytes to ``SseParser``.

The prompt is laid out for the server's KV cache: one system message holding
what changes least first (the instructions, then the ring's extra context of
the project, then the text around the selection and the selection itself),
then the user's instruction. The warm-up sends the system message and an empty
instruction, so the real request reuses all of it; a follow-up appends to the
conversation, so it reuses everything before. llama-server's own fields (slot,
cache, samplers, the warm-up's n_predict 0) go only to llama-server: a strict
OpenAI-compatible server (vLLM) answers HTTP 400 to a field it does not know.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .protocol import ExtraChunk, StreamError, error_message

SYSTEM_PROMPT = (
    "You are a text-editing assistant. Respond ONLY with the result of applying INSTRUCTION "
    "to SELECTION given the CONTEXT. Maintain the existing text indentation. Do not add extra "
    "code blocks. Respond only with the modified block. If the INSTRUCTION is a question, "
    "answer it directly. Do not output any extra separators. Consider the local context "
    "before (PREFIX) and after (SUFFIX) the SELECTION.\n"
)

Message = dict[str, str]


def _section(title: str, lines: Iterable[str]) -> str:
    return f"--- {title:<12}" + "-" * 40 + "\n" + "\n".join(lines) + "\n"


@dataclass(frozen=True)
class EditContext:
    """What an instruction edits: the selection, the lines around it, the file's project."""

    prefix: tuple[str, ...]
    selection: tuple[str, ...]
    suffix: tuple[str, ...]
    extra: tuple[ExtraChunk, ...] = ()


def system_message(context: EditContext) -> Message:
    """The system message: instructions, extra context, prefix, selection, suffix."""
    extra = [f"--- file: {chunk.filename}\n{chunk.text}" for chunk in context.extra]
    content = (
        SYSTEM_PROMPT
        + "\n"
        + _section("CONTEXT", extra)
        + _section("PREFIX", context.prefix)
        + _section("SELECTION", context.selection)
        + _section("SUFFIX", context.suffix)
    )
    return {"role": "system", "content": content}


def user_message(instruction: str) -> Message:
    """The user's instruction (empty for the warm-up)."""
    return {"role": "user", "content": f"INSTRUCTION: {instruction}" if instruction else ""}


@dataclass
class Conversation:
    """The messages of one instruction: asked, answered, asked again."""

    system: Message
    turns: list[Message] = field(default_factory=list)

    @property
    def messages(self) -> list[Message]:
        """Everything to send, system message first."""
        return [self.system, *self.turns]

    def warm_up(self) -> list[Message]:
        """What the warm-up sends: the conversation so far and an empty instruction."""
        return [*self.messages, user_message("")]

    def ask(self, instruction: str) -> None:
        """A new instruction: the first, or a follow-up to the last answer."""
        if self.turns and self.turns[-1]["role"] == "user":
            self.turns.pop()  # asked again before an answer came: replace the question
        self.turns.append(user_message(instruction))

    def answered(self, text: str) -> None:
        """The server's answer to the last instruction."""
        self.turns.append({"role": "assistant", "content": text})

    def retry(self) -> bool:
        """Forget the last answer, to ask the same again; False if nothing was asked."""
        if self.turns and self.turns[-1]["role"] == "assistant":
            self.turns.pop()
        return bool(self.turns)


def _common(
    messages: Sequence[Message], model: str, id_slot: int, llama_server: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": list(messages)}
    if llama_server:  # llama-server's own fields: a strict server rejects them (HTTP 400)
        body.update(id_slot=id_slot, cache_prompt=True)
    if model:
        body["model"] = model
    return body


def stream_body(
    messages: Sequence[Message], *, model: str, id_slot: int, llama_server: bool = True
) -> dict[str, Any]:
    """The streamed request of an instruction (OpenAI's fields only unless ``llama_server``)."""
    body = _common(messages, model, id_slot, llama_server)
    body.update(stream=True, temperature=0.1)
    if llama_server:
        body.update(min_p=0.1, samplers=["min_p", "temperature"])
    return body


def warm_up_body(messages: Sequence[Message], *, model: str, id_slot: int) -> dict[str, Any]:
    """A request that only fills llama-server's cache: nothing is generated."""
    body = _common(messages, model, id_slot, llama_server=True)
    body.update(stream=False, n_predict=0, samplers=[])
    return body


class SseParser:
    """Incremental parser of a streamed chat reply: bytes in, content deltas out.

    Lines may be cut anywhere between network reads; a line is parsed once
    whole. ``done`` is set by ``data: [DONE]``. An error object in the stream
    raises StreamError; a line that is not JSON is skipped.
    """

    def __init__(self) -> None:
        self._pending = b""
        self.done = False

    def feed(self, data: bytes) -> list[str]:
        """The content deltas in ``data`` (with what earlier calls left unfinished)."""
        self._pending += data
        *lines, self._pending = self._pending.split(b"\n")
        out: list[str] = []
        for raw in lines:
            delta = self._line(raw.strip())
            if delta:
                out.append(delta)
        return out

    def finish(self) -> list[str]:
        """The deltas of a last line that had no newline."""
        rest, self._pending = self._pending, b""
        delta = self._line(rest.strip())
        return [delta] if delta else []

    def _line(self, line: bytes) -> str:
        if not line.startswith(b"data:"):
            return ""
        payload = line[5:].strip()
        if payload == b"[DONE]":
            self.done = True
            return ""
        try:
            data = json.loads(payload)
        except ValueError:
            return ""
        message = error_message(data)
        if message is not None:
            raise StreamError(message)
        return delta_content(data)


def delta_content(data: Any) -> str:
    """``choices[0].delta.content`` of a stream chunk (or ``.message.content`` of a reply)."""
    if not isinstance(data, dict):
        return ""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    part = choices[0].get("delta") or choices[0].get("message")
    content = part.get("content") if isinstance(part, dict) else None
    return content if isinstance(content, str) else ""
