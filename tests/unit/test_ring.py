"""ring: the queue and ring buffer of extra-context chunks, and the project helpers.

Token counts are the text's length (``count_tokens=len``) so every budget in
these tests can be worked out by hand: a chunk costs
``len(filename + "\\n" + text) + 1``.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

from llama_nvim.protocol import ExtraChunk
from llama_nvim.ring import (
    MIN_LINES,
    Chunk,
    Ring,
    chunk_lines,
    covered_by,
    jaccard,
    line_set,
    project_of,
    relative_name,
    words_of,
)

P = "/proj"
Q = "/other"


def lines_of(tag: str, n: int = 3) -> list[str]:
    """``n`` lines whose words occur in no other tag's lines (Jaccard 0 between tags)."""
    return [f"{tag}_{i} = {tag}{i}()" for i in range(n)]


def text_of(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


# Thirty distinct words over three lines: changing one word keeps the word
# Jaccard at 29/31 = 0.935 (> 0.9), changing three drops it to 27/33 = 0.818.
BASE_WORDS = [f"w{i}" for i in range(30)]


def worded(words: list[str]) -> list[str]:
    return [" ".join(words[0:10]), " ".join(words[10:20]), " ".join(words[20:30])]


def variant(changed: int, tag: str = "v") -> list[str]:
    words = list(BASE_WORDS)
    for i in range(changed):
        words[i] = f"{tag}{i}"
    return worded(words)


def make_ring(capacity: int = 4, **options: float) -> Ring:
    return Ring(capacity, count_tokens=len, **options)


def filled(capacity: int, tags: list[str], project: str = P) -> Ring:
    """A ring with one admitted chunk per tag, in order."""
    ring = make_ring(capacity)
    for tag in tags:
        assert ring.offer(lines_of(tag), f"{tag}.py", project)
        assert ring.admit_one() is not None
    return ring


def held(ring: Ring, project: str = P) -> list[Chunk]:
    """The ring's chunks of ``project``, oldest first (no budget leaves any out)."""
    return ring.extra_for(project, sys.maxsize)


def texts(chunks: list[Chunk]) -> list[str]:
    return [c.text for c in chunks]


# -- helpers ------------------------------------------------------------------------------


def test_words_of_takes_word_tokens() -> None:
    assert words_of("def f(a_b, c2):\n  return a_b+c2") == frozenset(
        {"def", "f", "a_b", "c2", "return"}
    )


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (set(), set(), 1.0),
        ({"a"}, set(), 0.0),
        ({"a", "b"}, {"a", "b"}, 1.0),
        ({"a", "b", "c"}, {"a", "b", "d"}, 0.5),
        ({"a"}, {"b"}, 0.0),
    ],
)
def test_jaccard(a: set[str], b: set[str], expected: float) -> None:
    assert jaccard(frozenset(a), frozenset(b)) == expected


def test_line_set_strips_and_drops_blank_lines() -> None:
    assert line_set("  a = 1\n\n\t\nb\n  a = 1  \n") == frozenset({"a = 1", "b"})


def test_covered_by_is_the_share_of_chunk_lines_already_local() -> None:
    chunk = frozenset({"a", "b", "c", "d"})
    assert covered_by(chunk, frozenset({"a", "b", "x"})) == 0.5
    assert covered_by(chunk, frozenset()) == 0.0
    assert covered_by(frozenset(), frozenset({"a"})) == 1.0


# -- offering -----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, MIN_LINES - 1])
def test_texts_under_three_lines_are_ignored(n: int) -> None:
    ring = make_ring()
    assert not ring.offer(lines_of("a", n), "a.py", P)
    assert ring.queued == 0


@pytest.mark.parametrize(("size", "lines"), [(64, 32), (16, 8), (7, 3), (3, MIN_LINES)])
def test_the_editor_gathers_half_of_ring_chunk_size_never_fewer_than_the_ring_keeps(
    size: int, lines: int
) -> None:
    assert chunk_lines(size) == lines


def test_three_lines_are_enough() -> None:
    ring = make_ring()
    assert ring.offer(lines_of("a", MIN_LINES), "a.py", P)
    assert ring.queued == 1


@pytest.mark.parametrize("lines", [["", "", ""], ["  ", "\t", ""], [" "] * 10])
def test_blank_texts_are_ignored(lines: list[str]) -> None:
    ring = make_ring()
    assert not ring.offer(lines, "a.py", P)
    assert ring.queued == 0


