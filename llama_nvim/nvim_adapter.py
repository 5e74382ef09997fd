"""Neovim edge: the Editor the engine draws on, over pynvim.

Every call here is an async notification: the engine runs in asyncio tasks,
where a blocking request to Neovim is not allowed, and nothing it does is worth
making the editor wait for.
"""

from __future__ import annotations

from typing import Any

from .messages import Notice
from .render import RenderPlan


class NvimEditor:
    """Implements engine.Editor by calling the Lua half (package 'llama_nvim')."""

    def __init__(self, nvim: Any) -> None:
        self._nvim = nvim

    def _lua(self, code: str, *args: Any) -> None:
        self._nvim.exec_lua(code, *args, async_=True)

    def show(self, plan: RenderPlan) -> None:
        """Draw a suggestion; Lua drops it if the cursor or text moved on."""
        self._lua("require('llama_nvim').show(...)", plan.to_lua())

    def notify(self, message: str, *, error: bool) -> None:
        """One message to the user."""
        notice = Notice(message, error)
        self._lua("require('llama_nvim').message(...)", notice.text, notice.error)
