"""render: info text and the plan handed to the Lua side."""

from __future__ import annotations

import pytest

from llama_nvim.context import Snapshot
from llama_nvim.protocol import Completion, Timings
from llama_nvim.render import InfoFigures, RenderPlan, info_text

# -- info_text ----------------------------------------------------------------------------

COMPLETION = Completion(
    content="x",
    timings=Timings(prompt_n=12, prompt_ms=4.4, predicted_n=3, predicted_ms=20.6, cache_n=30),
    tokens_cached=42,
)


def test_info_text_reports_context_reuse_and_generation() -> None:
    assert info_text(InfoFigures(n_ctx=4096, completion=COMPLETION)) == (
        "llama: ctx 42/4096 | reused 30, computed 12 (4 ms) | generated 3 (21 ms)"
    )


def test_info_text_without_known_context_size() -> None:
    assert info_text(InfoFigures(completion=COMPLETION)).startswith("llama: ctx 42 | ")


def test_info_text_flags_truncated_context() -> None:
    truncated = Completion(content="x", truncated=True)
    assert info_text(InfoFigures(completion=truncated)).endswith(" | context truncated")


@pytest.mark.parametrize("stats", [InfoFigures(cached=True, completion=COMPLETION), InfoFigures()])
def test_info_text_for_a_cached_suggestion(stats: InfoFigures) -> None:
    assert info_text(stats) == "llama: cached"


def test_info_text_appends_ring_status() -> None:
    assert info_text(InfoFigures(cached=True, ring="ring 3/16")) == "llama: cached | ring 3/16"


# -- RenderPlan.to_lua ----------------------------------------------------------------------


def snapshot(vcol: int = 4, tabstop: int = 4) -> Snapshot:
    return Snapshot(
        buf=2,
        tick=17,
        row=9,
        col=6,
        above=(),
        before="\tif ",
        after=":",
        below=(),
        vcol=vcol,
        tabstop=tabstop,
    )


def test_to_lua_carries_anchor_literal_lines_and_screen_column() -> None:
    lines = ["x\t== 1", "\treturn\x1b", ""]
    plan = RenderPlan(snapshot(vcol=4, tabstop=4), lines, "llama: cached", show_info=2, cached=True)
    assert plan.to_lua() == {
        "buf": 2,
        "tick": 17,
        "row": 9,
        "col": 6,
        # literal: what Tab inserts; the Lua side decides how it looks
        "lines": ["x\t== 1", "\treturn\x1b", ""],
        "after": ":",
        "tabstop": 4,
        "vcol": 4,
        "info": "  llama: cached",
        "status": "llama: cached",
        "cached": True,  # no latency to count for :LlamaStats
        "growing": False,  # the whole answer, not the start of one still coming
    }


def test_to_lua_lines_are_a_copy() -> None:
    lines = ["a"]
    table = RenderPlan(snapshot(), lines, "", show_info=2).to_lua()
    table["lines"].append("b")
    assert lines == ["a"]


@pytest.mark.parametrize(
    ("show_info", "info", "status"),
    [(0, "", ""), (1, "", "llama: cached"), (2, "  llama: cached", "llama: cached")],
)
def test_info_shown_according_to_show_info(show_info: int, info: str, status: str) -> None:
    table = RenderPlan(snapshot(), ["a"], "llama: cached", show_info=show_info).to_lua()
    assert table["info"] == info
    assert table["status"] == status


def test_empty_info_text_is_not_padded() -> None:
    table = RenderPlan(snapshot(), ["a"], "", show_info=2).to_lua()
    assert table["info"] == ""
    assert table["status"] == ""
