"""Files whose text never leaves the editor: not sent, not gathered into the ring."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Collection, Iterable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING

from .llamaignore import LlamaIgnore

if TYPE_CHECKING:
    from .config import Config

# Secrets that commonly sit in a project tree or a home directory.
DEFAULT_EXCLUDE_GLOBS = (
    ".env",
    ".env.*",
    "*.env",
    "*.pem",
    "*.key",
    "id_rsa*",
    "id_ed25519*",
    "id_ecdsa*",
    "id_dsa*",
    "*.p12",
    "*.pfx",
    ".netrc",
    ".git-credentials",
    ".pgpass",
    "*.kdbx",
)
# Folders whose every file is private.
DEFAULT_EXCLUDE_DIRS = (".ssh", ".gnupg", ".aws", ".password-store")


def filetype_enabled(
    filetype: str,
    filetypes: Mapping[str, bool],
    disabled_filetypes: Collection[str] = (),
    buffer_enabled: bool | None = None,
) -> bool:
    """Whether suggestions may run in a buffer of this filetype.

    ``disabled_filetypes`` always wins; then the buffer's own switch
    (``b:llama_enabled``) when set; then the filetype's entry in
    ``filetypes``; then its ``"*"`` entry; enabled when none applies.
    Secret files are decided apart (Privacy), and nothing overrides them.
    """
    if filetype and filetype in disabled_filetypes:
        return False
    if buffer_enabled is not None:
        return buffer_enabled
    if filetype in filetypes:
        return filetypes[filetype]
    return filetypes.get("*", True)


def may_read(
    filename: str,
    filetype: str,
    *,
    project: str,
    privacy: Privacy,
    buffer_enabled: bool | None = None,
) -> bool:
    """May this buffer's text be read and sent: the one answer for the engine and Lua."""
    if privacy.secret(filename, project):
        return False
    return privacy.filetype_enabled(filetype, buffer_enabled)


class Privacy:
    """Decides whether a file's text may be sent to the server."""

    def __init__(
        self,
        extra_globs: Iterable[str] = (),
        extra_filetypes: Iterable[str] = (),
        *,
        filetypes: Mapping[str, bool] | None = None,
        llamaignore: LlamaIgnore | None = None,
    ) -> None:
        self._globs = (*DEFAULT_EXCLUDE_GLOBS, *extra_globs)
        self._filetypes = frozenset(extra_filetypes)
        self._filetype_rules = dict(filetypes or {})
        self.llamaignore = llamaignore
        self._secret_name = lru_cache(maxsize=1024)(self._secret_name_uncached)

    @classmethod
    def from_config(cls, config: Config) -> Privacy:
        """Every rule the config sets, with the projects' .llamaignore files."""
        return cls(
            config.exclude_globs,
            config.disabled_filetypes,
            filetypes=config.filetypes,
            llamaignore=LlamaIgnore(),
        )

    def filetype_enabled(self, filetype: str, buffer_enabled: bool | None = None) -> bool:
        """``filetype_enabled`` with this config's tables."""
        return filetype_enabled(filetype, self._filetype_rules, self._filetypes, buffer_enabled)

    def secret(self, filename: str, project: str = "") -> bool:
        """A secret file: built-in list, exclude_globs, or the project's .llamaignore."""
        if self._secret_name(filename):
            return True
        return bool(self.llamaignore and project and self.llamaignore.ignored(filename, project))

    def excluded(
        self,
        filename: str,
        filetype: str = "",
        project: str = "",
        buffer_enabled: bool | None = None,
    ) -> bool:
        """Nothing of this file may be sent or gathered (see ``may_read``)."""
        return not may_read(
            filename, filetype, project=project, privacy=self, buffer_enabled=buffer_enabled
        )

    def take_problems(self) -> list[str]:
        """Messages about rules that could not be read (an unreadable .llamaignore), once each."""
        return self.llamaignore.take_problems() if self.llamaignore else []

    def _secret_name_uncached(self, filename: str) -> bool:
        if not filename:
            return False
        path = os.path.normpath(filename)
        base = os.path.basename(path)
        parts = path.split(os.sep)
        if any(part in DEFAULT_EXCLUDE_DIRS for part in parts[:-1]):
            return True
        for pattern in self._globs:
            if "/" not in pattern:
                # A bare pattern names files: it matches the file name.
                if fnmatch.fnmatchcase(base, pattern):
                    return True
            elif fnmatch.fnmatchcase(path, pattern):
                return True
            elif not pattern.startswith(("/", "*")) and fnmatch.fnmatchcase(path, "*/" + pattern):
                # Relative like a .gitignore line ("secrets/*"): buffer names are
                # absolute, so it matches that folder wherever it sits.
                return True
        return False
