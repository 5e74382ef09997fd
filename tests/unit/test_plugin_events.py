"""LlamaPlugin.on_event: the RPC entry parses each event once and rejects what is not one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from llama_nvim.debuglog import DebugLog
from llama_nvim.plugin import LlamaPlugin
from tests.unit.engine_fixture import FakeServer, event, finish, make_engine


def plugin_with_engine(server: FakeServer, log: DebugLog) -> tuple[LlamaPlugin, Any]:
    plugin = LlamaPlugin(nvim=None)  # Neovim is never called here
    engine, _ = make_engine(server, log=log)
    plugin._engine = engine  # as _start would, without a Neovim to start in
    return plugin, engine


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("cancle", {}),  # an unknown kind is no cancel
        ("keystroke", {"row": "3"}),  # a malformed keystroke is no keystroke either
        ("cycle", {"step": "next"}),
    ],
)
def test_a_rejected_event_leaves_the_request_in_flight(
    tmp_path: Path, kind: str, payload: dict[str, Any]
) -> None:
    log_path = tmp_path / "llama_nvim.log"

    async def main() -> tuple[FakeServer, int]:
        server = FakeServer()
        server.gate = asyncio.Event()
        plugin, engine = plugin_with_engine(server, DebugLog(str(log_path), enabled=True))
        plugin.on_event("keystroke", event())
        await server.next_request()
        plugin.on_event(kind, payload)
        events = engine.counters.events
        server.gate.set()
        await finish(engine)
        return server, events

    server, events = asyncio.run(main())
    assert server.cancelled == 0
    assert events == 1
    rejected = [line for line in log_path.read_text().splitlines() if "rejected" in line]
    assert len(rejected) == 1
    assert repr(kind) in rejected[0]


def test_a_well_formed_cancel_still_cancels(tmp_path: Path) -> None:
    async def main() -> FakeServer:
        server = FakeServer()
        server.gate = asyncio.Event()
        plugin, engine = plugin_with_engine(server, DebugLog(str(tmp_path / "log")))
        plugin.on_event("keystroke", event())
        await server.next_request()
        plugin.on_event("cancel", {})
        server.gate.set()
        await finish(engine)
        return server

    assert asyncio.run(main()).cancelled == 1
