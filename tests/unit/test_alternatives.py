"""alternatives: the suggestions seen at one place, and which one is shown."""

from __future__ import annotations

from llama_nvim.alternatives import MAX_ALTERNATIVES, Alternatives

AT = (1, 7, 3, 4)


def test_next_past_the_last_asks_for_a_new_one_and_stays_put() -> None:
    alts = Alternatives(AT, ["a"])
    assert alts.step(1) is None
    assert alts.index == 0
    assert alts.label() == "1/1"


def test_a_new_suggestion_is_shown_and_previous_goes_back() -> None:
    alts = Alternatives(AT, ["a"])
    assert alts.add(["b", "c"])
    assert (alts.index, alts.label()) == (1, "2/2")
    assert alts.step(-1) == ["a"]
    assert alts.step(1) == ["b", "c"]
    assert alts.step(1) is None


def test_previous_from_the_first_goes_round_to_the_last() -> None:
    alts = Alternatives(AT, ["a"])
    alts.add(["b"])
    alts.add(["c"])
    alts.step(-1)
    alts.step(-1)
    assert alts.step(-1) == ["c"]
    assert alts.label() == "3/3"


def test_repeats_are_refused_even_with_other_trailing_blanks() -> None:
    alts = Alternatives(AT, ["x = 1", ""])
    assert not alts.add(["x = 1  ", ""])
    assert not alts.add(["x = 1 ", " "])
    assert alts.add(["x = 2"])
    assert not alts.add(["x = 2 "])
    assert len(alts.suggestions) == 2


def test_next_goes_round_once_there_are_enough() -> None:
    alts = Alternatives(AT, ["s0"])
    for i in range(1, MAX_ALTERNATIVES):
        assert alts.step(1) is None
        assert alts.add([f"s{i}"])
    assert alts.step(1) == ["s0"]
    assert alts.label() == f"1/{MAX_ALTERNATIVES}"