def test_a_queued_chunk_holds_its_text_name_project_and_token_count() -> None:
    ring = make_ring()
    ring.offer(["a", "", "c"], "src/a.py", P)
    chunk = ring.admit_one()
    assert chunk is not None
    assert chunk.text == "a\n\nc\n"
    assert chunk.filename == "src/a.py"
    assert chunk.project == P
    assert chunk.words == frozenset({"a", "c"})
    assert chunk.lines == frozenset({"a", "c"})
    assert chunk.tokens == len("src/a.py\n" + "a\n\nc\n") + 1
    assert chunk.to_extra() == ExtraChunk("src/a.py", "a\n\nc\n")


def test_tokens_are_counted_on_admission_not_on_offer() -> None:
    counted: list[str] = []

    def count(text: str) -> int:
        counted.append(text)
        return 7

    ring = Ring(4, count_tokens=count)
    for tag in "abc":
        ring.offer(lines_of(tag), f"{tag}.py", P)
    assert counted == []  # offering happens on the keystroke path
    chunk = ring.admit_one()
    assert chunk is not None
    assert counted == ["a.py\n" + text_of(lines_of("a"))]
    assert chunk.tokens == 8


def test_an_exact_duplicate_is_skipped_while_queued() -> None:
    ring = make_ring()
    assert ring.offer(lines_of("a"), "a.py", P)
    assert not ring.offer(lines_of("a"), "a.py", P)
    assert not ring.offer(lines_of("a"), "elsewhere.py", P)  # same text, same project
    assert ring.queued == 1


def test_an_exact_duplicate_is_skipped_once_in_the_ring() -> None:
    ring = filled(4, ["a"])
    assert not ring.offer(lines_of("a"), "a.py", P)
    assert ring.queued == 0
    assert ring.state().chunks == 1


def test_exact_duplicates_are_judged_per_project() -> None:
    ring = make_ring()
    assert ring.offer(lines_of("a"), "a.py", P)
    assert ring.offer(lines_of("a"), "a.py", Q)


def test_an_identical_chunk_in_another_project_does_not_evict_the_first_projects_copy() -> None:
    # Duplicates are judged per project, so both projects may hold the same
    # text. Admitting the other project's copy must not take project P's
    # chunk away (P's requests would lose context they had).
    ring = filled(4, ["a"], project=P)
    assert ring.offer(lines_of("a"), "a.py", Q)
    ring.admit_one()
    assert texts(ring.extra_for(P, 10_000)) == [text_of(lines_of("a"))]
    assert texts(ring.extra_for(Q, 10_000)) == [text_of(lines_of("a"))]
    assert ring.evicted == 0


def test_a_near_duplicate_replaces_the_queued_chunk() -> None:
    ring = make_ring()
    assert ring.offer(variant(0), "a.py", P)
    assert ring.offer(lines_of("x"), "x.py", P)
    assert ring.offer(variant(1), "a.py", P)
    assert ring.queued == 2
    first, second = ring.admit_one(), ring.admit_one()
    assert first is not None
    assert second is not None
    # the older copy is gone; the newer one queues behind what was already there
    assert [first.text, second.text] == [text_of(lines_of("x")), text_of(variant(1))]
    assert ring.evicted == 0


def test_a_chunk_not_similar_enough_is_queued_beside_the_other() -> None:
    ring = make_ring()
    ring.offer(variant(0), "a.py", P)
    ring.offer(variant(3), "a.py", P)
    assert ring.queued == 2


def test_similarity_must_exceed_the_threshold_to_replace() -> None:
    # {a, b, c} vs {a, b, d}: Jaccard exactly 0.5
    ring = make_ring(similarity=0.5)
    ring.offer(["a", "b", "c"], "x.py", P)
    ring.offer(["a", "b", "d"], "x.py", P)
    assert ring.queued == 2
    ring.offer(["a", "b", "c", "d"], "x.py", P)  # 3/4 with both: replaces both
    assert ring.queued == 1


def test_admitting_a_near_duplicate_evicts_the_similar_ring_chunk() -> None:
    ring = make_ring(4)
    ring.offer(lines_of("x"), "x.py", P)
    ring.offer(variant(0), "a.py", P)
    ring.offer(lines_of("y"), "y.py", P)
    for _ in range(3):
        ring.admit_one()
    assert ring.offer(variant(1), "a.py", P)
    ring.admit_one()
    assert texts(held(ring)) == [
        text_of(lines_of("x")),
        text_of(lines_of("y")),
        text_of(variant(1)),
    ]
    assert ring.evicted == 1


