"""cache: the LRU suggestion cache, and the context predictions its keys depend on.

``cap_lines_above`` and ``accepted_snapshot`` live in context.py, but they are
here because their one job is to predict the cache key the editor will send
after a suggestion is accepted (the speculative request stores under it).
"""

from __future__ import annotations

import dataclasses

import pytest

from llama_nvim.cache import TYPE_THROUGH_CHARS, Hit, SuggestionCache, may_serve
from llama_nvim.context import (
    LocalContext,
    Snapshot,
    accepted_snapshot,
    before_is_whole,
    build_local_context,
    cap_lines_above,
)


def ctx(prompt: str = "x = ", prefix: str = "", suffix: str = "\n") -> LocalContext:
    return LocalContext(prefix=prefix, prompt=prompt, suffix=suffix, n_indent=0)


def prefix_of(*lines: str) -> str:
    return "".join(f"{line}\n" for line in lines)


# -- exact hits and LRU -------------------------------------------------------------------


def test_empty_cache_misses() -> None:
    cache = SuggestionCache(10)
    assert cache.get(ctx()) is None
    assert len(cache) == 0


def test_exact_context_hits() -> None:
    cache = SuggestionCache(10)
    cache.put(ctx(), ["foo()", "bar()"])
    assert cache.get(ctx()) == Hit(["foo()", "bar()"], 0)


@pytest.mark.parametrize(
    "other",
    [
        ctx(prefix="def g():\n"),
        ctx(suffix=")\n"),
        ctx(prompt="y = "),
        ctx(prompt="x ="),  # a shorter prompt is not an earlier state of a longer one
    ],
)
def test_a_different_context_misses(other: LocalContext) -> None:
    cache = SuggestionCache(10)
    cache.put(ctx(), ["foo()"])
    assert cache.get(other) is None


def test_a_later_put_for_the_same_context_wins() -> None:
    cache = SuggestionCache(10)
    cache.put(ctx(), ["old"])
    cache.put(ctx(), ["new"])
    assert len(cache) == 1
    assert cache.get(ctx()) == Hit(["new"], 0)


def test_least_recently_used_entry_is_evicted_at_max_keys() -> None:
    cache = SuggestionCache(2)
    # empty prefix: no scroll keys, one entry per put
    cache.put(ctx("a"), ["1"])
    cache.put(ctx("b"), ["2"])
    cache.put(ctx("c"), ["3"])
    assert len(cache) == 2
    assert cache.get(ctx("a")) is None
    assert cache.get(ctx("b")) == Hit(["2"], 0)
    assert cache.get(ctx("c")) == Hit(["3"], 0)


def test_a_hit_moves_the_entry_to_the_end() -> None:
    cache = SuggestionCache(2)
    cache.put(ctx("a"), ["1"])
    cache.put(ctx("b"), ["2"])
    assert cache.get(ctx("a")) is not None
    cache.put(ctx("c"), ["3"])
    assert cache.get(ctx("b")) is None
    assert cache.get(ctx("a")) == Hit(["1"], 0)


def test_a_type_through_hit_moves_the_entry_to_the_end() -> None:
    cache = SuggestionCache(2)
    cache.put(ctx("a"), ["123"])
    cache.put(ctx("b"), ["2"])
    assert cache.get(ctx("a1")) == Hit(["23"], 1)
    cache.put(ctx("c"), ["3"])
    assert cache.get(ctx("b")) is None
    assert cache.get(ctx("a")) is not None


def test_a_put_again_moves_the_entry_to_the_end() -> None:
    cache = SuggestionCache(2)
    cache.put(ctx("a"), ["1"])
    cache.put(ctx("b"), ["2"])
    cache.put(ctx("a"), ["1"])
    cache.put(ctx("c"), ["3"])
    assert cache.get(ctx("b")) is None
    assert cache.get(ctx("a")) is not None


def test_max_keys_zero_stores_nothing() -> None:
    cache = SuggestionCache(0)
    cache.put(ctx(prefix=prefix_of("a", "b", "c", "d")), ["foo"])
    assert len(cache) == 0
    assert cache.get(ctx(prefix=prefix_of("a", "b", "c", "d"))) is None


def test_the_cache_never_grows_past_max_keys() -> None:
    cache = SuggestionCache(5)
    for i in range(50):
        cache.put(ctx(f"p{i}", prefix=prefix_of(*(f"l{j}" for j in range(i % 6)))), [str(i)])
        assert len(cache) <= 5


