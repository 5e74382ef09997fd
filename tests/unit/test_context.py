"""context: Snapshot from the Lua event, and the local FIM context built from it."""

from __future__ import annotations

import json

import pytest

from llama_nvim.context import (
    LocalContext,
    Snapshot,
    build_local_context,
    clean_text,
)


def snap(
    before: str = "",
    after: str = "",
    above: tuple[str, ...] = (),
    below: tuple[str, ...] = (),
) -> Snapshot:
    return Snapshot(
        buf=1,
        tick=1,
        row=len(above),
        col=len(before.encode()),
        above=above,
        before=before,
        after=after,
        below=below,
    )


# -- n_indent ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("", "", 0),
        ("    ", "", 0),  # whitespace-only line: no bound yet
        ("\t \t", "", 0),
        ("  ", "  ", 0),
        ("    return", "", 4),
        ("\t\tx = 1", "", 2),
        (" \t y", "", 3),
        ("  a", "b", 2),
        ("", "    x", 4),  # cursor at column 0 of an indented line
        ("  ", "  foo()", 4),  # cursor inside the indentation
        ("x", "", 0),
    ],
)
def test_n_indent_is_leading_whitespace_or_zero_on_blank_line(
    before: str, after: str, expected: int
) -> None:
    assert build_local_context(snap(before, after)).n_indent == expected


# -- prefix / prompt / suffix ----------------------------------------------------------


def test_prefix_lines_each_end_in_newline() -> None:
    ctx = build_local_context(snap("x", above=("def f():", "    a = 1", "")))
    assert ctx.prefix == "def f():\n    a = 1\n\n"


def test_prefix_is_empty_on_the_first_line() -> None:
    assert build_local_context(snap("x")).prefix == ""


def test_prompt_is_text_left_of_cursor() -> None:
    ctx = build_local_context(snap("    return a", " + b", above=("up",), below=("down",)))
    assert ctx.prompt == "    return a"


def test_suffix_is_rest_of_line_newline_and_lines_below_each_with_newline() -> None:
    ctx = build_local_context(snap("x = (", ")", below=("y = 2", "", "z")))
    assert ctx.suffix == ")\ny = 2\n\nz\n"


def test_suffix_on_last_line_is_rest_of_line_and_newline() -> None:
    assert build_local_context(snap("a", "bc")).suffix == "bc\n"
    assert build_local_context(snap("a", "")).suffix == "\n"


def test_context_text_is_prefix_prompt_suffix_and_rebuilds_the_buffer() -> None:
    above, below = ("import os", ""), ("print(x)",)
    ctx = build_local_context(snap("x = ", "1", above=above, below=below))
    assert ctx.text == "import os\n\nx = 1\nprint(x)\n"
    assert ctx.text == ctx.prefix + ctx.prompt + ctx.suffix


def test_local_context_text_property() -> None:
    assert LocalContext("a", "b", "c", 0).text == "abc"


# -- clean_text ---------------------------------------------------------------------


def test_clean_text_keeps_valid_text() -> None:
    text = "naïve → 日本語 \t\x00 🎉"
    assert clean_text(text) == text


def test_clean_text_replaces_undecodable_bytes_from_pynvim() -> None:
    # pynvim decodes with surrogateescape: byte 0xff arrives as U+DCFF.
    raw = b"ok \xff end".decode("utf-8", "surrogateescape")
    cleaned = clean_text(raw)
    assert cleaned == "ok \ufffd end"
    json.dumps(cleaned, ensure_ascii=False).encode("utf-8")


def test_clean_text_replaces_a_truncated_multibyte_sequence() -> None:
    raw = b"caf\xc3".decode("utf-8", "surrogateescape")
    assert clean_text(raw) == "caf\ufffd"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x\ud800y", "x\ufffdy"),  # lone high surrogate
        ("\udbff", "\ufffd"),
        ("a\udfffb", "a\ufffdb"),  # low surrogate outside surrogateescape's U+DC80..U+DCFF
        ("\ud83d:\udcff", "\ufffd:\ufffd"),  # mixed with an escaped byte
    ],
)
def test_clean_text_replaces_any_lone_surrogate(text: str, expected: str) -> None:
    assert clean_text(text) == expected
