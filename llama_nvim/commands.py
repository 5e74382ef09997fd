"""The bodies of the commands that do more than flip a switch; plugin.py registers them."""

from __future__ import annotations

from typing import Any

from .config import parse_config
from .engine import Engine
from .health import (
    check,
    check_inst,
    check_inst_now,
    check_now,
    config_items,
    inst_items,
    inst_report,
    report,
    server_items,
)
from .instruct import Instructions


async def report_status(nvim: Any, engine: Engine, instructions: Instructions | None) -> None:
    """:LlamaStatus: endpoint, server health, model, n_ctx, FIM support, counters, pacing.

    Then instruction editing's endpoint, whether it answers, model and pending instructions.
    """
    lines = await _status_lines(engine)
    if instructions is not None:
        client = instructions.client
        lines += inst_report(
            await check_inst(client),
            endpoint=client.endpoint,
            model=instructions.model,
            pending=len(instructions.pending),
        )
    nvim.exec_lua("vim.api.nvim_echo({{table.concat(..., '\\n')}}, true, {})", lines, async_=True)


async def _status_lines(engine: Engine) -> list[str]:
    health = await check(engine.client)
    if health.props is not None and health.props.n_ctx:
        engine.n_ctx = health.props.n_ctx
        engine.builder.id_slot = engine.slots.learned(health.props.total_slots)
    lines = report(
        health,
        endpoint=engine.client.endpoint,
        enabled=engine.enabled,
        auto_fim=engine.auto_fim,
        counters=engine.counters.as_dict(),
        last_problem=engine.sender.last_problem,
        ring=engine.ring.state().describe(),
        cache=len(engine.cache),
        tokens=engine.tokens.problem or "cl100k (offline)",
        # Slots are llama-server's: Ollama has none to lease.
        slot=engine.slots.describe() if engine.client.wire.llama_server else "",
    )
    return lines + engine.sender.pacer.describe(engine.config)


def toggle_buffer(nvim: Any, engine: Engine) -> tuple[str, bool]:
    """:LlamaBufToggle: flip b:llama_enabled of the current buffer; the message and if an error."""
    buffer = nvim.current.buffer
    filetype = nvim.api.get_option_value("filetype", {"buf": buffer.number})
    setting = buffer.vars.get("llama_enabled")
    # As the Lua half reads it: a boolean, or 1 / 0 from Vimscript; else unset.
    current = bool(setting) if isinstance(setting, bool | int) else None
    privacy = engine.privacy
    wanted = not privacy.filetype_enabled(filetype, current)
    buffer.vars["llama_enabled"] = wanted
    if not wanted:
        engine.scheduler.supersede()
        nvim.exec_lua("require('llama_nvim').dismiss()", async_=True)
    if privacy.filetype_enabled(filetype, wanted) == wanted:
        return f"llama.nvim: suggestions {'on' if wanted else 'off'} in this buffer", False
    return (
        f"llama.nvim: suggestions stay off in this buffer: filetype {filetype!r} "
        "is in g:llama_config.disabled_filetypes",
        True,
    )


def health_items(llama_config: Any) -> list[list[str]]:
    """:checkhealth llama_nvim's server and config sections, as (kind, text) pairs."""
    config, problems = parse_config(llama_config)
    items = server_items(check_now(config), config.endpoint) + config_items(config, problems)
    items += inst_items(check_inst_now(config), config)
    return [list(item) for item in items]
