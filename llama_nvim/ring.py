"""The ring buffer of extra context: chunks of text the user recently touched.

Shaped for llama-server's KV cache (see FACTS §5): chunks enter through a
queue, one at a time while the user is idle; the ring only ever appends at the
back and evicts at the front, and a chunk's text never changes, so the token
sequence the server caches stays a prefix of the next request's.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .protocol import ExtraChunk

if TYPE_CHECKING:
    from .config import Config

_WORD = re.compile(r"\w+")
# A chunk shorter than this is not worth a place in the ring.
MIN_LINES = 3


def chunk_lines(ring_chunk_size: int) -> int:
    """Lines per chunk the editor gathers: half of ring_chunk_size, as llama.vim takes them.

    Small chunks keep the extra context focused and cheap for the server to
    attend to; never fewer than the ring keeps.
    """
    return max(MIN_LINES, ring_chunk_size // 2)


def words_of(text: str) -> frozenset[str]:
    """The set of word tokens of a text, for similarity."""
    return frozenset(_WORD.findall(text))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Similarity of two word sets, 0..1."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def line_set(text: str) -> frozenset[str]:
    """Non-blank lines, stripped, for 'is this already in the local context'."""
    return frozenset(s for line in text.split("\n") if (s := line.strip()))


def covered_by(chunk_lines: frozenset[str], local_lines: frozenset[str]) -> float:
    """Share of a chunk's lines that the local context already holds, 0..1."""
    if not chunk_lines:
        return 1.0
    return len(chunk_lines & local_lines) / len(chunk_lines)


@dataclass(frozen=True)
class Chunk:
    """An immutable piece of extra context."""

    text: str
    filename: str
    project: str
    words: frozenset[str]
    lines: frozenset[str]
    tokens: int

    def to_extra(self) -> ExtraChunk:
        """As sent in ``input_extra``."""
        return ExtraChunk(self.filename, self.text)


@dataclass(frozen=True)
class RingState:
    """The ring's fill, queue and evictions, for the info text and :LlamaStatus."""

    chunks: int
    capacity: int
    queued: int
    evicted: int
    extra_tokens: int

    def describe(self) -> str:
        """Compact form for the info text."""
        return (
            f"ring {self.chunks}/{self.capacity}, queued {self.queued}, "
            f"evicted {self.evicted}, extra {self.extra_tokens} tok"
        )


