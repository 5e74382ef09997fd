"""Rendering plans: what the Lua side draws for a suggestion, decided in Python.

The plan carries the literal text (what Tab inserts), where it is anchored,
and the info text. How that text looks on screen (tab stops, caret notation
for control characters, cell widths, highlight groups) is the Lua side's
``display`` and ``draw``: only Neovim knows its own cell widths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from .context import Snapshot
from .messages import RequestDone, RequestStarted, ShowHint
from .protocol import Completion


@dataclass(frozen=True)
class InfoFigures:
    """Figures for the info text after a suggestion."""

    n_ctx: int = 0
    cached: bool = False
    completion: Completion | None = None
    ring: str = ""
    alternative: str = ""  # "2/3" while cycling through suggestions
    growing: bool = False  # part of an answer still being generated


def info_text(stats: InfoFigures) -> str:
    """The compact status line shown after a suggestion (show_info 1 and 2)."""
    parts: list[str] = []
    if stats.alternative:
        parts.append(f"suggestion {stats.alternative}")
    if stats.growing:
        parts.append("receiving")
    elif stats.cached or stats.completion is None:
        parts.append("cached")
    else:
        c = stats.completion
        t = c.timings
        ctx = f"ctx {c.tokens_cached}/{stats.n_ctx}" if stats.n_ctx else f"ctx {c.tokens_cached}"
        parts.append(ctx)
        parts.append(f"reused {t.cache_n}, computed {t.prompt_n} ({t.prompt_ms:.0f} ms)")
        parts.append(f"generated {t.predicted_n} ({t.predicted_ms:.0f} ms)")
        if c.truncated:
            parts.append("context truncated")
    if stats.ring:
        parts.append(stats.ring)
    return "llama: " + " | ".join(parts)


@dataclass(frozen=True)
class RenderPlan:
    """A suggestion anchored at one editor state."""

    snapshot: Snapshot
    lines: list[str]
    info: str
    show_info: int
    cached: bool = False  # from the suggestion cache, not a reply to this keystroke
    growing: bool = False  # the start of an answer still coming; no lines: take it back

    def message(self) -> ShowHint:
        """The message the Lua side draws; it re-checks the anchor before drawing."""
        snap = self.snapshot
        info = self.info if self.show_info == 2 else ""
        return ShowHint(
            buf=snap.buf,
            tick=snap.tick,
            row=snap.row,
            col=snap.col,
            lines=list(self.lines),
            after=snap.after,
            tabstop=snap.tabstop,
            vcol=snap.vcol,
            info=f"  {info}" if info else "",
            status=self.info if self.show_info else "",
            cached=self.cached,
            growing=self.growing,
        )

    def to_lua(self) -> dict[str, Any]:
        """The table the Lua side draws."""
        return self.message().to_lua()


class Editor(Protocol):
    """What the engine needs from the editor; implemented over pynvim and in tests."""

    def show(self, plan: RenderPlan) -> None:
        """Draw a suggestion (the editor drops it if the anchor moved on)."""

    def notify(self, message: str, *, error: bool) -> None:
        """Tell the user something, once."""

    def request_started(self, started: RequestStarted) -> None:
        """A request the user waits for was sent (statusline state, User event)."""

    def request_done(self, done: RequestDone) -> None:
        """That request ended: answered, failed or cancelled."""