def test_the_queue_is_bounded_by_the_capacity_dropping_the_oldest() -> None:
    ring = make_ring(3)
    for tag in "abcde":
        assert ring.offer(lines_of(tag), f"{tag}.py", P)
        assert ring.queued <= 3
    assert ring.queued == 3
    admitted = [ring.admit_one() for _ in range(3)]
    assert [c.filename for c in admitted if c is not None] == ["c.py", "d.py", "e.py"]
    assert ring.admit_one() is None


def test_a_ring_of_capacity_zero_takes_nothing() -> None:
    ring = make_ring(0)
    assert not ring.offer(lines_of("a", 10), "a.py", P)
    assert ring.queued == 0
    assert ring.admit_one() is None
    assert ring.extra_for(P, 10_000) == []
    assert ring.state().describe() == "ring 0/0, queued 0, evicted 0, extra 0 tok"


# -- admission ----------------------------------------------------------------------------


def test_admission_is_first_in_first_out() -> None:
    ring = make_ring(8)
    for tag in "abcd":
        ring.offer(lines_of(tag), f"{tag}.py", P)
    order = []
    while (chunk := ring.admit_one()) is not None:
        order.append(chunk.filename)
    assert order == ["a.py", "b.py", "c.py", "d.py"]
    assert [c.filename for c in held(ring)] == order


def test_admitting_past_capacity_evicts_from_the_front_and_counts() -> None:
    ring = filled(3, ["a", "b", "c", "d", "e"])
    assert [c.filename for c in held(ring)] == ["c.py", "d.py", "e.py"]
    assert ring.evicted == 2
    stats = ring.state()
    assert (stats.chunks, stats.capacity, stats.queued, stats.evicted) == (3, 3, 0, 2)


def test_admit_one_on_an_empty_queue_does_nothing() -> None:
    ring = filled(3, ["a"])
    assert ring.admit_one() is None
    assert [c.filename for c in held(ring)] == ["a.py"]


def in_admission_order(ring: Ring, admitted: list[Chunk]) -> list[Chunk]:
    """Every chunk the ring holds, in the order it was admitted.

    Within each project that is checked to be the ring's own order (what
    requests send); across projects only which chunks are held is observable.
    """

    def admitted_at(chunk: Chunk) -> int:
        return max(i for i, c in enumerate(admitted) if c is chunk)

    everything: list[Chunk] = []
    for project in (P, Q):
        mine = held(ring, project)
        assert mine == sorted(mine, key=admitted_at), f"{project}'s chunks reordered"
        everything += mine
    assert len(everything) == ring.state().chunks
    return sorted(everything, key=admitted_at)


def test_the_order_of_held_chunks_never_changes() -> None:
    # Random offers (with near-duplicates) and admissions: the ring only ever
    # drops chunks and appends the newcomer at the back.
    rng = random.Random(1234)
    pool = [variant(i % 4, tag=f"t{i // 4}") for i in range(12)] + [
        lines_of(f"u{i}") for i in range(12)
    ]
    ring = make_ring(5)
    admitted: list[Chunk] = []
    for step in range(600):
        if rng.random() < 0.6:
            lines = rng.choice(pool)
            ring.offer(lines, "f.py", rng.choice([P, Q]))
            continue
        before = in_admission_order(ring, admitted)
        chunk = ring.admit_one()
        if chunk is not None:
            admitted.append(chunk)
        after = in_admission_order(ring, admitted)
        if chunk is None:
            assert after == before
            continue
        assert after[-1] is chunk
        assert held(ring, chunk.project)[-1] is chunk
        kept = after[:-1]
        # what stayed is the old ring with some chunks left out, in the same order
        it = iter(before)
        assert all(any(old is c for old in it) for c in kept), f"reordered at step {step}"
        assert len(after) <= ring.capacity
        if all(jaccard(c.words, chunk.words) <= ring.similarity for c in before):
            assert after == [*before, chunk][-ring.capacity :]


# -- choosing what to send --------------------------------------------------------------------


