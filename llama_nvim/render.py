"""Rendering plans: what the Lua side draws for a suggestion, decided in Python.

The plan carries the literal text (what Tab inserts) and, separately, the text
to display: tabs expanded to the right width and control characters shown in
caret notation, so nothing in a suggestion is ever interpreted by the terminal.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from .context import Snapshot
from .protocol import Completion

HL_HINT = "LlamaNvimHint"
HL_INFO = "LlamaNvimInfo"


def _caret(char: str) -> str:
    code = ord(char)
    if code == 0x7F:
        return "^?"
    return "^" + chr(code + 0x40)


def display_text(text: str, start_vcol: int, tabstop: int) -> str:
    """Text as the screen should show it when it starts at ``start_vcol``."""
    out: list[str] = []
    vcol = start_vcol
    for char in text:
        if char == "\t":
            width = tabstop - (vcol % tabstop)
            out.append(" " * width)
            vcol += width
        elif ord(char) < 0x20 or ord(char) == 0x7F or 0x80 <= ord(char) < 0xA0:
            shown = _caret(char) if ord(char) < 0x80 else f"<{ord(char):02x}>"
            out.append(shown)
            vcol += len(shown)
        else:
            out.append(char)
            vcol += 2 if unicodedata.east_asian_width(char) in "WF" else 1
    return "".join(out)


@dataclass(frozen=True)
class Stats:
    """Figures for the info text."""

    n_ctx: int = 0
    cached: bool = False
    completion: Completion | None = None
    ring: str = ""


def info_text(stats: Stats) -> str:
    """The compact status line shown after a suggestion (show_info 1 and 2)."""
    parts: list[str] = []
    if stats.cached or stats.completion is None:
        parts.append("llama: cached")
    else:
        c = stats.completion
        t = c.timings
        ctx = f"ctx {c.tokens_cached}/{stats.n_ctx}" if stats.n_ctx else f"ctx {c.tokens_cached}"
        parts.append(f"llama: {ctx}")
        parts.append(f"reused {t.cache_n}, computed {t.prompt_n} ({t.prompt_ms:.0f} ms)")
        parts.append(f"generated {t.predicted_n} ({t.predicted_ms:.0f} ms)")
        if c.truncated:
            parts.append("context truncated")
    if stats.ring:
        parts.append(stats.ring)
    return " | ".join(parts)


@dataclass(frozen=True)
class RenderPlan:
    """A suggestion anchored at one editor state."""

    snapshot: Snapshot
    lines: list[str]
    info: str
    show_info: int

    def to_lua(self) -> dict[str, Any]:
        """The dict the Lua side draws; it re-checks the anchor before drawing."""
        snap = self.snapshot
        first = display_text(self.lines[0], snap.vcol, snap.tabstop)
        virt_lines = [[[display_text(line, 0, snap.tabstop), HL_HINT]] for line in self.lines[1:]]
        info = self.info if self.show_info == 2 else ""
        return {
            "buf": snap.buf,
            "tick": snap.tick,
            "row": snap.row,
            "col": snap.col,
            "lines": list(self.lines),
            "after": snap.after,
            "tabstop": snap.tabstop,
            "inline": first,
            "virt_lines": virt_lines,
            "info": f"  {info}" if info else "",
            "status": self.info if self.show_info else "",
            "hl_hint": HL_HINT,
            "hl_info": HL_INFO,
        }
