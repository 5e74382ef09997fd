"""The scripted editing session: a fixed key sequence with seeded, human-like pauses.

The session works on two real files of an installed package (httpx's ``_client.py``
and ``_models.py``, not written by us) copied into a temporary project:

1. in ``_client.py`` (normal mode): a jump, a few line moves, a yank, paragraph
   moves, a search, then ``:e _models.py`` (a file switch);
2. in ``_models.py``: jump to a region of 18 lines, delete it, and type it back
   key by key with 'autoindent' on (indentation is corrected with spaces or
   <BS>, as a person does), with interludes: three Tabs that accept whatever
   suggestion is shown (each undone afterwards, so the file ends up exactly as
   it was whatever was accepted), two jumps away and back with <C-o>, a save;
3. a final save and a switch back to ``_client.py`` with <C-^>.

Keys never depend on what a plugin does: every mode replays the very same keys at
the very same times. A Tab with no suggestion shown inserts spaces, which the undo
removes just the same. The seed only drives the pauses.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

# The region retyped: it starts at the decorator line above this anchor.
REGION_ANCHOR = "    def http_version(self) -> str:"
REGION_LINES = 18
QUICK_REGION_LINES = 9
SOFTTABSTOP = 4

# Human timing, in milliseconds.
TYPE_MS = (80.0, 150.0)  # between two typed characters
NORMAL_MS = (150.0, 400.0)  # between keys of normal-mode commands
LINE_PAUSE_MS = (300.0, 900.0)  # sometimes, after Enter
LINE_PAUSE_P = 0.35
THINK_MS = (1500.0, 2500.0)  # before a few lines
READ_MS = (800.0, 1500.0)  # looking at the place a jump led to
BEFORE_TAB_MS = (1500.0, 2000.0)  # waiting for a suggestion worth accepting
AFTER_TAB_MS = (700.0, 1000.0)  # looking at what was accepted


@dataclass(frozen=True)
class Step:
    """One key (Neovim key notation, exactly one key) and the pause before it."""

    key: str
    pause_ms: float
    tag: str  # what the key is for: type, indent, enter, normal, cmdline, tab, jump, save


@dataclass(frozen=True)
class Session:
    """The whole trace and what it needs to be replayed and checked."""

    steps: list[Step]
    tail_ms: float  # the pause after the last key, before the session ends
    first_file: str
    second_file: str
    region_start: int  # 1-based line number of the first retyped line
    region: list[str]

    @property
    def duration_s(self) -> float:
        return (sum(step.pause_ms for step in self.steps) + self.tail_ms) / 1000


def find_region(lines: list[str], n_lines: int) -> int:
    """0-based index of the region's first line (the decorator above the anchor)."""
    try:
        anchor = lines.index(REGION_ANCHOR)
    except ValueError:
        raise SystemExit(f"cannot find {REGION_ANCHOR!r} in _models.py: another httpx?") from None
    start = anchor - 1
    if start < 0 or start + n_lines >= len(lines):
        raise SystemExit("the retyped region does not fit in _models.py")
    return start


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _key(char: str) -> str:
    return "<lt>" if char == "<" else char


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.steps: list[Step] = []
        self._pending: tuple[float, float] | None = None

    def add(self, key: str, tag: str, pause: tuple[float, float]) -> None:
        """Append a key; a pending longer pause (stretch) replaces ``pause``."""
        pause = self._pending or pause
        self._pending = None
        self.steps.append(Step(key, round(self.rng.uniform(*pause), 1), tag))

    def normal(self, keys: list[str], tag: str = "normal") -> None:
        for key in keys:
            self.add(key, tag, NORMAL_MS)

    def cmdline(self, text: str, tag: str = "cmdline") -> None:
        self.add(":", tag, NORMAL_MS)
        for char in text:
            self.add(_key(char), tag, TYPE_MS)
        self.add("<CR>", tag, TYPE_MS)

    def read(self) -> None:
        """Make the next key wait as long as reading the screen takes."""
        self.stretch(READ_MS)

    def stretch(self, pause: tuple[float, float]) -> None:
        """Lengthen the pause before the next key (applied when it is added)."""
        self._pending = pause

    def type(self, text: str, tag: str = "type") -> None:
        for char in text:
            self.add(_key(char), tag, TYPE_MS)

    def tail(self) -> float:
        """The pause after the last key (a pending stretch, else a typing pause)."""
        pause = self._pending or TYPE_MS
        self._pending = None
        return round(self.rng.uniform(*pause), 1)


