"""layout: a prefix start and a suffix split that hold still from one keystroke to the next."""

from __future__ import annotations

import itertools
import random

import pytest

from llama_nvim.context import Snapshot, build_local_context
from llama_nvim.layout import Layout

N_BATCH = 1024
PREFIX_CAP = 3 * (N_BATCH // 4)


def count(text: str) -> int:
    """A stand-in tokenizer: one token per 4 characters, at least one per line."""
    return len(text) // 4 + 1


def code(n: int, width: int = 30) -> list[str]:
    """``n`` distinct lines of about ``width`` characters."""
    return [f"    value_{i:05d} = compute({i}, {'x' * (width - 30)})" for i in range(n)]


def view(
    lines: list[str], row: int, before: str = "", *, n_prefix: int = 256, n_suffix: int = 64,
    buf: int = 1,
) -> Snapshot:  # fmt: skip
    """What the editor sends with the cursor on ``row`` (that line replaced by ``before``)."""
    top = max(0, row - n_prefix)
    return Snapshot(
        buf=buf, tick=1, row=row, col=len(before), above=tuple(lines[top:row]), before=before,
        after="", below=tuple(lines[row + 1 : row + 1 + n_suffix]),
    )  # fmt: skip


def layout(n_suffix_fim: int = 3, n_batch: int = N_BATCH) -> Layout:
    return Layout(n_batch, n_suffix_fim, count)


def tokens(text: str) -> int:
    return sum(count(line + "\n") for line in text.split("\n")[:-1])


# -- small files: nothing changes ---------------------------------------------------------------


def test_a_short_file_keeps_its_whole_prefix_and_splits_its_suffix() -> None:
    lines = code(10)
    snapshot = view(lines, 5, "    x = ")
    placed = layout().place(snapshot, "a.py")
    assert placed.local == build_local_context(view(lines, 5, "    x = ", n_suffix=3))
    assert placed.local.prefix == "".join(f"{x}\n" for x in lines[:5])
    assert placed.far_suffix is not None
    assert placed.far_suffix.text == "".join(f"{x}\n" for x in lines[9:])


def test_with_few_lines_below_everything_stays_in_the_fim_suffix() -> None:
    lines = code(10)
    snapshot = view(lines, 7, "    x = ")
    placed = layout().place(snapshot, "a.py")
    assert placed.local == build_local_context(snapshot)
    assert placed.far_suffix is None


def test_n_suffix_fim_at_least_n_suffix_is_llama_vims_plain_layout() -> None:
    lines = code(400)
    snapshot = view(lines, 100, "    x = ", n_prefix=20)
    placed = layout(n_suffix_fim=64).place(snapshot, "a.py")
    assert placed.local.suffix == build_local_context(snapshot).suffix
    assert placed.far_suffix is None


# -- the suffix split -----------------------------------------------------------------------


def test_the_far_suffix_follows_the_near_lines_within_the_servers_suffix_budget() -> None:
    lines = code(400)
    placed = layout().place(view(lines, 100, "    x = "), "pkg/a.py")
    assert placed.local.suffix == "\n" + "".join(f"{x}\n" for x in lines[101:104])
    far = placed.far_suffix
    assert far is not None
    assert far.filename == "pkg/a.py"
    n_far = far.text.count("\n")
    assert far.text == "".join(f"{x}\n" for x in lines[104 : 104 + n_far])
    assert tokens(far.text) <= N_BATCH // 4 < tokens(far.text) + count(lines[104 + n_far] + "\n")


def test_the_far_suffix_budget_is_in_server_tokens() -> None:
    lines = code(400)
    plain = layout().place(view(lines, 100), "a.py").far_suffix
    doubled = layout().place(view(lines, 100), "a.py", scale=2.0).far_suffix
    assert plain is not None
    assert doubled is not None
    assert 2 * tokens(doubled.text) <= N_BATCH // 4 < 2 * tokens(plain.text)


def test_typing_on_a_line_changes_only_the_typed_text() -> None:
    lines = code(400)
    keeper = layout()
    first = keeper.place(view(lines, 200, "    r"), "a.py")
    for typed in ("    re", "    ret", "    return", "    return x"):
        placed = keeper.place(view(lines, 200, typed), "a.py")
        assert placed.local.prefix == first.local.prefix
        assert placed.local.suffix == first.local.suffix
        assert placed.far_suffix == first.far_suffix
        assert placed.local.prompt == typed


def test_typing_new_lines_keeps_the_far_suffix_and_the_prefix_start() -> None:
    lines = code(400)
    keeper = layout()
    first = keeper.place(view(lines, 200, "    a"), "a.py")
    for n in range(1, 30):
        # n new lines typed above the cursor: the text below is the same.
        typed = [*lines[:200], *(f"    new_{i} = {i}" for i in range(n)), "", *lines[201:]]
        placed = keeper.place(view(typed, 200 + n, "    a"), "a.py")
        assert placed.far_suffix == first.far_suffix
        assert placed.local.suffix == first.local.suffix
        assert placed.local.prefix.startswith(first.local.prefix)


def test_moving_a_few_lines_keeps_the_far_suffix_then_it_is_anchored_again() -> None:
    lines = code(400)
    keeper = layout(n_suffix_fim=3)
    first = keeper.place(view(lines, 200), "a.py")
    assert first.far_suffix is not None
    for row in (201, 202, 199, 198, 197, 196):  # near lines: 2, 1, 4, 5, 6, 7... up to 6 kept
        placed = keeper.place(view(lines, row), "a.py")
        kept = 1 <= 204 - (row + 1) <= 6
        assert (placed.far_suffix == first.far_suffix) == kept, row
        near = placed.local.suffix.count("\n") - 1
        assert near == (204 - (row + 1) if kept else 3), row
    # Whatever the anchor, near + far are the lines right below the cursor, in order.
    placed = keeper.place(view(lines, 150), "a.py")
    assert placed.far_suffix is not None
    assert (placed.local.suffix + placed.far_suffix.text).startswith(
        "\n" + "".join(f"{x}\n" for x in lines[151:160])
    )


def test_another_buffer_gets_its_own_anchor() -> None:
    lines = code(400)
    keeper = layout()
    keeper.place(view(lines, 200), "a.py")
    other = keeper.place(view(lines, 201, buf=2), "b.py")
    assert other.local.suffix.count("\n") == 4  # "\n" + 3 near lines: anchored anew


# -- the prefix start -----------------------------------------------------------------------


def test_a_long_prefix_is_cut_below_the_servers_cap_and_its_start_holds() -> None:
    lines = code(2000)
    keeper = layout()
    first = keeper.place(view(lines, 1000, n_prefix=10_000), "a.py")
    assert 0.5 * PREFIX_CAP < tokens(first.local.prefix) <= 0.6 * PREFIX_CAP
    starts = set()
    for row in range(1001, 1100):
        placed = keeper.place(view(lines, row, n_prefix=10_000), "a.py")
        assert tokens(placed.local.prefix) <= 0.9 * PREFIX_CAP
        starts.add(placed.local.prefix.split("\n")[0])
    # About 0.3 of the cap gained per new start: a few starts over 100 lines,
    # not one per line.
    assert 2 <= len(starts) <= 6, len(starts)


def test_a_prefix_under_the_cap_is_sent_whole() -> None:
    lines = code(50)
    placed = layout().place(view(lines, 40), "a.py")
    assert placed.local.prefix == "".join(f"{x}\n" for x in lines[:40])


def test_a_sliding_window_does_not_push_out_the_start_on_every_line() -> None:
    # Short lines: 256 lines above fit under the cap, but the editor's window
    # slides with the cursor.
    lines = [f"x{i}" for i in range(3000)]
    keeper = layout()
    starts = [
        keeper.place(view(lines, row), "a.py").local.prefix.split("\n")[0]
        for row in range(1000, 1200)
    ]
    changes = sum(a != b for a, b in itertools.pairwise(starts))
    assert changes <= 200 // 64 + 1, changes


def test_moving_above_the_prefix_start_anchors_anew() -> None:
    lines = code(2000)
    keeper = layout()
    keeper.place(view(lines, 1000, n_prefix=10_000), "a.py")
    placed = keeper.place(view(lines, 500, n_prefix=10_000), "a.py")
    assert placed.local.prefix.endswith(lines[499] + "\n")
    assert 0.5 * PREFIX_CAP < tokens(placed.local.prefix) <= 0.6 * PREFIX_CAP


def test_a_changed_token_counter_is_used_after_forget_counts() -> None:
    lines = code(2000)
    counts = {"scale": 1}
    keeper = Layout(N_BATCH, 3, lambda text: count(text) * counts["scale"])
    before = keeper.place(view(lines, 1000, n_prefix=10_000), "a.py")
    counts["scale"] = 2
    keeper.forget_counts()
    after = keeper.place(view(lines, 1001, n_prefix=10_000), "a.py")
    assert 2 * tokens(after.local.prefix) <= 0.9 * PREFIX_CAP < 2 * tokens(before.local.prefix)


# -- whatever happens, the text is the editor's, in order --------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_random_walks_always_send_contiguous_text_within_the_caps(seed: int) -> None:
    rng = random.Random(seed)
    lines = code(1500, width=rng.choice([30, 60, 120]))
    n_fim = rng.choice([0, 1, 3, 8])
    keeper = layout(n_suffix_fim=n_fim)
    row = rng.randrange(len(lines))
    for _ in range(200):
        row = min(len(lines) - 1, max(0, row + rng.choice([-40, -3, -1, 0, 0, 1, 1, 2, 30])))
        buf = rng.choice([1, 1, 1, 2])
        snapshot = view(lines, row, "  y", n_prefix=rng.choice([256, 10_000]), buf=buf)
        placed = keeper.place(snapshot, "a.py")
        full = build_local_context(snapshot)
        assert full.prefix.endswith(placed.local.prefix)
        assert (
            tokens(placed.local.prefix) <= 0.9 * PREFIX_CAP or placed.local.prefix.count("\n") <= 1
        )
        assert placed.local.prompt == full.prompt
        far_text = placed.far_suffix.text if placed.far_suffix else ""
        assert full.suffix.startswith(placed.local.suffix + far_text)
        near = placed.local.suffix.count("\n") - 1
        assert near == len(snapshot.below) or (min(n_fim, 1) <= near <= 2 * n_fim)
        assert tokens(far_text) <= N_BATCH // 4
