"""Deciding whether a server reply is worth showing, and in what shape."""

from __future__ import annotations

from .context import Snapshot


def normalize(content: str) -> str:
    """Unify line endings: the buffer holds lines, never carriage returns."""
    return content.replace("\r\n", "\n").replace("\r", "")


def _same(a: list[str], b: list[str]) -> bool:
    return [x.rstrip() for x in a] == [y.rstrip() for y in b]


def suggestion_lines(content: str, snapshot: Snapshot) -> list[str] | None:
    """Split a reply into the lines to show, or None if it is not worth showing.

    Trailing blank lines are trimmed, and so are trailing lines that repeat the
    lines right below the cursor (accepting them would duplicate code). What is
    left is dropped if it is empty or whitespace, or if it merely retypes the
    text right of the cursor.
    """
    lines = normalize(content).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()

    # The first line continues the cursor line, so it is never part of the overlap.
    for overlap in range(len(lines) - 1, 0, -1):
        if _same(lines[-overlap:], list(snapshot.below[:overlap])):
            del lines[-overlap:]
            while lines and not lines[-1].strip():
                lines.pop()
            break

    if not lines or not "".join(lines).strip():
        return None
    after = snapshot.after.strip()
    if after and lines[0].strip() == after:
        return None
    return lines
