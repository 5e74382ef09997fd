"""filtering: which replies are shown, and trimmed to what."""

from __future__ import annotations

import pytest

from llama_nvim.context import Snapshot
from llama_nvim.filtering import normalize, suggestion_lines


def snap(after: str = "", below: tuple[str, ...] = ()) -> Snapshot:
    return Snapshot(buf=1, tick=1, row=0, col=4, above=(), before="x = ", after=after, below=below)


def test_plain_reply_becomes_its_lines() -> None:
    assert suggestion_lines("foo(1)\nbar()", snap()) == ["foo(1)", "bar()"]


def test_leading_and_inner_whitespace_is_kept() -> None:
    assert suggestion_lines("  a\n\n\tb  ", snap()) == ["  a", "", "\tb  "]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("foo\n", ["foo"]),
        ("foo\n\n\n", ["foo"]),
        ("foo\n  \n\t\n", ["foo"]),
        ("foo\nbar\n\n", ["foo", "bar"]),
    ],
)
def test_trailing_blank_lines_are_trimmed(content: str, expected: list[str]) -> None:
    assert suggestion_lines(content, snap()) == expected


@pytest.mark.parametrize("content", ["", " ", "\n", "\n\n", "  \n\t\n  ", "\r\n", "\t"])
def test_whitespace_only_reply_is_dropped(content: str) -> None:
    assert suggestion_lines(content, snap()) is None


@pytest.mark.parametrize(
    ("after", "content"),
    [
        (")", ")"),
        (")", ")\n"),
        ("):", "  ):  "),
        ("  ]  ", "]"),
    ],
)
def test_reply_equal_to_text_right_of_cursor_is_dropped(after: str, content: str) -> None:
    assert suggestion_lines(content, snap(after=after)) is None


def test_reply_that_extends_text_right_of_cursor_is_kept() -> None:
    assert suggestion_lines("1)", snap(after=")")) == ["1)"]


def test_whitespace_right_of_cursor_never_counts_as_retyped() -> None:
    assert suggestion_lines("foo", snap(after="   ")) == ["foo"]


@pytest.mark.parametrize(
    ("content", "below", "expected"),
    [
        # the last line repeats the line below
        ("a\nb", ("b",), ["a"]),
        # the last two lines repeat the two lines below
        ("a\nb\nc", ("b", "c", "d"), ["a"]),
        # trailing whitespace does not hide the repeat
        ("a\n    b  ", ("    b",), ["a"]),
        # a blank line left before the repeat is trimmed too
        ("a\n\nb", ("b",), ["a"]),
        # a trailing blank line does not hide the repeat
        ("a\nb\n\n", ("b",), ["a"]),
        # partial repeats trim only what repeats
        ("a\nb\nc", ("c",), ["a", "b"]),
    ],
)
def test_trailing_lines_repeating_the_lines_below_are_trimmed(
    content: str, below: tuple[str, ...], expected: list[str]
) -> None:
    assert suggestion_lines(content, snap(below=below)) == expected


def test_lines_repeating_later_lines_below_are_not_trimmed() -> None:
    # "c" is below, but not right below the cursor line: accepting adds no duplicate.
    assert suggestion_lines("a\nc", snap(below=("b", "c"))) == ["a", "c"]


def test_repeat_must_match_in_indentation() -> None:
    assert suggestion_lines("a\n  b", snap(below=("b",))) == ["a", "  b"]


def test_first_line_is_never_taken_for_a_repeat_of_the_line_below() -> None:
    assert suggestion_lines("b", snap(below=("b",))) == ["b"]


def test_reply_that_only_repeats_the_lines_below_keeps_its_first_line() -> None:
    assert suggestion_lines("\nb\nc", snap(below=("b", "c"))) is None
    assert suggestion_lines("x\nb\nc", snap(below=("b", "c"))) == ["x"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("a\r\nb\r\n", ["a", "b"]),
        ("a\r\n\r\n", ["a"]),
        ("a\rb", ["ab"]),
    ],
)
def test_carriage_returns_are_normalised(content: str, expected: list[str]) -> None:
    lines = suggestion_lines(content, snap())
    assert lines == expected


def test_crlf_reply_still_matches_lines_below() -> None:
    assert suggestion_lines("a\r\nb\r\n", snap(below=("b",))) == ["a"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [("a\r\nb", "a\nb"), ("a\rb\r", "ab"), ("a\nb", "a\nb"), ("\r\n\r\n", "\n\n")],
)
def test_normalize_leaves_only_newlines(content: str, expected: str) -> None:
    assert normalize(content) == expected
