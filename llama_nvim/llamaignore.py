""".llamaignore: a project's own list of files never sent, in .gitignore syntax.

Read from the project root only (the root ``ring.project_of`` finds); its
patterns are relative to that root. The supported syntax is .gitignore's:
comments, blank lines, ``!`` negation, a trailing ``/`` for folders, ``**``,
``/``-anchored patterns, ``*``, ``?``, ``[...]`` and backslash escapes.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

IGNORE_FILE = ".llamaignore"

# A .llamaignore this large is surely not hand-written; reading more would
# only slow every keystroke's check.
MAX_IGNORE_BYTES = 256 * 1024


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    negated: bool
    folders_only: bool
    # No "/" but a trailing one: matches a name at any depth, not a path.
    any_depth: bool


def _class_to_regex(pattern: str, start: int) -> tuple[str, int] | None:
    """A ``[...]`` bracket expression at ``start``: its regex and the index after it."""
    i = start + 1
    negate = i < len(pattern) and pattern[i] in "!^"
    if negate:
        i += 1
    body = ""
    first = True
    while i < len(pattern) and (pattern[i] != "]" or first):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            i += 1
            char = pattern[i]
        body += "\\" + char if char in "\\^[]" else char
        first = False
        i += 1
    if i >= len(pattern):
        return None
    # A bracket expression never matches the folder separator.
    return ("[^/" if negate else "(?!/)[") + body + "]", i + 1


def _glob_to_regex(pattern: str) -> str:
    """The regex for one pattern, matched against a whole relative path."""
    out = ""
    i = 0
    n = len(pattern)
    while i < n:
        char = pattern[i]
        if pattern.startswith("**", i):
            at_start = i == 0 or pattern[i - 1] == "/"
            at_end = i + 2 == n or pattern[i + 2] == "/"
            if at_start and at_end:
                if i + 2 == n:
                    out += ".*"  # "x/**": everything inside x; "**": everything
                    i += 2
                else:
                    out += "(?:.*/)?"  # "**/": zero or more folders
                    i += 3
                continue
            out += "[^/]*"  # other runs of asterisks are a plain "*"
            i += 2
            while i < n and pattern[i] == "*":
                i += 1
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            bracket = _class_to_regex(pattern, i)
            if bracket is None:
                return "(?!)"  # as in git, an unclosed "[" matches nothing
            out += bracket[0]
            i = bracket[1]
            continue
        elif char == "\\" and i + 1 < n:
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(char)
        i += 1
    return out


def _strip_trailing_spaces(line: str) -> str:
    """Trailing spaces are dropped unless escaped with a backslash."""
    end = len(line)
    while end > 0 and line[end - 1] == " ":
        backslashes = len(line[: end - 1]) - len(line[: end - 1].rstrip("\\"))
        if backslashes % 2 == 1:
            break
        end -= 1
    return line[:end]


def _parse_line(line: str) -> _Rule | None:
    line = _strip_trailing_spaces(line.rstrip("\r"))
    if not line or line.startswith("#"):
        return None
    negated = line.startswith("!")
    if negated:
        line = line[1:]
    folders_only = line.endswith("/") and not line.endswith("\\/")
    if folders_only:
        line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line
    line = line.lstrip("/")
    if not line:
        return None
    regex = re.compile(_glob_to_regex(line), re.DOTALL)
    return _Rule(regex, negated, folders_only, any_depth=not anchored)


class IgnoreRules:
    """The parsed patterns of one .llamaignore."""

    def __init__(self, text: str) -> None:
        self._rules = [rule for line in text.split("\n") if (rule := _parse_line(line))]
        self._answers: dict[str, bool] = {}

    def __len__(self) -> int:
        return len(self._rules)

    def _decide(self, path: str, is_folder: bool) -> bool:
        """The last pattern that matches decides (a ``!`` one re-includes)."""
        name = path.rpartition("/")[2]
        ignored = False
        for rule in self._rules:
            if rule.folders_only and not is_folder:
                continue
            subject = name if rule.any_depth else path
            if rule.regex.fullmatch(subject):
                ignored = not rule.negated
        return ignored

    def ignored(self, relative_path: str) -> bool:
        """Whether a file, given relative to the root with "/" separators, is ignored.

        As in git, a file inside an ignored folder stays ignored whatever a
        later ``!`` pattern says about the file itself.
        """
        answer = self._answers.get(relative_path)
        if answer is None:
            parts = [p for p in relative_path.split("/") if p]
            answer = bool(parts) and (
                any(self._decide("/".join(parts[:i]), True) for i in range(1, len(parts)))
                or self._decide("/".join(parts), False)
            )
            if len(self._answers) >= 4096:
                self._answers.clear()
            self._answers[relative_path] = answer
        return answer


@dataclass(frozen=True)
class _Cached:
    signature: tuple[int, int]  # (mtime_ns, size): an edited file is read again
    rules: IgnoreRules | None  # None: the file exists but cannot be read


class LlamaIgnore:
    """Answers "is this file in its project's .llamaignore?", reading each root's
    file once per change (checked by its mtime and size on every question)."""

    def __init__(
        self,
        stat: Callable[[str], os.stat_result] = os.stat,
        read: Callable[[str], bytes] | None = None,
        max_roots: int = 64,
    ) -> None:
        self._stat = stat
        self._read = read or _read_head
        self._max_roots = max_roots
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._reported: set[tuple[str, tuple[int, int]]] = set()
        self._problems: list[str] = []

    def ignored(self, filename: str, root: str) -> bool:
        """Whether ``filename`` (absolute) is ignored by ``root``'s .llamaignore.

        A file outside ``root`` is not. A .llamaignore that exists but cannot
        be read hides its whole project: it was written to keep files private.
        """
        if not filename or not root:
            return False
        root = os.path.normpath(root)
        path = os.path.normpath(filename)
        if not path.startswith(root.rstrip(os.sep) + os.sep):
            return False
        rules = self._rules_of(root)
        if rules is None:
            return True
        relative = path[len(root.rstrip(os.sep)) + 1 :].replace(os.sep, "/")
        return rules.ignored(relative)

    def take_problems(self) -> list[str]:
        """Messages about unreadable .llamaignore files, each given once."""
        problems, self._problems = self._problems, []
        return problems

    def _rules_of(self, root: str) -> IgnoreRules | None:
        path = os.path.join(root, IGNORE_FILE)
        try:
            info = self._stat(path)
        except FileNotFoundError:
            self._cache.pop(root, None)
            return IgnoreRules("")
        except OSError as err:
            self._unreadable(root, path, (0, 0), err)
            return None
        signature = (info.st_mtime_ns, info.st_size)
        cached = self._cache.get(root)
        if cached is not None and cached.signature == signature:
            self._cache.move_to_end(root)
            return cached.rules
        try:
            text = self._read(path).decode("utf-8", errors="replace")
        except OSError as err:
            self._unreadable(root, path, signature, err)
            return None
        rules = IgnoreRules(text)
        self._remember(root, _Cached(signature, rules))
        return rules

    def _unreadable(self, root: str, path: str, signature: tuple[int, int], err: OSError) -> None:
        problem = f"{path} cannot be read ({err.strerror or err}); nothing of that project is sent"
        self._remember(root, _Cached(signature, None))
        if (root, signature) not in self._reported:
            self._reported.add((root, signature))
            self._problems.append(problem)

    def _remember(self, root: str, entry: _Cached) -> None:
        self._cache[root] = entry
        self._cache.move_to_end(root)
        while len(self._cache) > self._max_roots:
            self._cache.popitem(last=False)


def _read_head(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read(MAX_IGNORE_BYTES)
