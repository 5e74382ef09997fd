"""What a start or :LlamaReload builds from the config: client, engine, the Lua half's set-up.

Imported only once the plugin starts: it needs httpx, and :UpdateRemotePlugins
imports plugin.py, which must stay cheap.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from typing import Any

from .backends import Wire
from .chat_client import ChatClient
from .client import InfillClient, server_root
from .config import KEYMAP_OPTIONS, Config, Problem
from .debuglog import DebugLog
from .engine import Engine
from .instruct import Instructions, NvimInstructView
from .nvim_adapter import NvimEditor
from .protocol import ExtraChunk
from .request_builder import RequestShaping, shaping_for
from .ring import chunk_lines
from .slot_lease import SlotLease, lease_dir
from .stats_keeper import StatsKeeper


def lua_options(config: Config, enabled: bool) -> dict[str, Any]:
    """The subset of the config the Lua half needs on the keystroke path.

    ``enabled``: the switch to start with (the Lua half owns it from then on).
    """
    options: dict[str, Any] = {key: getattr(config, key) for key in KEYMAP_OPTIONS}
    options["keymap_defaults"] = {key: getattr(Config(), key) for key in KEYMAP_OPTIONS}
    options.update(
        enabled=enabled,
        keymap_debug_toggle=config.keymap_debug_toggle,
        n_prefix=config.n_prefix,
        n_suffix=config.n_suffix,
        max_prefix_bytes=config.max_prefix_bytes,
        max_suffix_bytes=config.max_suffix_bytes,
        max_line_bytes=config.max_line_bytes,
        ring_n_chunks=config.ring_n_chunks,
        ring_chunk_lines=chunk_lines(config.ring_chunk_size),
        ring_scope=config.ring_scope,
        hide_during_completion=config.hide_during_completion,
        inst=inst_options(config),
    )
    return options


def inst_options(config: Config) -> dict[str, Any]:
    """What the Lua half of instruction editing needs (lua/llama_nvim/instruct.lua)."""
    return {
        "endpoint": config.endpoint_inst,
        "model": config.model_inst,
        "n_prefix": config.n_prefix,
        "n_suffix": config.n_suffix,
        "keymap_trigger": config.keymap_inst_trigger,
        "keymap_accept": config.keymap_inst_accept,
        "keymap_cancel": config.keymap_inst_cancel,
        "keymap_rerun": config.keymap_inst_rerun,
        "keymap_continue": config.keymap_inst_continue,
        "keymap_defaults": {
            f"keymap_{key}": getattr(Config(), f"keymap_inst_{key}")
            for key in ("trigger", "accept", "cancel", "rerun", "continue")
        },
    }


def _client(config: Config, messages: list[str]) -> InfillClient:
    wire = Wire.from_config(config)
    messages += [f"llama.nvim: {text}" for text in wire.problems(config)]
    try:
        return InfillClient(
            config.endpoint,
            api_key=config.api_key,
            timeout_s=config.timeout_ms / 1000,
            ca_bundle=config.ca_bundle,
            wire=wire,
        )
    except (OSError, ssl.SSLError) as err:
        messages.append(
            f"llama.nvim: g:llama_config.ca_bundle cannot be used ({err}); "
            "using the system's certificates"
        )
        return InfillClient(
            config.endpoint, api_key=config.api_key, timeout_s=config.timeout_ms / 1000, wire=wire
        )


def build_engine(
    editor: NvimEditor,
    config: Config,
    problems: list[Problem],
    *,
    state_dir: str,
    shaping: RequestShaping | None,
) -> tuple[Engine, list[str]]:
    """The engine for ``config``, not started; the messages to show."""
    messages = [f"llama.nvim: {p.message}" for p in problems]
    client = _client(config, messages)
    log = DebugLog(
        os.path.join(state_dir, "llama_nvim.log"), secret=config.api_key, enabled=config.debug_log
    )
    # Leases are shared by every Neovim of this user (one state directory).
    lease = SlotLease(lease_dir(state_dir, server_root(config.endpoint))) if state_dir else None
    # The cache layout and priming are for /infill; other kinds get plain requests.
    shaping = shaping or shaping_for(client.wire)
    return Engine(config, editor, client, log=log, shaping=shaping, lease=lease), messages


def build_instructions(nvim: Any, config: Config, engine: Engine, state_dir: str) -> Instructions:
    """Instruction editing for ``config``: its own client, the engine's ring for extra context."""
    client = ChatClient(
        config.endpoint_inst,
        api_key=config.api_key,
        timeout_s=config.timeout_ms / 1000,
        ca_bundle=config.ca_bundle,
    )
    # The same lease folder as the engine's when both talk to one server, so
    # an instruction never takes the slot this or another editor leased.
    directory = lease_dir(state_dir, client.root) if state_dir else ""

    def lease() -> SlotLease | None:
        return SlotLease(directory) if directory else None

    def extra(filename: str, cwd: str) -> list[ExtraChunk]:
        return engine.builder.extra(engine.projects.project_for(filename, cwd), None)

    def secret(filename: str, cwd: str) -> bool:
        return engine.privacy.secret(filename, engine.projects.project_for(filename, cwd))

    view = NvimInstructView(nvim)
    return Instructions(
        client,
        view,
        model=config.model_inst,
        extra=extra,
        lease=lease,
        secret=secret,
        log=engine.log,
    )


def set_up_lua(nvim: Any, config: Config, enabled: bool) -> list[str]:
    """The Lua half's options and keys for ``config``; the messages to show.

    Call it once the engine that gets the Lua half's events is in place: the
    Lua half answers with its 'enabled' event, the engine's only switch.
    """
    problems = nvim.exec_lua(
        "return require('llama_nvim').setup(...)", nvim.channel_id, lua_options(config, enabled)
    )
    return [f"llama.nvim: {text}" for text in problems or []]


def load_stats(
    nvim: Any, state_dir: str, message: Callable[..., None]
) -> tuple[StatsKeeper, list[str]]:
    """The acceptance statistics kept in ``state_dir``, written at exit too; messages to show."""
    keeper, problem = StatsKeeper.load(state_dir, lambda text: message(text, error=True))
    # A request Neovim waits for at exit: only this host's channel may be asked.
    nvim.exec_lua("require('llama_nvim.stats').flush_at_exit(...)", nvim.channel_id)
    return keeper, [problem] if problem else []
