"""messages.parse_event: every kind, wrong-typed fields of each type, unknown kinds."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from llama_nvim.context import Snapshot, build_local_context
from llama_nvim.messages import (
    Cancel,
    Cycle,
    Enabled,
    Enter,
    Keystroke,
    Leave,
    Shown,
    TextChunk,
    parse_event,
)


def full_event() -> dict[str, Any]:
    return {
        "buf": 3,
        "tick": 42,
        "row": 7,
        "col": 5,
        "above": ["a", "b"],
        "before": "    x",
        "after": ")",
        "below": ["c"],
        "filename": "src/m.py",
        "filetype": "python",
        "cwd": "/src",
        "vcol": 4,
        "tabstop": 4,
        "manual": True,
    }


FULL_SNAPSHOT = Snapshot(
    buf=3,
    tick=42,
    row=7,
    col=5,
    above=("a", "b"),
    before="    x",
    after=")",
    below=("c",),
    filename="src/m.py",
    filetype="python",
    cwd="/src",
    vcol=4,
    tabstop=4,
    manual=True,
)


def rejected(kind: Any, payload: Any) -> list[str]:
    """The log lines of a parse that must fail."""
    lines: list[str] = []
    assert parse_event(kind, payload, lines.append) is None
    return lines


def test_a_keystroke_reads_every_field() -> None:
    event = parse_event("keystroke", full_event())
    assert event == Keystroke(FULL_SNAPSHOT)
    assert isinstance(event, Keystroke)
    assert event.snapshot.position == (3, 42, 7, 5)


def test_a_trigger_is_a_manual_keystroke() -> None:
    payload = {**full_event(), "manual": False}
    event = parse_event("trigger", payload)
    assert event == Keystroke(FULL_SNAPSHOT)


def test_missing_fields_take_their_defaults() -> None:
    # Lua drops nil values from tables: a missing field is not malformed.
    event = parse_event("keystroke", {})
    assert isinstance(event, Keystroke)
    s = event.snapshot
    assert s == Snapshot(buf=0, tick=0, row=0, col=0, above=(), before="", after="", below=())
    assert s.tabstop == 8
    assert s.manual is False


@pytest.mark.parametrize(("tabstop", "expected"), [(0, 1), (-4, 1), (None, 8)])
def test_tabstop_is_at_least_one(tabstop: Any, expected: int) -> None:
    event = parse_event("keystroke", {**full_event(), "tabstop": tabstop})
    assert isinstance(event, Keystroke)
    assert event.snapshot.tabstop == expected


@pytest.mark.parametrize(
    ("field", "odd"),
    [
        ("buf", "3"),
        ("row", 1.5),
        ("col", True),
        ("vcol", []),
        ("tabstop", "8"),
        ("tabstop", False),
        ("before", 5),
        ("filename", b"x.py"),
        ("filetype", ["python"]),
        ("cwd", 3),
        ("above", "not a list"),
        ("above", ["a", 1, None, "b"]),
        ("below", {"n": "3", "text": "a"}),
        ("below", {"n": 1, "text": 7}),
        ("manual", 1),
    ],
)
@pytest.mark.parametrize("kind", ["keystroke", "trigger"])
def test_a_wrong_typed_snapshot_field_rejects_the_event(kind: str, field: str, odd: Any) -> None:
    payload = full_event()
    payload[field] = odd
    (line,) = rejected(kind, payload)
    assert field in line
    assert kind in line


def test_text_is_cleaned_of_undecodable_bytes() -> None:
    bad = b"\xfe".decode("utf-8", "surrogateescape")
    payload = {"above": [f"a{bad}"], "before": bad, "after": bad, "below": [bad], "filename": bad}
    event = parse_event("keystroke", payload)
    assert isinstance(event, Keystroke)
    s = event.snapshot
    assert s.above == ("a\ufffd",)
    assert s.before == s.after == s.filename == "\ufffd"
    assert s.below == ("\ufffd",)
    json.dumps(build_local_context(s).__dict__, ensure_ascii=False).encode("utf-8")


def test_lines_arrive_joined_with_their_count() -> None:
    payload = {"above": {"n": 3, "text": "a\n\nb"}, "below": {"n": 0, "text": ""}, "before": "x"}
    event = parse_event("keystroke", payload)
    assert isinstance(event, Keystroke)
    assert event.snapshot.above == ("a", "", "b")
    assert event.snapshot.below == ()
    one_empty = parse_event("keystroke", {"above": {"n": 1, "text": ""}})
    assert isinstance(one_empty, Keystroke)
    assert one_empty.snapshot.above == ("",)


def test_a_cycle_carries_the_snapshot_the_step_and_the_shown_lines() -> None:
    payload = {**full_event(), "manual": False, "step": -1, "shown": ["a", "b"]}
    event = parse_event("cycle", payload)
    assert isinstance(event, Cycle)
    assert (event.step, event.shown) == (-1, ("a", "b"))
    assert event.snapshot.position == (3, 42, 7, 5)


@pytest.mark.parametrize(
    ("field", "odd"),
    [("step", None), ("step", "1"), ("step", True), ("shown", None), ("shown", ["a", 2])],
)
def test_a_malformed_cycle_is_rejected(field: str, odd: Any) -> None:
    payload = {**full_event(), "step": 1, "shown": ["a"]}
    payload[field] = odd
    (line,) = rejected("cycle", payload)
    assert field in line


def test_a_chunk_reads_its_lines_and_file() -> None:
    payload = {"lines": ["a", "b", "c"], "filename": "/p/x.py", "filetype": "python", "cwd": "/p"}
    assert parse_event("chunk", payload) == TextChunk(("a", "b", "c"), "/p/x.py", "python", "/p")


@pytest.mark.parametrize(
    ("field", "odd"),
    [("lines", None), ("lines", 5), ("lines", ["a", 1]), ("filename", 1), ("filetype", [])],
)
def test_a_malformed_chunk_is_rejected(field: str, odd: Any) -> None:
    payload: dict[str, Any] = {"lines": ["a", "b", "c"], "filename": "/p/x.py"}
    payload[field] = odd
    (line,) = rejected("chunk", payload)
    assert field in line


def test_enter_leave_and_cancel() -> None:
    assert parse_event("enter", {"filename": "/p/x.py", "cwd": "/p"}) == Enter("/p/x.py", "/p")
    assert parse_event("enter", {}) == Enter("", "")
    assert parse_event("leave", {}) == Leave()
    assert parse_event("cancel", {}) == Cancel()
    (line,) = rejected("enter", {"cwd": 7})
    assert "cwd" in line


def test_shown_carries_the_snapshot_after_accepting() -> None:
    event = parse_event("shown", {"after_accept": {**full_event(), "manual": False}})
    assert event == Shown(dataclasses.replace(FULL_SNAPSHOT, manual=False))


def test_a_shown_without_its_after_accept_snapshot_is_counted_not_speculated_on() -> None:
    # Sent where the snapshot after accepting cannot be told (a cut line).
    assert parse_event("shown", {}) == Shown(None)


@pytest.mark.parametrize("payload", [{"after_accept": "x"}, {"after_accept": {"row": "1"}}])
def test_a_malformed_shown_is_rejected(payload: dict[str, Any]) -> None:
    (line,) = rejected("shown", payload)
    assert "after_accept" in line or "row" in line


def test_enabled_is_a_boolean() -> None:
    assert parse_event("enabled", {"enabled": True}) == Enabled(True)
    assert parse_event("enabled", {"enabled": False}) == Enabled(False)
    for odd in ({}, {"enabled": 1}, {"enabled": "yes"}):
        (line,) = rejected("enabled", odd)
        assert "enabled" in line


@pytest.mark.parametrize("kind", ["cancle", "", None, 3, "Keystroke"])
def test_an_unknown_kind_is_rejected_not_turned_into_another_action(kind: Any) -> None:
    (line,) = rejected(kind, {})
    assert "unknown kind" in line


@pytest.mark.parametrize("payload", [None, [], "x", 3])
def test_a_payload_that_is_not_a_table_is_rejected(payload: Any) -> None:
    (line,) = rejected("keystroke", payload)
    assert "not a table" in line


def test_no_log_callback_is_needed() -> None:
    assert parse_event("nope", {}) is None
