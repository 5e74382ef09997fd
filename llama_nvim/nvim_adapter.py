"""Neovim edge: the Editor the engine draws on, over pynvim.

Every call here is an async notification: the engine runs in asyncio tasks,
where a blocking request to Neovim is not allowed, and nothing it does is worth
making the editor wait for.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .messages import Notice, RequestDone, RequestStarted
from .render import RenderPlan


class NvimEditor:
    """Implements engine.Editor by calling the Lua half (package 'llama_nvim')."""

    def __init__(self, nvim: Any) -> None:
        self._nvim = nvim
        # The end of a request that was answered, held back until the engine
        # has decided (in the same loop turn) whether to show the answer.
        self._answered: RequestDone | None = None

    def _lua(self, code: str, *args: Any) -> None:
        self._nvim.exec_lua(code, *args, async_=True)

    def show(self, plan: RenderPlan) -> None:
        """Draw a suggestion; Lua drops it if the cursor or text moved on."""
        done, self._answered = self._answered, None
        if done is None:
            self._lua("require('llama_nvim').show(...)", plan.to_lua())
        else:
            # One call: the state goes from waiting to shown, never idle in between.
            self._lua("require('llama_nvim').answer(...)", done.to_lua(), plan.to_lua())

    def notify(self, message: str, *, error: bool) -> None:
        """One message to the user."""
        notice = Notice(message, error)
        self._lua("require('llama_nvim').message(...)", notice.text, notice.error)

    def request_started(self, started: RequestStarted) -> None:
        """A request the user waits for was sent."""
        self._lua("require('llama_nvim').request_started(...)", started.to_lua())

    def request_done(self, done: RequestDone) -> None:
        """That request ended. An answer is sent with the suggestion shown from it, if any."""
        self._flush_answered()
        if done.status != "ok":
            self._lua("require('llama_nvim').request_done(...)", done.to_lua())
            return
        self._answered = done
        try:
            asyncio.get_running_loop().call_soon(self._flush_answered)
        except RuntimeError:  # no loop running: nothing can follow in this turn
            self._flush_answered()

    def _flush_answered(self) -> None:
        done, self._answered = self._answered, None
        if done is not None:
            self._lua("require('llama_nvim').request_done(...)", done.to_lua())
