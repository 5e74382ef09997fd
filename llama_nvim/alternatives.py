"""Other suggestions for the same place, cycled with the next / previous keys."""

from __future__ import annotations

from collections.abc import Sequence

# Beyond this many, "next" goes round to the first instead of asking for more.
MAX_ALTERNATIVES = 5


def _same(a: Sequence[str], b: Sequence[str]) -> bool:
    """Equal but for trailing blanks: not worth showing as another suggestion."""
    return [line.rstrip() for line in a] == [line.rstrip() for line in b]


class Alternatives:
    """The suggestions seen at one editor position, and which one is shown."""

    def __init__(self, position: tuple[int, int, int, int], shown: Sequence[str]) -> None:
        self.position = position
        self.suggestions: list[list[str]] = [list(shown)]
        self.index = 0

    @property
    def shown(self) -> list[str]:
        """The suggestion on screen."""
        return self.suggestions[self.index]

    def step(self, direction: int) -> list[str] | None:
        """Move by one (``direction`` 1 or -1) and return the suggestion there.

        None means "next" went past the last one and a new one should be
        fetched; the index does not move until it is added.
        """
        target = self.index + (1 if direction > 0 else -1)
        if direction > 0 and target >= len(self.suggestions):
            if len(self.suggestions) < MAX_ALTERNATIVES:
                return None
            target = 0
        self.index = target % len(self.suggestions)
        return self.shown

    def add(self, lines: Sequence[str]) -> bool:
        """Append a fetched suggestion and show it; False if it repeats one already seen."""
        if any(_same(lines, seen) for seen in self.suggestions):
            return False
        self.suggestions.append(list(lines))
        self.index = len(self.suggestions) - 1
        return True

    def label(self) -> str:
        """Where the shown one stands, for the info text: "2/3"."""
        return f"{self.index + 1}/{len(self.suggestions)}"
