"""The debug log: what the plugin did and why, for bug reports. Off by default.

One JSON object per line in a file under Neovim's state directory. The API key
never appears in it: values are redacted before they are written.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

# Long texts (buffer contents, suggestions) are cut: the log is for behaviour.
_MAX_TEXT = 200
_MAX_BYTES = 8 << 20  # past this the log starts over rather than fill the disk


class DebugLog:
    """Appends events to ``path`` while enabled."""

    def __init__(self, path: str, *, secret: str = "", enabled: bool = False) -> None:
        self.path = path
        self.enabled = enabled
        self._secret = secret

    def _clean(self, value: Any) -> Any:
        if isinstance(value, bool | int | float) or value is None:
            return value
        if isinstance(value, dict):
            return {self._clean(str(k)): self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(v) for v in value[:20]]
        # Anything else is logged as text, so nothing can make the log raise.
        text = value if isinstance(value, str) else repr(value)
        if self._secret:
            text = text.replace(self._secret, "<redacted>")
        return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."

    def write(self, event: str, **fields: Any) -> None:
        """Record one event (no-op while disabled; never raises)."""
        if not self.enabled:
            return
        record = {"t": round(time.time(), 3), "event": event, **self._clean(fields)}
        try:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            full = os.path.exists(self.path) and os.path.getsize(self.path) > _MAX_BYTES
            mode = "w" if full else "a"
            with open(self.path, mode, encoding="utf-8") as out:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        except OSError:
            self.enabled = False  # an unwritable log must not break completion

    def clear(self) -> None:
        """Empty the log file."""
        try:
            with open(self.path, "w", encoding="utf-8"):
                pass
        except OSError:
            pass
