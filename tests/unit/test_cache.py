"""cache: the LRU suggestion cache and its type-through."""

from __future__ import annotations

import pytest

from llama_nvim.cache import TYPE_THROUGH_CHARS, Hit, SuggestionCache, may_serve, typed_since
from llama_nvim.context import (
    LocalContext,
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


# -- type-through across line ends ------------------------------------------------------------


def test_a_suggestion_serves_the_next_line_after_its_first_line_and_enter() -> None:
    cache = SuggestionCache(10)
    above = prefix_of("def f(x):")
    cache.put(ctx("    y = ", prefix=above), ["x + 1", "    return y", "    # done"])
    now = ctx("    ", prefix=above + "    y = x + 1\n")
    assert cache.get(now) == Hit(["return y", "    # done"], len("x + 1\n    "))


def test_across_line_ends_the_prefix_window_may_lose_its_top_lines() -> None:
    cache = SuggestionCache(10)
    cache.put(ctx("b = ", prefix=prefix_of("top", "a = 1")), ["2", "c = 3", "d = 4"])
    # Two lines typed; the window of two lines above kept its height.
    now = ctx("d", prefix=prefix_of("b = 2", "c = 3"))
    assert cache.get(now) == Hit([" = 4"], len("2\nc = 3\nd"))


@pytest.mark.parametrize(
    "now",
    [
        # The first line was not typed whole before Enter.
        ctx("    ", prefix=prefix_of("def f(x):", "    y = x")),
        # The new line does not start like the suggestion's second line.
        ctx("\t", prefix=prefix_of("def f(x):", "    y = x + 1")),
        # The text right of the cursor changed.
        ctx("    ", prefix=prefix_of("def f(x):", "    y = x + 1"), suffix=")\n"),
        # A line above the requested one changed.
        ctx("    ", prefix=prefix_of("def g(x):", "    y = x + 1")),
        # Everything was typed: nothing left to show.
        ctx("    return y", prefix=prefix_of("def f(x):", "    y = x + 1")),
    ],
)
def test_across_line_ends_anything_but_typing_the_suggestion_misses(now: LocalContext) -> None:
    cache = SuggestionCache(10)
    cache.put(ctx("    y = ", prefix=prefix_of("def f(x):")), ["x + 1", "    return y"])
    assert cache.get(now) is None


def test_across_line_ends_only_the_newest_answers_are_looked_at() -> None:
    cache = SuggestionCache(100)
    cache.put(ctx("a = ", prefix=prefix_of("top")), ["1", "b = 2"])
    for i in range(8):
        cache.put(ctx(f"other{i}"), ["x"])
    assert cache.get(ctx("b", prefix=prefix_of("top", "a = 1"))) is None


@pytest.mark.parametrize(
    ("now", "typed"),
    [
        (ctx("x = 1", prefix=prefix_of("top")), "1"),
        (ctx("    ", prefix=prefix_of("top", "x = 1")), "1\n    "),
        (ctx("", prefix=prefix_of("top", "x = 1")), "1\n"),
        (ctx("", prefix=prefix_of("x = ")), "\n"),  # the top line left the window
        (ctx("", prefix=prefix_of("top", "x = 2", "")), "2\n\n"),
        (ctx("", prefix=prefix_of("top", "y = 1")), None),
        (ctx("", prefix=prefix_of("top", "x = 1"), suffix=")\n"), None),
        (ctx("", prefix=prefix_of("x = ", "z")), "\nz\n"),  # two lines typed, the top lost
        (ctx("", prefix=prefix_of("x = 1")), "1\n"),  # one line typed, the top lost
    ],
)
def test_typed_since_follows_typing_across_line_ends(now: LocalContext, typed: str | None) -> None:
    assert typed_since(ctx("x = ", prefix=prefix_of("top")), now) == typed


def test_typed_since_never_drops_more_lines_than_were_typed() -> None:
    requested = ctx("x = ", prefix=prefix_of("a", "b"))
    assert typed_since(requested, ctx("", prefix=prefix_of("b", "x = 1"))) == "1\n"
    assert typed_since(requested, ctx("", prefix=prefix_of("x = 1"))) is None