# -- scroll keys -------------------------------------------------------------------------------


def test_a_reply_is_also_stored_for_the_prefix_window_scrolled_by_one_to_three_lines() -> None:
    cache = SuggestionCache(100)
    cache.put(ctx(prefix=prefix_of("l1", "l2", "l3", "l4", "l5")), ["foo"])
    assert len(cache) == 4
    for dropped in range(4):
        lines = ["l1", "l2", "l3", "l4", "l5"][dropped:]
        assert cache.get(ctx(prefix=prefix_of(*lines))) == Hit(["foo"], 0), dropped
    assert cache.get(ctx(prefix=prefix_of("l5"))) is None


def test_scroll_keys_stop_at_the_top_of_a_short_prefix() -> None:
    cache = SuggestionCache(100)
    cache.put(ctx(prefix=prefix_of("a", "b")), ["foo"])
    assert len(cache) == 3  # "a\nb\n", "b\n" and ""
    assert cache.get(ctx(prefix="")) == Hit(["foo"], 0)


def test_scroll_keys_need_the_same_prompt_and_suffix() -> None:
    cache = SuggestionCache(100)
    cache.put(ctx(prefix=prefix_of("a", "b", "c")), ["foo"])
    assert cache.get(ctx(prefix=prefix_of("b", "c"), suffix="other\n")) is None
    assert cache.get(ctx("y = ", prefix=prefix_of("b", "c"))) is None


def test_scroll_keys_count_against_max_keys() -> None:
    cache = SuggestionCache(3)
    cache.put(ctx(prefix=prefix_of("l1", "l2", "l3", "l4")), ["foo"])
    assert len(cache) == 3
    # the full window was stored first, so it is the one evicted
    assert cache.get(ctx(prefix=prefix_of("l1", "l2", "l3", "l4"))) is None
    assert cache.get(ctx(prefix=prefix_of("l4"))) == Hit(["foo"], 0)


# -- type-through ----------------------------------------------------------------------------


def test_typing_the_start_of_a_cached_suggestion_gives_the_rest() -> None:
    cache = SuggestionCache(10)
    cache.put(ctx("x = "), ["foo(1)", "bar()"])
    assert cache.get(ctx("x = f")) == Hit(["oo(1)", "bar()"], 1)
    assert cache.get(ctx("x = foo(")) == Hit(["1)", "bar()"], 4)


def test_typing_the_whole_first_line_of_a_multi_line_suggestion_gives_the_next_lines() -> None:
    cache = SuggestionCache(10)
    cache.put(ctx("x = "), ["foo", "bar()"])
    assert cache.get(ctx("x = foo")) == Hit(["", "bar()"], 3)


@pytest.mark.parametrize("typed", ["x = g", "x = fo(", "x = foo(2", "x = F"])
def test_typing_something_else_misses(typed: str) -> None:
    cache = SuggestionCache(10)
    cache.put(ctx("x = "), ["foo(1)"])
    assert cache.get(ctx(typed)) is None


def test_typing_the_whole_single_line_suggestion_misses() -> None:
    cache = SuggestionCache(10)
    cache.put(ctx("x = "), ["foo"])
    assert cache.get(ctx("x = foo")) is None


def test_a_whitespace_only_rest_misses() -> None:
    cache = SuggestionCache(10)
    cache.put(ctx("x = "), ["foo  \t"])
    assert cache.get(ctx("x = foo")) is None
    cache.put(ctx("y = "), ["foo  ", "   ", ""])
    assert cache.get(ctx("y = foo")) is None


def test_type_through_needs_the_same_prefix_and_suffix() -> None:
    cache = SuggestionCache(10)
    cache.put(ctx("x = "), ["foo()"])
    assert cache.get(ctx("x = f", prefix="import os\n")) is None
    assert cache.get(ctx("x = f", suffix=")\n")) is None


def test_type_through_tries_the_latest_state_first() -> None:
    cache = SuggestionCache(10)
    cache.put(ctx("x = "), ["foo(1)"])
    cache.put(ctx("x = f"), ["n()"])
    assert cache.get(ctx("x = f")) == Hit(["n()"], 0)
    assert cache.get(ctx("x = fo")) == Hit(["o(1)"], 2)