def test_extra_for_sends_the_projects_chunks_oldest_first() -> None:
    ring = make_ring(8)
    for tag, project in [("a", P), ("b", Q), ("c", P), ("d", Q)]:
        ring.offer(lines_of(tag), f"{tag}.py", project)
        ring.admit_one()
    assert [c.filename for c in ring.extra_for(P, 10_000)] == ["a.py", "c.py"]
    assert [c.filename for c in ring.extra_for(Q, 10_000)] == ["b.py", "d.py"]
    assert ring.extra_for("/nowhere", 10_000) == []
    assert ring.state(P).chunks == 2
    assert ring.state().chunks == 4


def test_chunks_the_local_context_covers_are_left_out_without_reordering() -> None:
    ring = filled(8, ["a", "b", "c", "d"])
    local = line_set(text_of(lines_of("b")) + text_of(lines_of("d")[:2]))
    assert [c.filename for c in ring.extra_for(P, 10_000, local)] == ["a.py", "c.py"]
    # the ring itself is untouched
    assert [c.filename for c in held(ring)] == ["a.py", "b.py", "c.py", "d.py"]


def test_a_chunk_covered_exactly_half_is_kept() -> None:
    ring = make_ring()
    ring.offer(["l1", "l2", "l3", "l4"], "a.py", P)
    ring.admit_one()
    half = frozenset({"l1", "l2"})
    assert len(ring.extra_for(P, 10_000, half)) == 1
    more = frozenset({"l1", "l2", "l3"})
    assert ring.extra_for(P, 10_000, more) == []


def test_local_overlap_ignores_indentation_and_blank_lines() -> None:
    ring = make_ring()
    ring.offer(["  x = 1", "", "  y = 2", "z = 3"], "a.py", P)
    ring.admit_one()
    local = line_set("x = 1\n\ty = 2\n")  # 2 of 3 non-blank lines
    assert ring.extra_for(P, 10_000, local) == []


def test_no_local_lines_means_no_overlap_filter() -> None:
    ring = filled(4, ["a"])
    assert len(ring.extra_for(P, 10_000, None)) == 1
    assert len(ring.extra_for(P, 10_000, frozenset())) == 1


def test_the_budget_drops_whole_chunks_from_the_front() -> None:
    ring = filled(8, ["a", "b", "c", "d"])
    cost = [c.tokens for c in held(ring)]
    assert len(set(cost)) == 1
    each = cost[0]
    assert len(ring.extra_for(P, 4 * each)) == 4
    assert ring.last_extra_tokens == 4 * each
    assert [c.filename for c in ring.extra_for(P, 4 * each - 1)] == ["b.py", "c.py", "d.py"]
    assert ring.last_extra_tokens == 3 * each
    assert [c.filename for c in ring.extra_for(P, each)] == ["d.py"]
    assert ring.extra_for(P, each - 1) == []
    assert ring.last_extra_tokens == 0
    assert ring.extra_for(P, 0) == []


def test_the_budget_never_skips_a_big_chunk_to_keep_an_older_small_one() -> None:
    ring = make_ring(8)
    ring.offer(lines_of("s1"), "s.py", P)
    ring.offer(lines_of("big", 20), "big.py", P)
    ring.offer(lines_of("s2"), "s.py", P)
    for _ in range(3):
        ring.admit_one()
    small1, big, small2 = held(ring)
    budget = small1.tokens + small2.tokens  # both small ones would fit, but not in order
    assert big.tokens > budget
    assert ring.extra_for(P, budget) == [small2]


def test_the_first_chunk_sent_does_not_depend_on_the_local_context() -> None:
    # Leaving "c" out as local must not bring "a" back in at the front: that
    # would shift every token after it in the server's cache.
    ring = filled(8, ["a", "b", "c"])
    each = held(ring)[0].tokens
    local = line_set(text_of(lines_of("c")))
    assert [c.filename for c in ring.extra_for(P, 2 * each, local)] == ["b.py"]
    assert ring.last_extra_tokens == each
    assert [c.filename for c in ring.extra_for(P, 2 * each)] == ["b.py", "c.py"]


@pytest.mark.parametrize("seed", range(10))
def test_what_is_sent_is_the_budgeted_window_with_some_chunks_left_out(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(12)]
    ring = filled(12, names)
    each = held(ring)[0].tokens
    for _ in range(20):
        budget = rng.randrange(0, 14 * each)
        window = ring.extra_for(P, budget)
        local = line_set(text_of(lines_of(rng.choice(names))))
        sent = ring.extra_for(P, budget, local)
        assert all(c in window for c in sent)
        assert [c for c in window if c in sent] == sent  # same order
        assert len(window) - len(sent) <= 1


