"""The client-side suggestion cache: answers without asking the server.

Keys are built from the local context: digests of the prefix and suffix and
the prompt itself. Keeping the prompt in clear lets type-through look back over
what was typed with dictionary lookups only, no hashing per character.

Typing may also end lines: a suggestion whose first line was typed whole, then
Enter, still serves the next line if it starts with what the new line holds
(its indent, typically). The few newest answers are kept with their contexts
for that, compared as text.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from dataclasses import dataclass

from .context import LocalContext

# How far back type-through looks for a suggestion that what was typed since matches.
TYPE_THROUGH_CHARS = 128
# A reply is also stored as if the window started this many lines later, so it
# still matches when the top of the prefix window scrolls away.
_SCROLL_KEYS = 3
# How many of the newest answers type-through checks across line ends, and
# across how many line ends at most.
_ACROSS_LINES_ANSWERS = 8
_ACROSS_LINES_ENDED = 8

Key = tuple[bytes, str, bytes]


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _drop_lines(prefix: str, count: int) -> str | None:
    start = 0
    for _ in range(count):
        newline = prefix.find("\n", start)
        if newline < 0:
            return None
        start = newline + 1
    return prefix[start:]


def _worth_showing(rest: list[str]) -> bool:
    """What is left of a suggestion once typed through: more than blanks."""
    return bool("".join(rest).strip())


def typed_since(requested: LocalContext, now: LocalContext) -> str | None:
    """The text typed between ``requested`` and ``now``, if typing is all that happened.

    Typing may end lines: ``now``'s prefix then holds the requested cursor
    line, and its top may have lost as many lines as typing added (the prefix
    window has a fixed height). The text right of the cursor must be the same.
    None if anything else changed, or more than TYPE_THROUGH_CHARS were typed.
    """
    if now.suffix != requested.suffix:
        return None
    if now.prefix == requested.prefix:
        grown = len(now.prompt) - len(requested.prompt)
        if 0 <= grown <= TYPE_THROUGH_CHARS and now.prompt.startswith(requested.prompt):
            return now.prompt[len(requested.prompt) :]
        return None
    for dropped in range(_ACROSS_LINES_ENDED + 1):
        kept = _drop_lines(requested.prefix, dropped)
        if kept is None:
            return None
        if not now.prefix.startswith(kept):
            continue
        ended = now.prefix[len(kept) :]  # the requested cursor line on, each line ended
        if not ended.startswith(requested.prompt):
            return None
        typed = ended[len(requested.prompt) :] + now.prompt
        if len(typed) > TYPE_THROUGH_CHARS or typed.count("\n") < max(dropped, 1):
            return None
        return typed
    return None


def may_serve(requested: LocalContext, now: LocalContext) -> bool:
    """Whether an answer for ``requested`` may still serve ``now``, by type-through.

    True when only typing happened since, by at most TYPE_THROUGH_CHARS, the
    text right of the cursor unchanged: ``get`` then finds the answer if it
    starts with what was typed.
    """
    return typed_since(requested, now) is not None


@dataclass(frozen=True)
class Hit:
    """A cached suggestion, already shortened by what was typed through."""

    lines: list[str]
    typed: int  # characters of the cached suggestion typed since it was made


class SuggestionCache:
    """LRU map from local context to suggestion lines."""

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self._entries: OrderedDict[Key, list[str]] = OrderedDict()
        self._newest: deque[tuple[LocalContext, list[str]]] = deque(maxlen=_ACROSS_LINES_ANSWERS)

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def keys_for(context: LocalContext) -> tuple[bytes, bytes]:
        """The prefix and suffix digests, computed once per keystroke."""
        return _digest(context.prefix), _digest(context.suffix)

    def put(self, context: LocalContext, lines: list[str]) -> None:
        """Remember a suggestion for this context (and for the scrolled windows)."""
        if self.max_keys == 0:
            return
        prefix, suffix = self.keys_for(context)
        self._store((prefix, context.prompt, suffix), lines)
        self._newest.append((context, lines))
        for count in range(1, _SCROLL_KEYS + 1):
            shorter = _drop_lines(context.prefix, count)
            if shorter is None:
                break
            self._store((_digest(shorter), context.prompt, suffix), lines)

    def _store(self, key: Key, lines: list[str]) -> None:
        self._entries[key] = lines
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)

    def get(self, context: LocalContext) -> Hit | None:
        """The suggestion for this exact context, or one typed partly through.

        Looks back over up to TYPE_THROUGH_CHARS of the prompt for an entry whose
        first line starts with what was typed since; returns the rest of it.
        The same suffix digest means the text right of the cursor is unchanged.
        Then, for typing that ended lines, the newest answers (``across_lines``).
        This serves answers not on screen; the hint on screen is followed by
        the Lua half alone (hint.lua's follow_typing), without a message. The
        two never judge the same suggestion, so no parity test ties them.
        """
        if not self._entries:
            return None
        prefix, suffix = self.keys_for(context)
        prompt = context.prompt
        for typed in range(min(TYPE_THROUGH_CHARS, len(prompt)) + 1):
            key = (prefix, prompt[: len(prompt) - typed], suffix)
            lines = self._entries.get(key)
            if lines is None:
                continue
            tail = prompt[len(prompt) - typed :]
            if not lines[0].startswith(tail):
                continue
            rest = [lines[0][typed:], *lines[1:]]
            if not _worth_showing(rest):
                continue
            self._entries.move_to_end(key)
            return Hit(rest, typed)
        return self.across_lines(context)

    def across_lines(self, context: LocalContext) -> Hit | None:
        """A newest answer whose first line was typed whole, then more lines begun."""
        for requested, lines in reversed(self._newest):
            typed = typed_since(requested, context)
            if typed is None or "\n" not in typed:
                continue
            text = "\n".join(lines)
            if not text.startswith(typed):
                continue
            rest = text[len(typed) :].split("\n")
            if _worth_showing(rest):
                return Hit(rest, len(typed))
        return None