def test_type_through_looks_back_at_most_128_characters() -> None:
    assert TYPE_THROUGH_CHARS == 128
    suggestion = "".join(chr(ord("a") + i % 26) for i in range(200))
    cache = SuggestionCache(10)
    cache.put(ctx("s = "), [suggestion])
    hit = cache.get(ctx("s = " + suggestion[:128]))
    assert hit == Hit([suggestion[128:]], 128)
    assert cache.get(ctx("s = " + suggestion[:129])) is None


def test_type_through_at_the_start_of_a_line() -> None:
    cache = SuggestionCache(10)
    cache.put(ctx(""), ["    return 1"])
    assert cache.get(ctx("    ")) == Hit(["return 1"], 4)


def test_type_through_with_multibyte_text() -> None:
    cache = SuggestionCache(10)
    cache.put(ctx("s = '"), ["héllo wörld'"])
    assert cache.get(ctx("s = 'hé")) == Hit(["llo wörld'"], 2)


# -- the context the cache is keyed on: cap_lines_above -----------------------------------------


def test_cap_lines_above_keeps_the_last_count_lines() -> None:
    lines = [f"l{i}" for i in range(10)]
    assert cap_lines_above(lines, 3, 10_000, 100) == ("l7", "l8", "l9")
    assert cap_lines_above(lines, 10, 10_000, 100) == tuple(lines)
    assert cap_lines_above(lines, 50, 10_000, 100) == tuple(lines)
    assert cap_lines_above(lines, 0, 10_000, 100) == ()
    assert cap_lines_above([], 5, 10_000, 100) == ()


def test_cap_lines_above_keeps_the_nearest_lines_within_the_byte_cap() -> None:
    lines = ["aaaa", "bbbb", "cccc"]  # 5 bytes each with the newline
    assert cap_lines_above(lines, 10, 15, 100) == ("aaaa", "bbbb", "cccc")
    assert cap_lines_above(lines, 10, 14, 100) == ("bbbb", "cccc")
    assert cap_lines_above(lines, 10, 10, 100) == ("bbbb", "cccc")
    assert cap_lines_above(lines, 10, 9, 100) == ("cccc",)
    assert cap_lines_above(lines, 10, 4, 100) == ()
    assert cap_lines_above(lines, 10, 0, 100) == ()


def test_cap_lines_above_stops_at_the_first_line_that_does_not_fit() -> None:
    # a short line further up would fit, but the text kept must be contiguous
    lines = ["a", "b" * 20, "c"]
    assert cap_lines_above(lines, 10, 10, 100) == ("c",)


def test_cap_lines_above_counts_empty_lines_as_one_byte() -> None:
    assert cap_lines_above(["", "", "", "x"], 10, 4, 100) == ("", "", "x")


def test_cap_lines_above_counts_bytes_not_characters() -> None:
    lines = ["é", "中"]  # 2 and 3 bytes
    assert cap_lines_above(lines, 10, 7, 100) == ("é", "中")
    assert cap_lines_above(lines, 10, 6, 100) == ("中",)


def test_cap_lines_above_cuts_long_lines_to_max_line_bytes_before_counting() -> None:
    lines = ["x" * 100, "y" * 30]
    assert cap_lines_above(lines, 10, 22, 10) == ("x" * 10, "y" * 10)
    assert cap_lines_above(lines, 10, 21, 10) == ("y" * 10,)
    assert cap_lines_above(["z" * 10], 1, 100, 10) == ("z" * 10,)


def test_cap_lines_above_count_applies_before_the_byte_cap() -> None:
    lines = ["a", "b", "c", "d"]
    assert cap_lines_above(lines, 2, 1000, 10) == ("c", "d")


# -- accepted_snapshot: the state after Tab -------------------------------------------------------


def snap(
    before: str = "    x = ",
    after: str = "",
    above: tuple[str, ...] = ("def f():",),
    below: tuple[str, ...] = ("    return x",),
) -> Snapshot:
    return Snapshot(
        buf=1,
        tick=7,
        row=len(above),
        col=len(before.encode()),
        above=above,
        before=before,
        after=after,
        below=below,
        filename="/p/m.py",
        manual=True,
    )


def accept(s: Snapshot, lines: list[str], **caps: int) -> Snapshot:
    options = {"n_prefix": 256, "max_prefix_bytes": 32768, "max_line_bytes": 4096}
    options.update(caps)
    return accepted_snapshot(s, lines, **options)


def test_single_line_accept_extends_the_prompt() -> None:
    s = snap(after=")", below=("    return x",))
    after = accept(s, ["foo(1"])
    context = build_local_context(after)
    assert context.prefix == "def f():\n"
    assert context.prompt == "    x = foo(1"
    assert context.suffix == ")\n    return x\n"
    assert after.manual is False
    assert (after.buf, after.filename) == (1, "/p/m.py")


