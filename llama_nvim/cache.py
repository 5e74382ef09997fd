"""The client-side suggestion cache: answers without asking the server.

Keys are built from the local context: digests of the prefix and suffix and
the prompt itself. Keeping the prompt in clear lets type-through look back over
what was typed with dictionary lookups only, no hashing per character.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from .context import LocalContext

# How far back type-through looks for a suggestion that what was typed since matches.
TYPE_THROUGH_CHARS = 128
# A reply is also stored as if the window started this many lines later, so it
# still matches when the top of the prefix window scrolls away.
_SCROLL_KEYS = 3

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


def may_serve(requested: LocalContext, now: LocalContext) -> bool:
    """Whether an answer for ``requested`` may still serve ``now``, by type-through.

    True when only the text left of the cursor grew, by at most
    TYPE_THROUGH_CHARS, on the same lines: ``get`` then finds the answer if it
    starts with what was typed.
    """
    typed = len(now.prompt) - len(requested.prompt)
    return (
        0 <= typed <= TYPE_THROUGH_CHARS
        and now.prompt.startswith(requested.prompt)
        and now.suffix == requested.suffix
        and now.prefix == requested.prefix
    )


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
            if not "".join(rest).strip():
                continue
            self._entries.move_to_end(key)
            return Hit(rest, typed)
        return None
