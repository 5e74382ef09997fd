"""Files whose text never leaves the editor: not sent, not gathered into the ring."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from functools import lru_cache

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


class Privacy:
    """Decides whether a file's text may be sent to the server."""

    def __init__(
        self, extra_globs: Iterable[str] = (), extra_filetypes: Iterable[str] = ()
    ) -> None:
        self._globs = (*DEFAULT_EXCLUDE_GLOBS, *extra_globs)
        self._filetypes = frozenset(extra_filetypes)
        self.excluded = lru_cache(maxsize=1024)(self._excluded)

    def _excluded(self, filename: str, filetype: str = "") -> bool:
        if filetype and filetype in self._filetypes:
            return True
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
