"""Every message between the Lua half and Python, both directions, typed.

Lua -> Python: one ``rpcnotify(chan, 'llama_nvim_event', kind, payload)`` per
event; ``parse_event`` turns (kind, payload) into one of the frozen dataclasses
below, or None if the kind is unknown or a field has the wrong type (one debug
log line, nothing else happens). A missing field takes its default: Lua drops
nil values from tables.

Python -> Lua: ``ShowHint`` (``require('llama_nvim').show``), ``Notice``
(``.message``), ``RequestStarted`` / ``RequestDone`` (``.request_started`` /
``.request_done``, for the statusline state and the User events; an answered
request's end and the suggestion shown from it go together, in ``.answer``);
the setup options are ``plugin._lua_options``' dict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .acceptance import ACCEPT_KINDS
from .context import Snapshot, clean_text


class Malformed(ValueError):
    """A payload field of the wrong type."""


# -- Lua -> Python -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keystroke:
    """``keystroke`` (cursor moved / text changed in insert mode) or ``trigger`` (Ctrl+F).

    The snapshot's ``manual`` is true for ``trigger``.
    """

    snapshot: Snapshot


@dataclass(frozen=True)
class Cycle:
    """``cycle``: the next (step 1) / previous (step -1) key while ``shown`` is shown."""

    snapshot: Snapshot
    step: int
    shown: tuple[str, ...]


@dataclass(frozen=True)
class TextChunk:
    """``chunk``: text the user touched (yank, buffer enter/leave/save, cursor jump)."""

    lines: tuple[str, ...]
    filename: str = ""
    filetype: str = ""
    cwd: str = ""
    buffer_enabled: bool | None = None


@dataclass(frozen=True)
class Enter:
    """``enter``: a file buffer was entered."""

    filename: str = ""
    cwd: str = ""


@dataclass(frozen=True)
class Leave:
    """``leave``: insert mode was left."""


@dataclass(frozen=True)
class Cancel:
    """``cancel``: whatever is pending is no longer wanted (hint kept by typing, menu shown)."""


@dataclass(frozen=True)
class Shown:
    """``shown``: the editor drew a new hint.

    ``after_accept`` is what the editor will send once the hint is accepted
    whole, built by the Lua half from the buffer and the hint's lines, capped
    as every keystroke snapshot is: the key the speculative request stores its
    answer under (None where that snapshot cannot be told, see context.lua).
    ``filetype`` and ``latency_ms`` (from the keystroke that asked; None for a
    cached hint) are for :LlamaStats. ``finished``: the finished form of a hint
    first drawn while its answer was still coming, which was counted then.
    """

    after_accept: Snapshot | None = None
    filetype: str = ""
    latency_ms: int | None = None
    finished: bool = False


@dataclass(frozen=True)
class Enabled:
    """``enabled``: suggestions were turned on or off; the Lua half owns the switch."""

    enabled: bool


@dataclass(frozen=True)
class Accepted:
    """``accepted``: part of the suggestion was inserted (for :LlamaStats).

    ``continued``: the suggestion was what an earlier partial accept left.
    """

    filetype: str = ""
    kind: str = "full"
    chars: int = 0
    continued: bool = False


@dataclass(frozen=True)
class InstOpen:
    """``inst_open``: lines were selected for an instruction (warm the cache meanwhile).

    ``id`` is the Lua half's number for the instruction; every later event names it.
    """

    id: int
    prefix: tuple[str, ...] = ()
    selection: tuple[str, ...] = ()
    suffix: tuple[str, ...] = ()
    filename: str = ""
    cwd: str = ""


@dataclass(frozen=True)
class InstAsk:
    """``inst_ask``: an instruction for that selection (the first, or a follow-up)."""

    id: int
    instruction: str


@dataclass(frozen=True)
class InstRerun:
    """``inst_rerun``: ask the last instruction again."""

    id: int


@dataclass(frozen=True)
class InstClose:
    """``inst_close``: the instruction was accepted, cancelled or dropped."""

    id: int


InstEvent = InstOpen | InstAsk | InstRerun | InstClose
Event = (
    Keystroke | Cycle | TextChunk | Enter | Leave | Cancel | Shown | Enabled | Accepted | InstEvent
)


def _get(payload: Mapping[str, Any], key: str, kind: type, default: Any, within: str = "") -> Any:
    value = payload.get(key)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Malformed(f"{within}{key}: {type(value).__name__}, not {kind.__name__}")
    return value


def _text(payload: Mapping[str, Any], key: str) -> str:
    return clean_text(_get(payload, key, str, ""))


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise Malformed(f"{key}: not a list of strings")
    return tuple(clean_text(v) for v in value)


def _lines(payload: Mapping[str, Any], key: str) -> tuple[str, ...]:
    # The Lua side sends {n = count, text = lines joined by newlines}; a list
    # of strings is accepted too.
    value = payload.get(key)
    if value is None:
        return ()
    if isinstance(value, Mapping):
        n = _get(value, "n", int, 0, f"{key}.")
        text = _get(value, "text", str, "", f"{key}.")
        return tuple(clean_text(text).split("\n")) if n else ()
    return _strings(value, key)


def _snapshot(payload: Mapping[str, Any], *, manual: bool) -> Snapshot:
    return Snapshot(
        buf=_get(payload, "buf", int, 0),
        tick=_get(payload, "tick", int, 0),
        row=_get(payload, "row", int, 0),
        col=_get(payload, "col", int, 0),
        above=_lines(payload, "above"),
        before=_text(payload, "before"),
        after=_text(payload, "after"),
        below=_lines(payload, "below"),
        filename=_text(payload, "filename"),
        filetype=_text(payload, "filetype"),
        cwd=_text(payload, "cwd"),
        vcol=_get(payload, "vcol", int, 0),
        tabstop=max(1, _get(payload, "tabstop", int, 8)),
        manual=_get(payload, "manual", bool, False) or manual,
        buffer_enabled=_get(payload, "buffer_enabled", bool, None),
    )


def _keystroke(payload: Mapping[str, Any]) -> Keystroke:
    return Keystroke(_snapshot(payload, manual=False))


def _trigger(payload: Mapping[str, Any]) -> Keystroke:
    return Keystroke(_snapshot(payload, manual=True))


def _cycle(payload: Mapping[str, Any]) -> Cycle:
    step = payload.get("step")
    if not isinstance(step, int) or isinstance(step, bool):
        raise Malformed("step: not an integer")
    shown = _strings(payload.get("shown"), "shown")
    return Cycle(_snapshot(payload, manual=False), step, shown)


def _chunk(payload: Mapping[str, Any]) -> TextChunk:
    lines = _strings(payload.get("lines"), "lines")
    filename, filetype = _text(payload, "filename"), _text(payload, "filetype")
    buffer_enabled = _get(payload, "buffer_enabled", bool, None)
    return TextChunk(lines, filename, filetype, _text(payload, "cwd"), buffer_enabled)


def _enabled(payload: Mapping[str, Any]) -> Enabled:
    enabled = payload.get("enabled")
    if not isinstance(enabled, bool):
        raise Malformed("enabled: not a boolean")
    return Enabled(enabled)


def _enter(payload: Mapping[str, Any]) -> Enter:
    return Enter(_text(payload, "filename"), _text(payload, "cwd"))


def _shown(payload: Mapping[str, Any]) -> Shown:
    after_accept = payload.get("after_accept")
    if after_accept is not None and not isinstance(after_accept, Mapping):
        raise Malformed("after_accept: not a table")
    latency = _get(payload, "latency_ms", int, None)
    if latency is not None and latency < 0:
        raise Malformed("latency_ms: negative")
    snapshot = _snapshot(after_accept, manual=False) if after_accept is not None else None
    finished = _get(payload, "finished", bool, False)
    return Shown(snapshot, _text(payload, "filetype"), latency, finished)


def _accepted(payload: Mapping[str, Any]) -> Accepted:
    kind = _get(payload, "kind", str, "")
    if kind not in ACCEPT_KINDS:
        raise Malformed(f"kind: {kind!r} is none of {', '.join(ACCEPT_KINDS)}")
    return Accepted(
        _text(payload, "filetype"),
        kind,
        max(0, _get(payload, "chars", int, 0)),
        _get(payload, "continued", bool, False),
    )


def _inst_id(payload: Mapping[str, Any]) -> int:
    inst_id = payload.get("id")
    if not isinstance(inst_id, int) or isinstance(inst_id, bool):
        raise Malformed("id: not an integer")
    return inst_id


def _inst_open(payload: Mapping[str, Any]) -> InstOpen:
    return InstOpen(
        _inst_id(payload),
        _lines(payload, "prefix"),
        _lines(payload, "selection"),
        _lines(payload, "suffix"),
        _text(payload, "filename"),
        _text(payload, "cwd"),
    )


def _inst_ask(payload: Mapping[str, Any]) -> InstAsk:
    instruction = _text(payload, "instruction")
    if not instruction:
        raise Malformed("instruction: empty")
    return InstAsk(_inst_id(payload), instruction)


_PARSERS: dict[str, Callable[[Mapping[str, Any]], Event]] = {
    "keystroke": _keystroke,
    "trigger": _trigger,
    "cycle": _cycle,
    "chunk": _chunk,
    "enter": _enter,
    "leave": lambda payload: Leave(),
    "cancel": lambda payload: Cancel(),
    "shown": _shown,
    "enabled": _enabled,
    "accepted": _accepted,
    "inst_open": _inst_open,
    "inst_ask": _inst_ask,
    "inst_rerun": lambda payload: InstRerun(_inst_id(payload)),
    "inst_close": lambda payload: InstClose(_inst_id(payload)),
}


def parse_event(
    kind: Any, payload: Any, reject: Callable[[str], None] | None = None
) -> Event | None:
    """The typed event for (kind, payload), or None (why, told to ``reject``) if it is not one."""
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        reason = "unknown kind"
    elif not isinstance(payload, Mapping):
        reason = "payload is not a table"
    else:
        try:
            return parser(payload)
        except Malformed as err:
            reason = str(err)
    if reject is not None:
        reject(f"event {kind!r}: {reason}")
    return None


# -- Python -> Lua -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShowHint:
    """``require('llama_nvim').show(hint)``: draw ``lines`` if the anchor still holds."""

    buf: int
    tick: int
    row: int
    col: int
    lines: list[str]
    after: str
    tabstop: int
    vcol: int
    info: str  # after the hint's first line (show_info 2), else ""
    status: str  # for the status line (show_info 1 and 2), else ""
    cached: bool = False  # from a cache: no latency to count (:LlamaStats)
    # The start of an answer still coming (the rest follows at the same place);
    # with no lines, the answer came to nothing: hide what was drawn of it.
    growing: bool = False

    def to_lua(self) -> dict[str, Any]:
        """The table the Lua side receives."""
        return asdict(self)


@dataclass(frozen=True)
class Notice:
    """``require('llama_nvim').message(text, error)``: one message to the user."""

    text: str
    error: bool


@dataclass(frozen=True)
class RequestStarted:
    """``require('llama_nvim').request_started(data)``: a request the user waits for was sent."""

    id: int  # numbers the requests of this session; its RequestDone carries the same

    def to_lua(self) -> dict[str, Any]:
        """The table the Lua side receives."""
        return asdict(self)


@dataclass(frozen=True)
class RequestDone:
    """``require('llama_nvim').request_done(data)``: that request ended."""

    id: int
    status: str  # "ok", "error" or "cancelled"
    ms: int  # from sending to the end
    error: str  # what went wrong, worded for the user, when status is "error"; else ""

    def to_lua(self) -> dict[str, Any]:
        """The table the Lua side receives."""
        return asdict(self)
