"""render: display text, info text and the plan handed to the Lua side."""

from __future__ import annotations

import pytest

from llama_nvim.context import Snapshot
from llama_nvim.protocol import Completion, Timings
from llama_nvim.render import HL_HINT, HL_INFO, RenderPlan, Stats, display_text, info_text

# -- display_text ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "tabstop", "expected"),
    [
        ("\tx", 0, 8, "        x"),
        ("\tx", 3, 8, "     x"),
        ("\tx", 7, 8, " x"),
        ("\tx", 8, 8, "        x"),
        ("\tx", 10, 4, "  x"),
        ("a\tb", 0, 4, "a   b"),
        ("ab\t\tc", 1, 4, "ab " + "    " + "c"),
        ("\t", 0, 1, " "),
    ],
)
def test_tabs_expand_relative_to_the_start_column(
    text: str, start: int, tabstop: int, expected: str
) -> None:
    assert display_text(text, start, tabstop) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\x1b[31mred", "^[[31mred"),
        ("a\x00b", "a^@b"),
        ("\x07", "^G"),
        ("\x08", "^H"),
        ("\x0d", "^M"),
        ("\x1f", "^_"),
        ("\x7f", "^?"),
        ("\x85", "<85>"),
        ("\x9b2J", "<9b>2J"),
    ],
)
def test_control_characters_are_shown_in_caret_notation(text: str, expected: str) -> None:
    assert display_text(text, 0, 8) == expected


def test_no_control_character_reaches_the_screen() -> None:
    every_control = "".join(chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)])
    shown = display_text(every_control.replace("\t", ""), 0, 8)
    assert all(0x20 <= ord(ch) < 0x7F for ch in shown)


def test_caret_notation_counts_two_columns_for_following_tabs() -> None:
    assert display_text("\x1b\tx", 0, 8) == "^[" + " " * 6 + "x"
    assert display_text("\x85\tx", 0, 8) == "<85>" + " " * 4 + "x"


def test_printable_text_is_unchanged() -> None:
    text = 'fn main() { println!("héllo → 世界"); }'
    assert display_text(text, 5, 8) == text


def test_tab_after_wide_characters_reaches_the_next_tab_stop() -> None:
    # "日本" fills screen cells 0-3 in Neovim, so the tab fills cells 4-7: four spaces,
    # and "x" sits at the tab stop (cell 8), where it lands once the line is accepted.
    assert display_text("日本\tx", 0, 8) == "日本" + " " * 4 + "x"


# -- info_text ----------------------------------------------------------------------------

COMPLETION = Completion(
    content="x",
    timings=Timings(prompt_n=12, prompt_ms=4.4, predicted_n=3, predicted_ms=20.6, cache_n=30),
    tokens_cached=42,
)


def test_info_text_reports_context_reuse_and_generation() -> None:
    assert info_text(Stats(n_ctx=4096, completion=COMPLETION)) == (
        "llama: ctx 42/4096 | reused 30, computed 12 (4 ms) | generated 3 (21 ms)"
    )


def test_info_text_without_known_context_size() -> None:
    assert info_text(Stats(completion=COMPLETION)).startswith("llama: ctx 42 | ")


def test_info_text_flags_truncated_context() -> None:
    truncated = Completion(content="x", truncated=True)
    assert info_text(Stats(completion=truncated)).endswith(" | context truncated")


@pytest.mark.parametrize("stats", [Stats(cached=True, completion=COMPLETION), Stats()])
def test_info_text_for_a_cached_suggestion(stats: Stats) -> None:
    assert info_text(stats) == "llama: cached"


def test_info_text_appends_ring_status() -> None:
    assert info_text(Stats(cached=True, ring="ring 3/16")) == "llama: cached | ring 3/16"


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


def test_to_lua_carries_anchor_literal_lines_and_display_text() -> None:
    lines = ["x\t== 1", "\treturn\x1b", ""]
    plan = RenderPlan(snapshot(vcol=4, tabstop=4), lines, "llama: cached", show_info=2)
    assert plan.to_lua() == {
        "buf": 2,
        "tick": 17,
        "row": 9,
        "col": 6,
        "lines": ["x\t== 1", "\treturn\x1b", ""],
        "after": ":",
        "tabstop": 4,
        # the first line starts at the cursor's screen column 4: "x" then a tab to column 8
        "inline": "x   == 1",
        # the other lines start at column 0
        "virt_lines": [[["    return^[", HL_HINT]], [["", HL_HINT]]],
        "info": "  llama: cached",
        "status": "llama: cached",
        "hl_hint": HL_HINT,
        "hl_info": HL_INFO,
    }


def test_to_lua_lines_are_a_copy() -> None:
    lines = ["a"]
    table = RenderPlan(snapshot(), lines, "", show_info=2).to_lua()
    table["lines"].append("b")
    assert lines == ["a"]


def test_to_lua_single_line_has_no_virt_lines() -> None:
    table = RenderPlan(snapshot(), ["abc"], "i", show_info=2).to_lua()
    assert table["inline"] == "abc"
    assert table["virt_lines"] == []


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
