"""Which project the user is in, and where they last typed."""

from __future__ import annotations

from dataclasses import dataclass

from .context import LocalContext, Snapshot
from .ring import project_of

# Distinct (folder, cwd) pairs remembered before the cache starts over.
_MAX_REMEMBERED = 4096


@dataclass(frozen=True)
class Place:
    """Where the user last typed: priming sends what a request from there would."""

    project: str
    snapshot: Snapshot
    context: LocalContext


class Projects:
    """project_of() with a cache (it walks up the folders), plus the user's whereabouts."""

    def __init__(self) -> None:
        self.current = ""  # the project to prime for
        self.current_file = ""  # the file the user is in
        self.last_place: Place | None = None
        self._known: dict[str, str] = {}

    def project_for(self, filename: str, cwd: str) -> str:
        """The project of ``filename`` (its git root, else ``cwd``)."""
        directory = filename.rpartition("/")[0] if filename else ""
        key = f"{directory}\0{cwd}"
        project = self._known.get(key)
        if project is None:
            if len(self._known) > _MAX_REMEMBERED:
                self._known.clear()
            project = self._known[key] = project_of(filename, cwd)
        return project

    def enter(self, filename: str, cwd: str) -> str:
        """The user is now in ``filename``'s project; return it."""
        self.current_file = filename
        self.current = self.project_for(filename, cwd)
        return self.current

    def typed_here(self) -> bool:
        """True if the user last typed in the file they are in now."""
        last = self.last_place
        return last is not None and last.snapshot.filename == self.current_file
