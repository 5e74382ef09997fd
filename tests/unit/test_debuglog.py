"""debuglog.DebugLog: one JSON line per event, off by default, never the API key, never raises."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llama_nvim.debuglog import DebugLog

SECRET = "sk-DEBUGLOG-0042abcd"


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_disabled_log_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state" / "llama_nvim.log"
    log = DebugLog(str(path), secret=SECRET)
    log.write("request", prompt="x")
    assert not path.exists()


def test_each_event_is_one_json_line(tmp_path: Path) -> None:
    path = tmp_path / "state" / "llama_nvim.log"  # the folder is made on first write
    log = DebugLog(str(path), enabled=True)
    log.write("request", n_predict=128, prompt="def f(\n", background=False)
    log.write("reply", content="x\ny", ms=1.5)
    lines = records(path)
    assert [r["event"] for r in lines] == ["request", "reply"]
    assert lines[0]["prompt"] == "def f(\n"
    assert lines[0]["n_predict"] == 128
    assert lines[1]["ms"] == 1.5
    assert all(isinstance(r["t"], float) for r in lines)


WHERE: dict[str, Callable[[str], dict[str, Any]]] = {
    "plain": lambda s: {"prompt": s},
    "inside-text": lambda s: {"detail": f"HTTP 400: bad token: Bearer {s} (retry)"},
    "twice": lambda s: {"content": f"{s} and {s}"},
    "nested-dict": lambda s: {"headers": {"authorization": f"Bearer {s}"}},
    "list": lambda s: {"lines": ["a", f"key={s}", "b"]},
    "tuple": lambda s: {"pair": ("a", s)},
    "deep": lambda s: {"a": {"b": [{"c": [s]}]}},
    "long-text": lambda s: {"content": "x" * 150 + s + "y" * 500},
    "at-the-cut": lambda s: {"content": "x" * 190 + s + "y" * 50},
    "dict-key": lambda s: {"files": {f"/home/u/{s}.txt": 1}},
}


@pytest.mark.parametrize("where", list(WHERE))
def test_api_key_is_redacted_wherever_it_appears(tmp_path: Path, where: str) -> None:
    path = tmp_path / "llama_nvim.log"
    log = DebugLog(str(path), secret=SECRET, enabled=True)
    log.write("event", **WHERE[where](SECRET))
    text = path.read_text(encoding="utf-8")
    assert SECRET not in text
    assert SECRET[:8] not in text, "not even a cut-off piece of it"
    assert "<redacted>" in text


@pytest.mark.parametrize("secret", ['k"e\\y/with\tescapes', "clé-ключ-🔑-secret"])
def test_api_key_needing_json_escapes_is_redacted_in_every_form(
    tmp_path: Path, secret: str
) -> None:
    path = tmp_path / "llama_nvim.log"
    log = DebugLog(str(path), secret=secret, enabled=True)
    log.write("event", detail=f"got {secret}")
    text = path.read_text(encoding="utf-8")
    assert secret not in text
    assert json.dumps(secret)[1:-1] not in text
    assert json.dumps(secret, ensure_ascii=False)[1:-1] not in text
    assert records(path)[0]["detail"] == "got <redacted>"


def test_no_key_means_nothing_is_redacted(tmp_path: Path) -> None:
    path = tmp_path / "llama_nvim.log"
    log = DebugLog(str(path), secret="", enabled=True)
    log.write("event", content="plain text")
    assert records(path)[0]["content"] == "plain text"


def test_long_texts_and_lists_are_cut(tmp_path: Path) -> None:
    path = tmp_path / "llama_nvim.log"
    log = DebugLog(str(path), enabled=True)
    log.write("event", content="z" * 10_000, lines=[str(i) for i in range(100)])
    record = records(path)[0]
    assert len(record["content"]) <= 210
    assert len(record["lines"]) <= 20


def test_log_starts_over_past_its_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "llama_nvim.log"
    path.write_text("x" * ((8 << 20) + 1))
    log = DebugLog(str(path), enabled=True)
    log.write("event", n=1)
    assert path.stat().st_size < 1000
    assert [r["event"] for r in records(path)] == ["event"]


def test_unwritable_log_turns_itself_off_without_raising(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    log = DebugLog(str(blocker / "sub" / "llama_nvim.log"), enabled=True)
    log.write("event", n=1)  # must not raise
    assert not log.enabled
    log.clear()  # nor this


@pytest.mark.parametrize(
    "value",
    [b"raw bytes", {1, 2}, object(), float("nan"), 10**400],
    ids=["bytes", "set", "object", "nan", "huge-int"],
)
def test_odd_values_never_make_it_raise(tmp_path: Path, value: Any) -> None:
    """write() runs on the keystroke path: whatever it is given, it must not raise."""
    path = tmp_path / "llama_nvim.log"
    log = DebugLog(str(path), secret=SECRET, enabled=True)
    log.write("event", value=value, note=SECRET)
    log.write("after", n=1)
    assert SECRET not in path.read_text(encoding="utf-8")
    assert records(path)[-1]["event"] == "after"


def test_clear_empties_the_log(tmp_path: Path) -> None:
    path = tmp_path / "llama_nvim.log"
    log = DebugLog(str(path), enabled=True)
    log.write("event", n=1)
    log.clear()
    assert path.read_text() == ""
    log.write("event", n=2)
    assert [r["n"] for r in records(path)] == [2]