def test_multi_line_accept_moves_finished_lines_into_the_prefix() -> None:
    s = snap(after="")
    after = accept(s, ["foo(", "        1,", "    )"])
    context = build_local_context(after)
    assert context.prefix == "def f():\n    x = foo(\n        1,\n"
    assert context.prompt == "    )"
    assert context.suffix == "\n    return x\n"


def test_accepting_a_line_and_an_empty_next_line_puts_the_cursor_at_column_zero() -> None:
    after = accept(snap(), ["1", ""])
    context = build_local_context(after)
    assert context.prefix == "def f():\n    x = 1\n"
    assert context.prompt == ""


def test_accepted_context_is_what_the_editor_sends_after_the_accept() -> None:
    # The editor's snapshot after Tab: the buffer with the text inserted, cut the
    # way the Lua side cuts it.
    buffer = ["import os", "", "def f():", "    x = ", "    return x"]
    lines = ["foo(", "        1,", "    )"]
    row, col = 3, len("    x = ")
    caps = {"n_prefix": 4, "max_prefix_bytes": 33, "max_line_bytes": 16}
    s = snap(
        above=cap_lines_above(buffer[:row], 4, 33, 16),
        before=buffer[row][:col],
        below=tuple(buffer[row + 1 :]),
    )
    new_buffer = [*buffer[:row], buffer[row][:col] + lines[0], *lines[1:], *buffer[row + 1 :]]
    new_row = row + len(lines) - 1
    expected_above = cap_lines_above(new_buffer[:new_row], 4, 33, 16)
    after = accept(s, lines, **caps)
    assert after.above == expected_above
    assert after.above == ("def f():", "    x = foo(", "        1,")
    assert after.before == "    )"


def test_accepted_snapshot_applies_the_line_count_cap() -> None:
    after = accept(snap(above=("a", "b", "c")), ["1", "2", "3"], n_prefix=3)
    assert after.above == ("c", "    x = 1", "2")


def test_accepted_snapshot_applies_the_prefix_byte_cap() -> None:
    after = accept(snap(above=("a" * 10, "b" * 10)), ["1", "2"], max_prefix_bytes=21)
    assert after.above == ("b" * 10, "    x = 1")


def test_single_line_accept_keeps_the_end_of_a_long_prompt() -> None:
    # the editor sends the text left of the cursor cut from the start
    s = snap(before="0123456789abcdef")
    after = accept(s, ["XYZ"], max_line_bytes=16)
    assert after.before == "3456789abcdefXYZ"


def test_a_cut_prompt_is_recognised_so_no_multi_line_accept_is_predicted() -> None:
    # The cursor line had 20 bytes left of the cursor; the editor sent only the
    # last 16 as ``before``. After accepting two lines that whole line would be
    # above the cursor, cut to its FIRST 16 bytes, which Python never saw: the
    # engine must not speculate there (it checks before_is_whole).
    full = "0123456789abcdefghij"
    s = dataclasses.replace(snap(before=full[-16:]), col=len(full))
    assert not before_is_whole(s)
    assert before_is_whole(dataclasses.replace(s, before=full))


# -- which answers may still serve a later keystroke -----------------------------------------------


@pytest.mark.parametrize(
    ("now", "serves"),
    [
        (ctx("x = "), True),
        (ctx("x = 1"), True),
        (ctx("x = " + "1" * TYPE_THROUGH_CHARS), True),
        (ctx("x = " + "1" * (TYPE_THROUGH_CHARS + 1)), False),
        (ctx("x ="), False),
        (ctx("y = 1"), False),
        (ctx("x = 1", suffix=")\n"), False),
        (ctx("x = 1", prefix="a\n"), False),
    ],
)
def test_an_answer_may_serve_only_what_types_on_along_the_same_lines(
    now: LocalContext, serves: bool
) -> None:
    assert may_serve(ctx("x = "), now) is serves


def test_what_may_serve_is_what_type_through_then_finds() -> None:
    cache = SuggestionCache(10)
    requested = ctx("x = ")
    cache.put(requested, ["1234"])
    for typed in ("1", "12", "123"):
        now = ctx("x = " + typed)
        assert may_serve(requested, now)
        assert cache.get(now) == Hit(["1234"[len(typed) :]], len(typed))
