"""Acceptance statistics for :LlamaStats, kept across sessions in a small JSON file.

Per filetype and overall: suggestions shown and accepted (full / line / word),
characters accepted, and the latency of the latest suggestions. The file holds
only filetype names and numbers, never any of the user's text.

Several Neovims may share the file: each keeps what it counted since its last
write and adds it to what the file holds when it writes (``flush``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

FILE_VERSION = 1
ACCEPT_KINDS = ("full", "line", "word")
# Bounds that keep the file small (a few tens of KiB at most).
MAX_FILETYPES = 50
LATENCY_SAMPLES = 100  # per filetype
LATENCY_SAMPLES_OVERALL = 1000
MAX_FILE_BYTES = 1024 * 1024
MAX_LATENCY_MS = 600_000

_FILETYPE = re.compile(r"[A-Za-z0-9_.+-]{1,40}")
_COUNTERS = ("shown", "accepted", "full", "line", "word", "chars")


def filetype_key(filetype: str) -> str:
    """The name a filetype is counted under: only plain filetype names are kept."""
    if not filetype:
        return "none"
    return filetype if _FILETYPE.fullmatch(filetype) else "other"


@dataclass
class Tally:
    """The counts of one filetype (or of all)."""

    shown: int = 0
    accepted: int = 0  # suggestions accepted at least in part
    full: int = 0
    line: int = 0
    word: int = 0
    chars: int = 0
    # The latest latencies (key to suggestion shown), oldest first: the server
    # and model change over time, and the latest describe today's setup.
    latency_ms: list[int] = field(default_factory=list)
    last_used: int = 0  # epoch seconds: which filetypes to drop first

    def add(self, other: Tally, max_samples: int) -> None:
        for name in _COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.latency_ms = (self.latency_ms + other.latency_ms)[-max_samples:]
        self.last_used = max(self.last_used, other.last_used)

    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in _COUNTERS) and not self.latency_ms

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(self, name) for name in _COUNTERS}
        data["latency_ms"] = list(self.latency_ms)
        data["last_used"] = self.last_used
        return data

    @classmethod
    def from_json(cls, data: Any, max_samples: int) -> Tally:
        if not isinstance(data, Mapping):
            raise ValueError("a tally is not an object")
        numbers = {name: _count(data.get(name, 0)) for name in (*_COUNTERS, "last_used")}
        samples = data.get("latency_ms", [])
        if not isinstance(samples, list):
            raise ValueError("latency_ms is not a list")
        latencies = [min(_count(s), MAX_LATENCY_MS) for s in samples][-max_samples:]
        return cls(**numbers, latency_ms=latencies)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"not a count: {value!r}")
    return value


@dataclass
class Totals:
    """Everything counted: overall and per filetype, since a date."""

    since: int = 0
    overall: Tally = field(default_factory=Tally)
    filetypes: dict[str, Tally] = field(default_factory=dict)

    def add(self, other: Totals) -> None:
        if other.since and (not self.since or other.since < self.since):
            self.since = other.since
        self.overall.add(other.overall, LATENCY_SAMPLES_OVERALL)
        for name, tally in other.filetypes.items():
            self.filetypes.setdefault(name, Tally()).add(tally, LATENCY_SAMPLES)
        if len(self.filetypes) > MAX_FILETYPES:
            # Forget the filetypes not seen for longest; "all" keeps their counts.
            keep = sorted(self.filetypes, key=lambda n: self.filetypes[n].last_used)
            for name in keep[: len(self.filetypes) - MAX_FILETYPES]:
                del self.filetypes[name]

    def is_empty(self) -> bool:
        return self.overall.is_empty() and not self.filetypes

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FILE_VERSION,
            "since": self.since,
            "overall": self.overall.to_json(),
            "filetypes": {name: t.to_json() for name, t in sorted(self.filetypes.items())},
        }

    @classmethod
    def from_json(cls, data: Any) -> Totals:
        if not isinstance(data, Mapping) or data.get("version") != FILE_VERSION:
            raise ValueError("not a statistics file of this version")
        filetypes = data.get("filetypes", {})
        if not isinstance(filetypes, Mapping) or len(filetypes) > MAX_FILETYPES:
            raise ValueError("bad filetypes")
        tallies: dict[str, Tally] = {}
        for name, tally in filetypes.items():
            if not isinstance(name, str) or filetype_key(name) != name:
                raise ValueError("bad filetype name")
            tallies[name] = Tally.from_json(tally, LATENCY_SAMPLES)
        return cls(
            since=_count(data.get("since", 0)),
            overall=Tally.from_json(data.get("overall", {}), LATENCY_SAMPLES_OVERALL),
            filetypes=tallies,
        )


def percentile(samples: Iterable[int], p: float) -> int | None:
    """The nearest-rank percentile, or None without samples."""
    ordered = sorted(samples)
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


class AcceptanceStats:
    """Counts kept in memory and written to ``path`` when the caller flushes."""

    def __init__(self, path: str, *, now: Callable[[], float] = time.time) -> None:
        self.path = path
        self._now = now
        self._saved = Totals()  # what the file held at the last read or write
        self._pending = Totals()  # counted here since then
        self._dirty = False
        self._write_failed = False
        self._reset_reported = False
        self._reset_pending = False  # a reset not written yet: replace, don't add

    @classmethod
    def load(
        cls, path: str, *, now: Callable[[], float] = time.time
    ) -> tuple[AcceptanceStats, str | None]:
        """The statistics kept in ``path``, and a message if the file had to be reset."""
        stats = cls(path, now=now)
        saved, problem = stats._read()
        stats._saved = saved
        if problem is not None:
            # Written afresh at the next flush; the message is not repeated then.
            stats._pending.since = int(now())
            stats._dirty = stats._reset_reported = True
        return stats, problem

    # -- counting ----------------------------------------------------------------

    def shown(self, filetype: str, latency_ms: float | None = None) -> None:
        """A new suggestion was shown; ``latency_ms`` from the keystroke, None if
        it came from the cache at once (it says nothing about the server)."""
        for tally, samples in self._tallies(filetype):
            tally.shown += 1
            if latency_ms is not None:
                value = min(max(0, round(latency_ms)), MAX_LATENCY_MS)
                tally.latency_ms = [*tally.latency_ms, value][-samples:]

    def accepted(self, filetype: str, kind: str, chars: int, *, continued: bool = False) -> None:
        """``kind`` ("full", "line" or "word") of a suggestion was accepted,
        ``chars`` characters; ``continued`` when an earlier accept already took
        part of the same suggestion (it then does not count as one more)."""
        if kind not in ACCEPT_KINDS:
            raise ValueError(f"unknown accept kind {kind!r}")
        for tally, _ in self._tallies(filetype):
            setattr(tally, kind, getattr(tally, kind) + 1)
            tally.chars += max(0, chars)
            if not continued:
                tally.accepted += 1

    def _tallies(self, filetype: str) -> list[tuple[Tally, int]]:
        now = int(self._now())
        self._dirty = True
        if not self._pending.since:
            self._pending.since = now
        name = filetype_key(filetype)
        tally = self._pending.filetypes.setdefault(name, Tally())
        tally.last_used = self._pending.overall.last_used = now
        return [(tally, LATENCY_SAMPLES), (self._pending.overall, LATENCY_SAMPLES_OVERALL)]

    # -- the file --------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        """Something was counted since the last write."""
        return self._dirty

    def flush(self) -> str | None:
        """Add what was counted here to the file (written atomically).

        Returns a message for the user when the file had to be reset or cannot
        be written (the latter once, until a write succeeds again).
        """
        if not self.dirty:
            return None
        saved, problem = (copy.deepcopy(self._saved), None) if self._reset_pending else self._read()
        if problem is not None and self._reset_reported:
            problem = None
        elif problem is not None:
            self._reset_reported = True
        saved.add(self._pending)
        try:
            self._write(saved)
        except OSError as err:
            return problem or self._write_problem(err)
        self._saved, self._pending, self._dirty = saved, Totals(), False
        self._reset_reported = self._reset_pending = False
        return problem

    def reset(self) -> str | None:
        """Forget everything, in the file too; a message if it cannot be written."""
        self._saved, self._pending = Totals(since=int(self._now())), Totals()
        self._dirty = self._write_failed = self._reset_pending = False
        try:
            self._write(self._saved)
        except OSError as err:
            self._dirty = self._reset_pending = True  # try again at the next flush
            return self._write_problem(err)
        return None

    def totals(self) -> Totals:
        """What the file held plus what was counted here since."""
        merged = copy.deepcopy(self._saved)
        merged.add(self._pending)
        return merged

    def _read(self) -> tuple[Totals, str | None]:
        try:
            with open(self.path, "rb") as file:
                raw = file.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return Totals(), None
        except OSError as err:
            return Totals(), self._reset_message(err.strerror or str(err))
        try:
            if len(raw) > MAX_FILE_BYTES:
                raise ValueError("too large")
            return Totals.from_json(json.loads(raw)), None
        except ValueError:  # JSONDecodeError and UnicodeDecodeError included
            return Totals(), self._reset_message("it is damaged")

    def _reset_message(self, why: str) -> str:
        return (
            f"llama.nvim: the statistics file {self.path} cannot be read ({why}); starting afresh"
        )

    def _write_problem(self, err: OSError) -> str | None:
        """The message for a failed write; None while the failures go on."""
        if self._write_failed:
            return None
        self._write_failed = True
        return f"llama.nvim: cannot write the statistics file {self.path}: {err}"

    def _write(self, totals: Totals) -> None:
        """Write through a temporary file and os.replace: a crash leaves the old
        file or the new one, never half of one."""
        directory = os.path.dirname(self.path) or "."
        temp = ""
        try:
            os.makedirs(directory, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=".llama_nvim_stats.", suffix=".tmp", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(totals.to_json(), file, separators=(",", ":"))
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, self.path)
        except OSError:
            if temp:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
            raise
        self._write_failed = False

    # -- :LlamaStats -------------------------------------------------------------------

    def report(self) -> str:
        """The table :LlamaStats shows."""
        totals = self.totals()
        since = time.strftime("%Y-%m-%d", time.localtime(totals.since)) if totals.since else ""
        if totals.overall.shown == 0 and totals.overall.accepted == 0:
            return "llama.nvim: no suggestion shown yet"
        header = ("filetype", "shown", "accepted", "rate", "full", "line", "word", "chars")
        rows: list[tuple[str, ...]] = [(*header, "p50 ms", "p90 ms")]
        ordered = sorted(totals.filetypes.items(), key=lambda item: (-item[1].shown, item[0]))
        rows += [_row(name, tally) for name, tally in ordered]
        rows.append(_row("all", totals.overall))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [f"llama.nvim suggestions since {since}"]
        for row in rows:
            cells = [row[0].ljust(widths[0])]
            cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)


def _row(name: str, tally: Tally) -> tuple[str, ...]:
    rate = f"{min(1.0, tally.accepted / tally.shown):.0%}" if tally.shown else "-"
    p50 = percentile(tally.latency_ms, 50)
    p90 = percentile(tally.latency_ms, 90)
    return (
        name,
        str(tally.shown),
        str(tally.accepted),
        rate,
        str(tally.full),
        str(tally.line),
        str(tally.word),
        str(tally.chars),
        "-" if p50 is None else str(p50),
        "-" if p90 is None else str(p90),
    )
