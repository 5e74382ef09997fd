"""Where the local context goes in a request, so that a keystroke costs the server little.

llama-server lays an /infill prompt out as ``[extra] PRE prefix prompt SUF
suffix MID`` (FACTS §4) and reuses its KV cache only up to the first token that
differs from the previous request. Sent plainly, that costs on every key:

- the suffix: ``prompt`` is the line being typed, so the whole suffix after it
  (up to n_batch/4 tokens, ~250) is recomputed on every keystroke;
- the prefix: the server keeps only its last 3/4·n_batch tokens, so once the
  lines above are longer than that, every new line moves the prefix's first
  token; the whole prefix (~770 tokens) is then recomputed, or, with
  ``--cache-reuse``, shifted in the cache (cheaper, but not free, and only
  where the server was started with it).

The layout keeps both stable, with what it keeps held between requests:

- the prefix starts at an anchored line, kept while the prefix stays under the
  server's cap; when it grows past it, a new start is chosen with room to
  grow, so the prefix is recomputed once per few dozen lines, not per line;
- only the first few lines below the cursor stay in the FIM suffix; the next
  n_batch/4 tokens of lines below go last in the extra context, as a chunk of
  the same file, where nothing typed precedes them. That chunk is anchored by
  its text: typing new lines above it, or moving a few lines up or down,
  leaves it unchanged.

The model sees the same text either way; what moves from the FIM suffix to the
extra context is the part of it farther than ``n_suffix_fim`` lines away.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .context import LocalContext, Snapshot, build_local_context
from .protocol import ExtraChunk

# Share of the server's prefix cap (3/4 of n_batch) the prefix may grow to
# before it gets a new start, and the share it is cut to then. The upper one
# leaves room for the gap between our token counts and the server's.
_PREFIX_HIGH = 0.9
_PREFIX_LOW = 0.6
# When the lines above are themselves a sliding window (capped by n_prefix or
# the byte cap), a new start keeps this share of that window above it, so that
# the window's top needs many new lines to reach the start.
_WINDOW_MARGIN = 0.25
# Bound on the per-line token-count memo.
_MEMO_LINES = 20_000


@dataclass(frozen=True)
class Placed:
    """A request's local context, laid out: the FIM part and the far suffix."""

    local: LocalContext
    far_suffix: ExtraChunk | None


class Layout:
    """Chooses, request after request, a prefix start and a suffix split that hold still."""

    def __init__(self, n_batch: int, n_suffix_fim: int, count_tokens: Callable[[str], int]) -> None:
        self.n_batch = n_batch
        self.n_suffix_fim = n_suffix_fim
        self._count = count_tokens
        self._memo: dict[str, int] = {}
        self._prefix_anchor: tuple[int, int] | None = None  # (buffer, first prefix row)
        self._far: tuple[int, tuple[str, ...]] | None = None  # (buffer, far suffix lines)

    @property
    def far_budget(self) -> int:
        """Server tokens the far suffix may take (what the server keeps of a suffix)."""
        return self.n_batch // 4

    def forget_counts(self) -> None:
        """Drop the remembered token counts (the counter changed)."""
        self._memo.clear()

    def place(self, snapshot: Snapshot, filename: str, scale: float = 1.0) -> Placed:
        """Lay out ``snapshot``'s local context.

        ``scale`` turns our token counts into the server's.
        """
        above_start = self._prefix_start(snapshot, scale)
        near, far = self._split_suffix(snapshot, scale)
        trimmed = dataclasses.replace(snapshot, above=snapshot.above[above_start:], below=near)
        far_chunk = ExtraChunk(filename, "".join(f"{line}\n" for line in far)) if far else None
        return Placed(build_local_context(trimmed), far_chunk)

    # -- prefix -------------------------------------------------------------------------

    def _tokens(self, line: str) -> int:
        count = self._memo.get(line)
        if count is None:
            if len(self._memo) >= _MEMO_LINES:
                self._memo.clear()
            count = self._memo[line] = self._count(line + "\n")
        return count

    def _prefix_start(self, snapshot: Snapshot, scale: float) -> int:
        """Index into ``snapshot.above`` of the first line sent as prefix."""
        above = snapshot.above
        first_row = snapshot.row - len(above)
        cap = 3 * (self.n_batch // 4) / max(scale, 1e-6)  # in our tokens
        anchor_buf, anchor_row = self._prefix_anchor or (None, 0)
        if anchor_buf == snapshot.buf and first_row <= anchor_row <= snapshot.row:
            start = anchor_row - first_row
            if self._sum(above[start:], cap * _PREFIX_HIGH) <= cap * _PREFIX_HIGH:
                return start
        # A new start: as many lines as fit under the low mark, and never in the
        # part of a sliding window that the next lines would push out.
        floor = int(len(above) * _WINDOW_MARGIN) if first_row > 0 else 0
        if self._sum(above, cap * _PREFIX_HIGH) <= cap * _PREFIX_HIGH:
            start = floor
        else:
            total = 0.0
            start = len(above)
            while start > floor:
                total += self._tokens(above[start - 1])
                if total > cap * _PREFIX_LOW:
                    break
                start -= 1
        self._prefix_anchor = (snapshot.buf, first_row + start)
        return start

    def _sum(self, lines: Sequence[str], limit: float) -> float:
        """Tokens in ``lines``, counting from the end and stopping once over ``limit``."""
        total = 0.0
        for line in reversed(lines):
            total += self._tokens(line)
            if total > limit:
                break
        return total

    # -- suffix -------------------------------------------------------------------------

    def _split_suffix(
        self, snapshot: Snapshot, scale: float
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The lines below kept in the FIM suffix, and the far ones for the extra context."""
        below = snapshot.below
        near_max = self.n_suffix_fim
        if near_max >= len(below):
            self._far = None
            return below, ()
        held = self._far
        if held is not None and held[0] == snapshot.buf:
            far = held[1]
            # Keep the far lines where they are found within twice the usual
            # number of near lines: typing new lines or moving a few lines up
            # or down then changes nothing the server has cached after them.
            for split in range(min(near_max, 1), 2 * near_max + 1):
                if below[split : split + len(far)] == far:
                    return below[:split], far
        budget = self.far_budget / max(scale, 1e-6)
        far_lines: list[str] = []
        total = 0
        for line in below[near_max:]:
            total += self._tokens(line)
            if total > budget:
                break
            far_lines.append(line)
        far = tuple(far_lines)
        self._far = (snapshot.buf, far) if far else None
        return below[:near_max], far
