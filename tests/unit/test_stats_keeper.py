""":LlamaStats wiring: the shown / accepted events, the keeper, the plugin's routing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from llama_nvim.debuglog import DebugLog
from llama_nvim.messages import Accepted, Shown, parse_event
from llama_nvim.plugin import LlamaPlugin
from llama_nvim.stats_keeper import STATS_FILE, StatsKeeper
from tests.unit.engine_fixture import FakeServer, event, finish, make_engine, send

# -- the events ---------------------------------------------------------------------------------


def test_shown_and_accepted_events_parse_with_their_defaults() -> None:
    shown = parse_event("shown", {"filetype": "lua", "latency_ms": 120})
    assert shown == Shown(filetype="lua", latency_ms=120)
    assert parse_event("shown", {}) == Shown(filetype="", latency_ms=None)
    accepted = {"filetype": "python", "kind": "line", "chars": 7, "continued": True}
    assert parse_event("accepted", accepted) == Accepted("python", "line", 7, True)


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("shown", {"latency_ms": -1}),
        ("shown", {"latency_ms": "fast"}),
        ("accepted", {"kind": "all"}),
        ("accepted", {}),  # the kind is required
        ("accepted", {"kind": "word", "chars": 1.5}),
        ("accepted", {"kind": "word", "continued": 1}),
    ],
)
def test_malformed_stats_events_are_rejected(kind: str, payload: dict[str, Any]) -> None:
    reasons: list[str] = []
    assert parse_event(kind, payload, reasons.append) is None
    assert len(reasons) == 1


# -- the keeper ---------------------------------------------------------------------------------


def test_keeper_counts_events_and_flush_writes_numbers_only(tmp_path: Path) -> None:
    notes: list[str] = []
    keeper, problem = StatsKeeper.load(str(tmp_path), notes.append)
    assert problem is None
    keeper.record(Shown(filetype="python", latency_ms=250))
    keeper.record(Shown(filetype="python", latency_ms=None))
    keeper.record(Accepted("python", "line", 12))
    keeper.record(Accepted("python", "full", 30, continued=True))
    keeper.flush()
    data = json.loads((tmp_path / STATS_FILE).read_text())
    python = data["filetypes"]["python"]
    assert (python["shown"], python["accepted"], python["line"], python["full"]) == (2, 1, 1, 1)
    assert python["chars"] == 42
    assert python["latency_ms"] == [250], "a cached suggestion has no latency"
    assert notes == []


def test_keeper_reports_a_damaged_file_and_reset_says_so(tmp_path: Path) -> None:
    (tmp_path / STATS_FILE).write_text("{not json")
    keeper, problem = StatsKeeper.load(str(tmp_path), lambda text: None)
    assert problem is not None
    assert "starting afresh" in problem
    assert keeper.reset() == "llama.nvim: suggestion statistics reset"
    assert "no suggestion shown yet" in keeper.report()


def test_keeper_loop_flushes_on_its_timer(tmp_path: Path) -> None:
    async def main() -> None:
        keeper, _ = StatsKeeper.load(str(tmp_path), lambda text: None)
        keeper = StatsKeeper(keeper.stats, lambda text: None, interval_s=0.01)
        keeper.record(Shown(filetype="lua", latency_ms=5))
        task = asyncio.ensure_future(keeper.loop())
        for _ in range(500):
            if (tmp_path / STATS_FILE).exists():
                break
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(main())
    assert json.loads((tmp_path / STATS_FILE).read_text())["overall"]["shown"] == 1


# -- routing in the plugin ----------------------------------------------------------------------


def test_plugin_counts_stats_events_and_does_not_hand_them_to_the_engine(tmp_path: Path) -> None:
    async def main() -> tuple[int, str]:
        plugin = LlamaPlugin(nvim=None)  # Neovim is never called here
        engine, _ = make_engine(FakeServer(), log=DebugLog(str(tmp_path / "log")))
        plugin._engine = engine
        plugin._stats, _ = StatsKeeper.load(str(tmp_path), lambda text: None)
        plugin.on_event("shown", {"filetype": "go", "latency_ms": 80})
        plugin.on_event("accepted", {"filetype": "go", "kind": "word", "chars": 3})
        await finish(engine)
        return engine.counters.events, plugin._stats.report()

    events, report = asyncio.run(main())
    assert events == 0
    go = next(line for line in report.splitlines() if line.startswith("go "))
    assert go.split()[1:8] == ["1", "1", "100%", "0", "0", "1", "3"]


def test_a_cache_hit_is_drawn_as_cached_and_a_reply_is_not() -> None:
    async def main() -> list[bool]:
        engine, editor = make_engine(FakeServer())
        send(engine, "keystroke", event("x = "))
        await finish(engine)
        send(engine, "keystroke", event("x = ", tick=2))
        await finish(engine)
        return [plan.to_lua()["cached"] for plan in editor.shown]

    assert asyncio.run(main()) == [False, True]