class Ring:
    """Queue + ring of chunks, per the rules of llama.vim's ring buffer."""

    def __init__(
        self,
        capacity: int,
        *,
        count_tokens: Callable[[str], int],
        similarity: float = 0.9,
        local_overlap: float = 0.5,
    ) -> None:
        self.capacity = capacity
        self.similarity = similarity
        self.local_overlap = local_overlap
        self._count_tokens = count_tokens
        self._ring: list[Chunk] = []  # oldest first
        self._queue: deque[Chunk] = deque()
        self.evicted = 0
        self.last_extra_tokens = 0

    # -- gathering ------------------------------------------------------------

    @classmethod
    def from_config(cls, config: Config, count_tokens: Callable[[str], int]) -> Ring:
        """The ring the user's settings ask for (ring_n_chunks, ring_similarity)."""
        return cls(
            config.ring_n_chunks, count_tokens=count_tokens, similarity=config.ring_similarity
        )

    def offer(self, lines: Sequence[str], filename: str, project: str) -> bool:
        """Queue a chunk of text if it is worth holding; True if queued."""
        if self.capacity == 0 or len(lines) < MIN_LINES:
            return False
        text = "".join(f"{line}\n" for line in lines)
        if not text.strip():
            return False
        if any(c.text == text and c.project == project for c in (*self._ring, *self._queue)):
            return False
        words = words_of(text)
        # A newer near-copy replaces a queued one: the queue holds what to add next.
        for queued in list(self._queue):
            if queued.project == project and jaccard(queued.words, words) > self.similarity:
                self._queue.remove(queued)
        if len(self._queue) >= self.capacity:
            self._queue.popleft()
        # Tokens are counted on admission, in idle time: counting is not free.
        chunk = Chunk(text, filename, project, words, line_set(text), tokens=0)
        self._queue.append(chunk)
        return True

    @property
    def queued(self) -> int:
        """Chunks waiting to enter the ring."""
        return len(self._queue)

    def admit_one(self) -> Chunk | None:
        """Move the oldest queued chunk into the ring (called while the user is idle).

        A ring chunk the newcomer nearly duplicates leaves (the newer text wins);
        past capacity the oldest chunk is evicted from the front.
        """
        if not self._queue:
            return None
        chunk = self._queue.popleft()
        header = f"{chunk.filename}\n"
        chunk = dataclasses.replace(chunk, tokens=self._count_tokens(header + chunk.text) + 1)
        kept = [
            c
            for c in self._ring
            if c.project != chunk.project or jaccard(c.words, chunk.words) <= self.similarity
        ]
        self.evicted += len(self._ring) - len(kept)
        kept.append(chunk)
        while len(kept) > self.capacity:
            kept.pop(0)
            self.evicted += 1
        self._ring = kept
        return chunk

    # -- using ----------------------------------------------------------------

    def extra_for(
        self, project: str, budget_tokens: int, local_lines: frozenset[str] | None = None
    ) -> list[Chunk]:
        """The chunks to send for a request in ``project``, oldest first.

        While over the token budget, chunks go from the front, as the server
        would cut, but whole; then chunks the local context already covers are
        left out, without reordering the rest. In that order, the first chunk
        sent depends only on the ring, never on the cursor: leaving a chunk out
        costs the server nothing (``--cache-reuse`` skips it), but one that came
        back at the front would shift everything after it.
        """
        chunks = self._within(project, budget_tokens)
        if local_lines is not None:
            chunks = [c for c in chunks if covered_by(c.lines, local_lines) <= self.local_overlap]
        self.last_extra_tokens = sum(c.tokens for c in chunks)
        return chunks

    def tokens_within(self, project: str, budget_tokens: int) -> int:
        """The tokens of the chunks ``extra_for`` would send within ``budget_tokens`` at most."""
        return sum(c.tokens for c in self._within(project, budget_tokens))

    def _within(self, project: str, budget_tokens: int) -> list[Chunk]:
        """``project``'s chunks, oldest first, the oldest dropped until within the budget."""
        chunks = [c for c in self._ring if c.project == project]
        total = sum(c.tokens for c in chunks)
        start = 0
        while total > budget_tokens and start < len(chunks):
            total -= chunks[start].tokens
            start += 1
        return chunks[start:]

    def state(self, project: str | None = None) -> RingState:
        """Fill, queue and evictions (fill counted for ``project`` if given)."""
        held: Iterable[Chunk] = (
            self._ring if project is None else (c for c in self._ring if c.project == project)
        )
        return RingState(
            chunks=sum(1 for _ in held),
            capacity=self.capacity,
            queued=len(self._queue),
            evicted=self.evicted,
            extra_tokens=self.last_extra_tokens,
        )


def project_of(filename: str, cwd: str, exists: Callable[[str], bool] = os.path.exists) -> str:
    """The project a file belongs to: its git root, else the working directory."""
    if filename:
        directory = os.path.dirname(os.path.abspath(filename))
        while True:
            if exists(os.path.join(directory, ".git")):  # a file in worktrees
                return directory
            parent = os.path.dirname(directory)
            if parent == directory:
                break
            directory = parent
    return cwd


def relative_name(filename: str, project: str) -> str:
    """The chunk's file name as sent to the server: relative to its project."""
    if filename and project and filename.startswith(project.rstrip(os.sep) + os.sep):
        return filename[len(project.rstrip(os.sep)) + 1 :]
    return os.path.basename(filename) or "untitled"
