"""What the editor saw at one keystroke, and the local FIM context built from it."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Make editor text safe to put in JSON.

    pynvim hands us undecodable bytes as lone surrogates; the server rejects
    those, so each becomes U+FFFD.
    """
    if text.isascii():  # the common case, checked at C speed
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


@dataclass(frozen=True)
class Snapshot:
    """The buffer around the cursor at one keystroke, as sent by the Lua side.

    ``row`` is 0-based, ``col`` is a byte column; ``above``/``below`` are the
    lines around the cursor line, already capped in count and bytes.
    """

    buf: int
    tick: int
    row: int
    col: int
    above: tuple[str, ...]
    before: str
    after: str
    below: tuple[str, ...]
    filename: str = ""
    filetype: str = ""
    cwd: str = ""
    vcol: int = 0
    tabstop: int = 8
    manual: bool = False
    # The buffer's own switch (b:llama_enabled), None where unset.
    buffer_enabled: bool | None = None

    @property
    def position(self) -> tuple[int, int, int, int]:
        """Identity of the editor state this snapshot describes."""
        return (self.buf, self.tick, self.row, self.col)


@dataclass(frozen=True)
class LocalContext:
    """The local part of an /infill request (see llama-server's /infill)."""

    prefix: str
    prompt: str
    suffix: str
    n_indent: int

    @property
    def text(self) -> str:
        """All local text, for similarity checks against ring chunks."""
        return self.prefix + self.prompt + self.suffix


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def build_local_context(snapshot: Snapshot) -> LocalContext:
    """Turn a snapshot into prefix / prompt / suffix.

    The prefix is every line above, each ending in a newline; the prompt is the
    text left of the cursor; the suffix is the rest of the line and the lines
    below. ``n_indent`` makes the server stop when a generated line is indented
    less than the current one; on a blank line there is no such bound yet.
    """
    line = snapshot.before + snapshot.after
    n_indent = 0 if not line.strip() else _indent_of(line)
    return LocalContext(
        prefix="".join(f"{text}\n" for text in snapshot.above),
        prompt=snapshot.before,
        suffix=snapshot.after + "\n" + "".join(f"{text}\n" for text in snapshot.below),
        n_indent=n_indent,
    )


def _is_continuation(byte: int) -> bool:
    return 0x80 <= byte < 0xC0


def _truncate_bytes(text: str, limit: int, *, keep_end: bool = False) -> str:
    """Cut to ``limit`` UTF-8 bytes without splitting a character (as the Lua side cuts)."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    if keep_end:
        start = len(data) - limit
        while start < len(data) and _is_continuation(data[start]):
            start += 1
        data = data[start:]
    else:
        end = limit
        while end > 0 and _is_continuation(data[end]):
            end -= 1
        data = data[:end]
    return data.decode("utf-8", "replace")


def cap_lines_above(
    lines: Sequence[str], count: int, max_bytes: int, max_line: int
) -> tuple[str, ...]:
    """The last ``count`` lines within ``max_bytes``, each cut to ``max_line`` bytes.

    Mirrors the Lua side's capping exactly, so a context predicted here (the
    state after an accept) gets the same cache key as the one Lua will send.
    """
    kept: list[str] = []
    total = 0
    for line in reversed(lines[max(0, len(lines) - count) :] if count else []):
        line = _truncate_bytes(line, max_line)
        total += len(line.encode("utf-8", "surrogatepass")) + 1
        if total > max_bytes:
            break
        kept.append(line)
    kept.reverse()
    return tuple(kept)


def before_is_whole(snapshot: Snapshot) -> bool:
    """False if the text left of the cursor was cut to fit ``max_line_bytes``."""
    return len(snapshot.before.encode("utf-8", "surrogatepass")) >= snapshot.col


def accepted_snapshot(
    snapshot: Snapshot,
    lines: Sequence[str],
    *,
    n_prefix: int,
    max_prefix_bytes: int,
    max_line_bytes: int,
) -> Snapshot:
    """The editor state right after ``lines`` are accepted at ``snapshot``'s cursor."""
    if len(lines) == 1:
        above = snapshot.above
        before = snapshot.before + lines[0]
    else:
        above = (*snapshot.above, snapshot.before + lines[0], *lines[1:-1])
        before = lines[-1]
    return dataclasses.replace(
        snapshot,
        row=snapshot.row + len(lines) - 1,
        col=len(before.encode("utf-8", "surrogatepass"))
        if len(lines) > 1
        else snapshot.col + len(lines[0].encode("utf-8", "surrogatepass")),
        above=cap_lines_above(above, n_prefix, max_prefix_bytes, max_line_bytes),
        before=_truncate_bytes(before, max_line_bytes, keep_end=True),
        manual=False,
    )
