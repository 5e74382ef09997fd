"""acceptance.AcceptanceStats: the :LlamaStats counts, their file, and its report."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from llama_nvim import acceptance
from llama_nvim.acceptance import (
    LATENCY_SAMPLES,
    LATENCY_SAMPLES_OVERALL,
    MAX_FILETYPES,
    AcceptanceStats,
    filetype_key,
    percentile,
)

NOW = 1_790_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def fresh(tmp_path: Path, clock: Clock | None = None) -> AcceptanceStats:
    stats, problem = AcceptanceStats.load(str(tmp_path / "stats.json"), now=clock or Clock())
    assert problem is None
    return stats


def on_disk(tmp_path: Path) -> Any:
    return json.loads((tmp_path / "stats.json").read_text("utf-8"))


# -- counting -------------------------------------------------------------------------


def test_counts_per_filetype_and_overall(tmp_path: Path) -> None:
    stats = fresh(tmp_path)
    for _ in range(4):
        stats.shown("python", 80)
    stats.shown("lua", 120)
    stats.accepted("python", "full", 30)
    stats.accepted("python", "line", 12)
    stats.accepted("lua", "word", 5)
    totals = stats.totals()
    python, lua, overall = totals.filetypes["python"], totals.filetypes["lua"], totals.overall
    assert (python.shown, python.accepted, python.full, python.line, python.word) == (4, 2, 1, 1, 0)
    assert python.chars == 42
    assert (lua.shown, lua.accepted, lua.word, lua.chars) == (1, 1, 1, 5)
    assert (overall.shown, overall.accepted, overall.chars) == (5, 3, 47)
    assert (overall.full, overall.line, overall.word) == (1, 1, 1)


def test_a_continued_accept_counts_its_kind_and_chars_but_not_another_suggestion(
    tmp_path: Path,
) -> None:
    stats = fresh(tmp_path)
    stats.shown("python")
    stats.accepted("python", "word", 4)
    stats.accepted("python", "word", 6, continued=True)
    stats.accepted("python", "line", 10, continued=True)
    tally = stats.totals().overall
    assert (tally.shown, tally.accepted, tally.word, tally.line, tally.chars) == (1, 1, 2, 1, 20)


def test_unknown_accept_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown accept kind"):
        fresh(tmp_path).accepted("python", "all", 3)


def test_a_suggestion_from_the_cache_adds_no_latency_sample(tmp_path: Path) -> None:
    stats = fresh(tmp_path)
    stats.shown("python", None)
    stats.shown("python", 42.6)
    assert stats.totals().overall.latency_ms == [43]
    assert stats.totals().overall.shown == 2


def test_latencies_keep_only_the_latest_samples(tmp_path: Path) -> None:
    stats = fresh(tmp_path)
    total = LATENCY_SAMPLES_OVERALL + 10
    for i in range(total):
        stats.shown("python", i)
    totals = stats.totals()
    assert totals.filetypes["python"].latency_ms == list(range(total - LATENCY_SAMPLES, total))
    assert totals.overall.latency_ms == list(range(10, total))


@pytest.mark.parametrize(
    ("samples", "p", "expected"),
    [
        ([], 50, None),
        ([7], 50, 7),
        ([7], 90, 7),
        ([1, 2, 3, 4], 50, 2),
        (list(range(1, 11)), 90, 9),
        (list(range(10, 0, -1)), 50, 5),
        (list(range(1, 101)), 90, 90),
    ],
)
def test_percentile_is_nearest_rank(samples: list[int], p: float, expected: int | None) -> None:
    assert percentile(samples, p) == expected


@pytest.mark.parametrize(
    ("filetype", "key"),
    [
        ("python", "python"),
        ("javascript.jsx", "javascript.jsx"),
        ("c++", "c++"),
        ("", "none"),
        ("print('hunter2')", "other"),
        ("a b", "other"),
        ("x" * 41, "other"),
        ("ünicode", "other"),
    ],
)
def test_only_plain_filetype_names_are_kept(filetype: str, key: str) -> None:
    assert filetype_key(filetype) == key


# -- the file ------------------------------------------------------------------------------


def test_counts_survive_a_restart(tmp_path: Path) -> None:
    stats = fresh(tmp_path)
    stats.shown("python", 90)
    stats.accepted("python", "full", 12)
    assert stats.dirty
    assert stats.flush() is None
    assert not stats.dirty
    again = fresh(tmp_path)
    tally = again.totals().filetypes["python"]
    assert (tally.shown, tally.accepted, tally.full, tally.chars, tally.latency_ms) == (
        1,
        1,
        1,
        12,
        [90],
    )


def test_nothing_counted_writes_nothing(tmp_path: Path) -> None:
    stats = fresh(tmp_path)
    assert not stats.dirty
    assert stats.flush() is None
    assert not (tmp_path / "stats.json").exists()


def test_two_neovims_sharing_the_file_add_up(tmp_path: Path) -> None:
    one, two = fresh(tmp_path), fresh(tmp_path)
    one.shown("python", 10)
    two.shown("python", 20)
    two.shown("lua", 30)
    assert one.flush() is None
    assert two.flush() is None
    assert one.flush() is None, "nothing new: no write"
    totals = fresh(tmp_path).totals()
    assert totals.overall.shown == 3
    assert totals.filetypes["python"].shown == 2
    assert totals.filetypes["python"].latency_ms == [10, 20]


def test_flushing_twice_does_not_count_twice(tmp_path: Path) -> None:
    stats = fresh(tmp_path)
    stats.shown("python")
    stats.flush()
    stats.shown("python")
    stats.flush()
    assert on_disk(tmp_path)["overall"]["shown"] == 2
    assert stats.totals().overall.shown == 2


def test_the_file_stays_bounded(tmp_path: Path) -> None:
    clock = Clock()
    stats = fresh(tmp_path, clock)
    for i in range(MAX_FILETYPES + 20):
        clock.now += 1
        for _ in range(3):
            stats.shown(f"ft{i}", 100_000 + i)
        stats.flush()
    for _ in range(LATENCY_SAMPLES_OVERALL * 2):
        stats.shown("python", 123_456)
    stats.flush()
    data = on_disk(tmp_path)
    assert len(data["filetypes"]) == MAX_FILETYPES
    assert "ft0" not in data["filetypes"], "the filetype unseen longest goes first"
    assert "python" in data["filetypes"]
    assert len(data["overall"]["latency_ms"]) == LATENCY_SAMPLES_OVERALL
    assert data["overall"]["shown"] == (MAX_FILETYPES + 20) * 3 + LATENCY_SAMPLES_OVERALL * 2
    size = (tmp_path / "stats.json").stat().st_size
    assert size < acceptance.MAX_FILE_BYTES / 4, size


def test_the_file_holds_no_text_only_filetype_names_and_numbers(tmp_path: Path) -> None:
    stats = fresh(tmp_path)
    secret_filetype = "password=hunter2 # $(rm -rf ~)"
    stats.shown(secret_filetype, 50)
    stats.shown("python", 60)
    stats.accepted("python", "full", 17)
    stats.accepted(secret_filetype, "word", 3)
    stats.flush()
    raw = (tmp_path / "stats.json").read_text("utf-8")
    assert "hunter2" not in raw

    strings: list[str] = []

    def walk(node: Any, is_filetype_table: bool = False) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                strings.append(key)
                walk(value, key == "filetypes")
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str):
            strings.append(node)
        else:
            assert isinstance(node, int), node

    data = json.loads(raw)
    walk(data)
    schema = {"version", "since", "overall", "filetypes", "shown", "accepted", "full"}
    schema |= {"line", "word", "chars", "latency_ms", "last_used"}
    assert set(strings) - schema == set(data["filetypes"]) == {"python", "other"}


def test_the_write_is_atomic_through_a_temporary_file_in_the_same_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stats = fresh(tmp_path)
    stats.shown("python")
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:
        replaced.append((src, dst))
        assert json.loads(Path(src).read_text("utf-8"))["overall"]["shown"] == 1, "complete"
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    assert stats.flush() is None
    [(src, dst)] = replaced
    assert dst == str(tmp_path / "stats.json")
    assert os.path.dirname(src) == str(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.json"]


def test_a_failed_write_leaves_the_old_file_whole_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stats = fresh(tmp_path)
    stats.shown("python")
    stats.flush()
    before = (tmp_path / "stats.json").read_bytes()
    stats.shown("python")

    def broken_dump(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(json, "dump", broken_dump)
    message = stats.flush()
    assert message is not None
    assert "cannot write the statistics file" in message
    assert "No space left on device" in message
    assert (tmp_path / "stats.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.json"]
    assert stats.dirty, "kept for the next flush"
    assert stats.flush() is None, "the same failure is reported once"
    monkeypatch.undo()
    assert stats.flush() is None
    assert on_disk(tmp_path)["overall"]["shown"] == 2, "nothing lost"


def test_the_folder_is_created_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "state" / "nvim" / "stats.json"
    stats, problem = AcceptanceStats.load(str(path))
    assert problem is None
    stats.shown("python")
    assert stats.flush() is None
    assert path.exists()


CORRUPT = [
    b"{not json",
    b"\xff\xfe\x00garbage",
    b"[]",
    b'"text"',
    b"",
    json.dumps({"version": 99, "overall": {}}).encode(),
    json.dumps({"version": 1, "overall": {"shown": -3}}).encode(),
    json.dumps({"version": 1, "overall": {"shown": "12"}}).encode(),
    json.dumps({"version": 1, "overall": {"latency_ms": "1,2"}}).encode(),
    json.dumps({"version": 1, "filetypes": {"bad name!": {}}}).encode(),
    json.dumps({"version": 1, "filetypes": []}).encode(),
    b" " * (acceptance.MAX_FILE_BYTES + 1),
]


@pytest.mark.parametrize("content", CORRUPT, ids=range(len(CORRUPT)))
def test_a_corrupt_file_is_reset_with_exactly_one_message(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "stats.json"
    path.write_bytes(content)
    stats, problem = AcceptanceStats.load(str(path))
    assert problem is not None
    assert str(path) in problem
    assert "starting afresh" in problem
    assert stats.totals().overall.shown == 0
    stats.shown("python")
    assert stats.flush() is None, "the reset was already told"
    again, problem_again = AcceptanceStats.load(str(path))
    assert problem_again is None
    assert again.totals().overall.shown == 1


def test_a_corrupt_file_is_rewritten_even_if_nothing_was_counted(tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    path.write_bytes(b"{not json")
    stats, problem = AcceptanceStats.load(str(path))
    assert problem is not None
    assert stats.flush() is None
    assert AcceptanceStats.load(str(path))[1] is None


def test_an_unreadable_file_is_told_once(tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    path.mkdir()  # unreadable as a file, whoever runs the test
    stats, problem = AcceptanceStats.load(str(path))
    assert problem is not None
    assert "cannot be read" in problem
    stats.shown("python")
    message = stats.flush()
    # A folder cannot be replaced by a file: that is a second, different problem.
    assert message is not None
    assert "cannot write" in message
    stats.shown("python")
    assert stats.flush() is None, "neither is told again"


def test_a_file_damaged_while_running_is_told_once_and_reset(tmp_path: Path) -> None:
    stats = fresh(tmp_path)
    stats.shown("python")
    stats.flush()
    (tmp_path / "stats.json").write_bytes(b"\x00\x01")
    stats.shown("lua")
    message = stats.flush()
    assert message is not None
    assert "starting afresh" in message
    assert on_disk(tmp_path)["overall"]["shown"] == 1
    stats.shown("lua")
    assert stats.flush() is None


def test_reset_forgets_everything_in_the_file_too(tmp_path: Path) -> None:
    clock = Clock()
    stats = fresh(tmp_path, clock)
    stats.shown("python", 10)
    stats.flush()
    stats.shown("lua", 20)
    clock.now += 86_400
    assert stats.reset() is None
    assert stats.totals().overall.shown == 0
    assert not stats.dirty
    data = on_disk(tmp_path)
    assert data["overall"]["shown"] == 0
    assert data["filetypes"] == {}
    assert data["since"] == int(clock.now)
    assert fresh(tmp_path).totals().overall.shown == 0


def test_a_reset_that_could_not_be_written_is_written_by_the_next_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stats = fresh(tmp_path)
    stats.shown("python", 10)
    stats.flush()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "replace", broken_replace)
    message = stats.reset()
    assert message is not None
    assert "Read-only file system" in message
    assert on_disk(tmp_path)["overall"]["shown"] == 1
    monkeypatch.undo()
    stats.shown("lua")
    assert stats.flush() is None
    data = on_disk(tmp_path)
    assert data["overall"]["shown"] == 1, "the old count is gone, only the new one is kept"
    assert list(data["filetypes"]) == ["lua"]


# -- the report ------------------------------------------------------------------------------


def test_report_with_nothing_yet(tmp_path: Path) -> None:
    assert fresh(tmp_path).report() == "llama.nvim: no suggestion shown yet"


def test_report_table(tmp_path: Path) -> None:
    stats = fresh(tmp_path)
    for latency in range(10, 110, 10):
        stats.shown("python", latency)
    stats.shown("lua", 300)
    stats.shown("lua", 500)
    stats.accepted("python", "full", 40)
    stats.accepted("python", "line", 10)
    stats.accepted("python", "word", 3, continued=True)
    stats.accepted("lua", "word", 4)
    lines = stats.report().splitlines()
    assert lines[0].startswith("llama.nvim suggestions since 20")
    assert lines[1].split() == [
        "filetype", "shown", "accepted", "rate", "full", "line", "word", "chars",
        "p50", "ms", "p90", "ms",
    ]  # fmt: skip
    assert lines[2].split() == ["python", "10", "2", "20%", "1", "1", "1", "53", "50", "90"]
    assert lines[3].split() == ["lua", "2", "1", "50%", "0", "0", "1", "4", "300", "500"]
    assert lines[4].split() == ["all", "12", "3", "25%", "1", "1", "2", "57", "60", "300"]
    assert len(lines) == 5
    # Columns line up: every row is as wide as the header.
    assert len({len(line) for line in lines[1:]}) == 1


def test_report_without_latencies_or_shown_says_dash(tmp_path: Path) -> None:
    stats = fresh(tmp_path)
    stats.accepted("python", "full", 5)
    row = stats.report().splitlines()[2].split()
    assert row == ["python", "0", "1", "-", "1", "0", "0", "5", "-", "-"]


def test_report_includes_what_the_file_held(tmp_path: Path) -> None:
    first = fresh(tmp_path)
    first.shown("python", 70)
    first.flush()
    second = fresh(tmp_path)
    second.shown("python", 90)
    assert second.report().splitlines()[-1].split()[:2] == ["all", "2"]