def test_other_projects_chunks_do_not_count_against_the_budget() -> None:
    ring = make_ring(8)
    for tag, project in [("a", P), ("b", Q), ("c", Q), ("d", P)]:
        ring.offer(lines_of(tag), f"{tag}.py", project)
        ring.admit_one()
    each = held(ring)[0].tokens
    assert [c.filename for c in ring.extra_for(P, 2 * each)] == ["a.py", "d.py"]


def test_stats_describe() -> None:
    ring = filled(3, ["a", "b", "c", "d"])
    ring.offer(lines_of("e"), "e.py", P)
    ring.extra_for(P, 10_000)
    each = held(ring)[0].tokens
    assert ring.state().describe() == f"ring 3/3, queued 1, evicted 1, extra {3 * each} tok"


# -- projects -----------------------------------------------------------------------------------


def test_project_of_is_the_git_root() -> None:
    exists = {"/home/u/proj/.git"}.__contains__
    assert project_of("/home/u/proj/src/pkg/m.py", "/tmp", exists) == "/home/u/proj"
    assert project_of("/home/u/proj/m.py", "/tmp", exists) == "/home/u/proj"


def test_project_of_takes_the_nearest_git_root() -> None:
    exists = {"/r/.git", "/r/vendor/lib/.git"}.__contains__
    assert project_of("/r/vendor/lib/x/y.c", "/cwd", exists) == "/r/vendor/lib"
    assert project_of("/r/vendor/z.c", "/cwd", exists) == "/r"


def test_project_of_without_a_git_root_is_the_working_directory() -> None:
    assert project_of("/a/b/c.py", "/work", {"/a/b/c/.git"}.__contains__) == "/work"
    assert project_of("", "/work", {"/.git"}.__contains__) == "/work"


def test_project_of_a_repository_at_the_filesystem_root() -> None:
    assert project_of("/etc/x.conf", "/work", {"/.git"}.__contains__) == "/"


def test_project_of_looks_for_git_in_the_files_directory_and_above_only() -> None:
    seen: list[str] = []

    def exists(path: str) -> bool:
        seen.append(path)
        return False

    assert project_of("/a/b/c.py", "/w", exists) == "/w"
    assert seen == ["/a/b/.git", "/a/.git", "/.git"]


def test_project_of_counts_a_git_file_as_in_a_worktree(tmp_path: Path) -> None:
    worktree = tmp_path / "wt"
    (worktree / "src").mkdir(parents=True)
    (worktree / ".git").write_text("gitdir: /elsewhere/.git/worktrees/wt\n")
    assert project_of(str(worktree / "src" / "m.py"), "/cwd") == str(worktree)


def test_project_of_with_a_git_directory_on_disk(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "a" / "b").mkdir(parents=True)
    assert project_of(str(repo / "a" / "b" / "m.py"), "/cwd") == str(repo)
    outside = tmp_path / "plain"
    outside.mkdir()
    # tmp_path itself is not in a repository (pytest's tmp dirs never are)
    if not any((p / ".git").exists() for p in [outside, *outside.parents]):
        assert project_of(str(outside / "m.py"), "/cwd") == "/cwd"


@pytest.mark.parametrize(
    ("filename", "project", "expected"),
    [
        ("/p/src/m.py", "/p", "src/m.py"),
        ("/p/m.py", "/p", "m.py"),
        ("/p/src/m.py", "/p/", "src/m.py"),
        ("/p2/m.py", "/p", "m.py"),  # a sibling whose name starts like the project
        ("/q/src/m.py", "/p", "m.py"),  # outside the project: the base name only
        ("/etc/x.conf", "/", "etc/x.conf"),
        ("", "/p", "untitled"),
        ("/p/m.py", "", "m.py"),
    ],
)
def test_relative_name(filename: str, project: str, expected: str) -> None:
    assert relative_name(filename, project) == expected


def test_relative_name_uses_the_os_separator() -> None:
    assert relative_name(os.sep.join(["", "p", "a", "b.py"]), os.sep + "p") == os.sep.join(
        ["a", "b.py"]
    )