def build_session(models: Path, *, seed: int, quick: bool) -> Session:
    """The trace for ``models`` (httpx's _models.py as copied into the project)."""
    lines = models.read_text().split("\n")
    n_lines = QUICK_REGION_LINES if quick else REGION_LINES
    start = find_region(lines, n_lines)
    region = lines[start : start + n_lines]
    b = _Builder(seed)

    # 1. Look around _client.py, yank, search, switch file.
    if quick:
        b.normal(["7", "6", "0", "G"], "jump")
        b.read()
        b.normal([*"y10j"])
    else:
        b.normal(["7", "6", "0", "G"], "jump")
        b.read()
        b.normal(["j", "j", "j", "j"])
        b.normal([*"y10j"])
        b.normal(["}", "}"])
        b.add("/", "cmdline", NORMAL_MS)
        b.type("def send", "cmdline")
        b.add("<CR>", "jump", TYPE_MS)
        b.read()
    b.cmdline("e _models.py")
    b.read()

    # 2. Go to the region, delete it, open a line and type it back.
    b.normal([*str(start + 1), "G"], "jump")
    b.read()
    b.normal([*str(n_lines), "d", "d"])
    below = lines[start + n_lines]
    b.normal(["O"])
    indent = _indent(below)  # 'O' takes the indent of the line it opens above

    if quick:
        tabs = {1: "def http_version("}
        jumps = {3: ["g", "g"]}
        saves = {6}
        thinks = {4}
    else:
        tabs = {1: "def http_version(", 5: "return ", 12: "reason_phrase: bytes = "}
        jumps = {3: ["g", "g"], 14: ["G"]}
        saves = {9}
        thinks = {4, 9, 15}

    last = len(region) - 1
    for index, line in enumerate(region):
        if index > 0:
            b.add("<CR>", "enter", TYPE_MS)
            if b.rng.random() < LINE_PAUSE_P:
                b.stretch(LINE_PAUSE_MS)
        content = line.lstrip(" ")
        if not content:
            continue  # a blank line: the next Enter (or the final Esc) drops the indent
        if index in thinks:
            b.stretch(THINK_MS)
        target = _indent(line)
        if target > indent:
            b.type(" " * (target - indent), "indent")
        elif target < indent:
            for _ in range(math.ceil((indent - target) / SOFTTABSTOP)):
                b.add("<BS>", "indent", TYPE_MS)
        indent = target

        typed = content
        stop = tabs.get(index)
        if stop is not None:
            assert content.startswith(stop), (content, stop)
            b.type(stop)
            # Break the undo sequence so that one `u` removes exactly what Tab inserted.
            b.add("<C-g>", "tab", TYPE_MS)
            b.add("u", "tab", TYPE_MS)
            b.add("<Tab>", "tab", BEFORE_TAB_MS)
            b.add("<Esc>", "tab", AFTER_TAB_MS)
            b.normal(["u", "A"], "tab")
            typed = content[len(stop) :]
        b.type(typed)
        if index in jumps:
            b.add("<Esc>", "jump", TYPE_MS)
            b.normal(jumps[index], "jump")
            b.read()
            b.normal(["<C-o>"], "jump")
            b.normal(["A"], "jump")
        if index in saves:
            b.add("<Esc>", "save", TYPE_MS)
            b.cmdline("w", "save")
            b.normal(["A"], "save")
        if index == last:
            break
    if region[last].strip():
        raise SystemExit("the retyped region must end with a blank line")
    # 3. Leave insert mode (the blank last line loses its indent), save, switch back.
    b.add("<Esc>", "save", TYPE_MS)
    b.cmdline("w", "save")
    b.normal(["<C-^>"], "jump")
    b.read()
    return Session(b.steps, b.tail(), "_client.py", "_models.py", start + 1, region)
