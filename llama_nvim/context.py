"""What the editor saw at one keystroke, and the local FIM context built from it."""

from __future__ import annotations

import re
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
