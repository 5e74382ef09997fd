"""NvimEditor: the request announcements it sends to the Lua half, and in what calls."""

from __future__ import annotations

import asyncio
from typing import Any

from llama_nvim.context import Snapshot
from llama_nvim.messages import RequestDone, RequestStarted
from llama_nvim.nvim_adapter import NvimEditor
from llama_nvim.render import RenderPlan


class RecordingNvim:
    """Records the Lua calls; each is an async notification."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def exec_lua(self, code: str, *args: Any, async_: bool = False) -> None:
        assert async_, "the engine never waits on Neovim"
        self.calls.append((code, args))


def plan() -> RenderPlan:
    return RenderPlan(Snapshot(1, 2, 3, 4, (), "y = ", "", ()), ["x"], "", 0)


def functions(nvim: RecordingNvim) -> list[str]:
    return [code.split(").")[1].split("(")[0] for code, _ in nvim.calls]


def test_an_answer_shown_in_the_same_turn_goes_in_one_call_with_its_end() -> None:
    async def main() -> RecordingNvim:
        nvim = RecordingNvim()
        editor = NvimEditor(nvim)
        editor.request_started(RequestStarted(1))
        editor.request_done(RequestDone(1, "ok", 5, ""))
        editor.show(plan())
        await asyncio.sleep(0)  # one loop turn: nothing else is sent
        return nvim

    nvim = asyncio.run(main())
    assert functions(nvim) == ["request_started", "answer"]
    assert nvim.calls[1][1] == (RequestDone(1, "ok", 5, "").to_lua(), plan().to_lua())


def test_an_answer_not_shown_ends_its_request_after_the_turn() -> None:
    async def main() -> tuple[RecordingNvim, list[str]]:
        nvim = RecordingNvim()
        editor = NvimEditor(nvim)
        editor.request_done(RequestDone(1, "ok", 5, ""))
        during = functions(nvim)
        await asyncio.sleep(0)
        editor.show(plan())  # a later suggestion (from the cache) is shown on its own
        return nvim, during

    nvim, during = asyncio.run(main())
    assert during == []
    assert functions(nvim) == ["request_done", "show"]


def test_failed_and_cancelled_requests_end_at_once() -> None:
    nvim = RecordingNvim()
    editor = NvimEditor(nvim)
    editor.request_done(RequestDone(1, "cancelled", 5, ""))
    editor.request_done(RequestDone(2, "error", 5, "unreachable"))
    assert functions(nvim) == ["request_done", "request_done"]
