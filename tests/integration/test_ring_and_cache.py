"""Extra context, type-through and speculative FIM, as a user meets them in Neovim."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakeserver import FakeServer, Received, Reply
from tests.harness import Editor, Hint, LlamaServer, assert_no_errors, settle, wait_until

pytestmark = pytest.mark.integration

REAL_SOURCE = Path(httpx.__file__).with_name("_models.py").read_text().split("\n")


def make_project(root: Path, files: dict[str, list[str]]) -> Path:
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    for name, lines in files.items():
        (root / name).write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def fast_ring() -> dict[str, object]:
    return {"ring_update_ms": 50, "ring_chunk_size": 16}


def suggestion_where(editor: Editor, wanted: Callable[[Hint], bool], tries: int, what: str) -> Hint:
    """Ask on fresh lines (no autoindent) until the model suggests what the test needs."""
    editor.set_text("def f():\n", filetype="python")
    editor.nvim.command("setlocal noautoindent nosmartindent nocindent indentexpr=")
    for attempt in range(tries):
        editor.type("<Esc>Go")
        editor.type_slowly(f"v{attempt} = ")
        hint = editor.wait_hint()
        if wanted(hint):
            return hint
    pytest.fail(f"no {what} in {tries} tries")


def test_typing_through_a_suggestion_sends_no_request(editor: Editor) -> None:
    hint = suggestion_where(
        editor,
        lambda h: len(h.inline) >= 4 and h.inline[:3].isprintable() and "\t" not in h.inline,
        tries=20,
        what="a suggestion long enough to type through",
    )
    requests = settle(editor)["user_requests"]
    for typed in range(1, 4):
        editor.type_slowly(hint.inline[typed - 1])
        shown = wait_until(editor.hint, what="the rest of the suggestion")
        assert shown.inline == hint.inline[typed:]
    assert settle(editor)["user_requests"] == requests


def plain(text: str) -> bool:
    """Shown exactly as typed: no tab, nothing the hint would display otherwise."""
    return text.isascii() and text.isprintable()


def test_typing_a_suggestions_first_line_and_enter_shows_its_next_line(editor: Editor) -> None:
    hint = suggestion_where(
        editor,
        lambda h: (
            len(h.below) >= 1
            and all(map(plain, [h.inline, *h.below]))
            and len(h.below[0].strip()) >= 2
        ),
        tries=40,
        what="a suggestion of two lines to type through",
    )
    lines = [hint.inline, *hint.below]
    before = settle(editor)
    editor.type_slowly(lines[0])
    editor.type("<CR>")
    row = hint.row + 1

    def shown_at(col: int) -> Callable[[], Hint | None]:
        def probe() -> Hint | None:
            shown = editor.hint()
            return shown if shown is not None and (shown.row, shown.col) == (row, col) else None

        return probe

    shown = wait_until(shown_at(0), what="the next line")
    assert (shown.inline, shown.below) == (lines[1], lines[2:])
    editor.type_slowly(lines[1][0])
    shown = wait_until(shown_at(1), what="the rest of it")
    assert (shown.inline, shown.below) == (lines[1][1:], lines[2:])
    after = settle(editor)
    # The hint on screen followed the typing: neither a request nor the cache.
    assert (after["user_requests"], after["cache_hits"]) == (
        before["user_requests"],
        before["cache_hits"],
    )
    text = editor.text()
    editor.type("<Tab>")
    editor.wait_text_change(text)
    assert editor.lines()[row:] == lines[1:]


def test_after_tab_the_next_suggestion_comes_from_the_speculative_request(
    editor: Editor,
) -> None:
    editor.set_text("import os\n", filetype="python")
    editor.type("Go")
    editor.type_slowly("path = ")
    editor.wait_hint()
    before = settle(editor)
    assert before["speculative"] >= 1
    before_text = editor.text()

    editor.type("<Tab>")
    editor.wait_text_change(before_text)
    editor.wait_hint()
    after = settle(editor)
    assert after["user_requests"] == before["user_requests"], "no request waited for"
    assert after["cache_hits"] + after["speculative_adopted"] > (
        before["cache_hits"] + before["speculative_adopted"]
    )


def test_chunks_are_gathered_primed_and_sent(
    make_editor: Callable[..., Editor],
    llama_server: LlamaServer,
    tmp_path: Path,
    fast_ring: dict[str, object],
) -> None:
    project = make_project(
        tmp_path / "proj", {"models.py": REAL_SOURCE[:200], "main.py": REAL_SOURCE[200:400]}
    )
    editor = make_editor({"endpoint": llama_server.infill_url, **fast_ring})
    editor.nvim.command(f"cd {project}")
    editor.nvim.command("edit models.py")
    editor.type("50G")
    editor.type("yy5j")  # a one-line yank is too short to keep ...
    editor.type("y10j")  # ... ten lines are kept
    editor.nvim.command("edit main.py")
    stats = editor.wait_stats(
        lambda s: s["ring_chunks"] >= 3 and s["primes"] >= 1, "chunks to enter the ring while idle"
    )
    assert stats["chunks_offered"] >= 3

    editor.type("Go")
    editor.type_slowly("result = ")
    editor.wait_hint()
    stats = settle(editor)
    assert stats["last_extra_chunks"] >= 1
    assert stats["last_cache_n"] > stats["last_prompt_n"], "the primed context was reused"


def test_a_yank_shorter_than_three_lines_is_not_kept(editor: Editor) -> None:
    # The ring's rule alone (ring.py): the editor sends every yank. A modified
    # buffer of ten lines sends no other chunk (none on entering or leaving it,
    # no jump over 32 lines). Each :normal returns after TextYankPost has
    # sent its chunk, and the stats request travels behind it.
    editor.set_text("\n".join(f"yanked_{n} = {n}" for n in range(10)))
    offered = editor.stats()["chunks_offered"]
    editor.nvim.command("normal! ggyj")  # two lines
    assert editor.stats()["chunks_offered"] == offered
    editor.nvim.command("normal! 5Gy2j")  # three lines
    assert editor.stats()["chunks_offered"] == offered + 1


@pytest.fixture
def recorder() -> Iterator[FakeServer]:
    def answer(request: Received) -> Reply:
        return Reply.completion("pass")

    server = FakeServer(answer)
    yield server
    server.close()


def test_secrets_and_other_projects_never_reach_the_server(
    make_editor: Callable[..., Editor],
    recorder: FakeServer,
    tmp_path: Path,
    fast_ring: dict[str, object],
) -> None:
    project_a = make_project(
        tmp_path / "a", {"alpha.py": REAL_SOURCE[:100], ".env": ["API_TOKEN=hunter2"] * 10}
    )
    project_b = make_project(tmp_path / "b", {"beta.py": REAL_SOURCE[300:400]})
    # A short local window, so chunks from the top of beta.py are not already
    # in the local context when typing at its end (those would be left out).
    editor = make_editor({"endpoint": recorder.infill_url, "n_prefix": 16, **fast_ring})

    editor.nvim.command(f"edit {project_a / 'alpha.py'}")
    editor.type("20Gy10j")
    editor.nvim.command(f"edit {project_a / '.env'}")
    editor.type("ggy5j")
    editor.type("GoNEW=1")
    editor.type("<Esc>")
    editor.nvim.command(f"edit! {project_b / 'beta.py'}")
    editor.type("10Gy10j")
    editor.wait_stats(lambda s: s["ring_chunks"] >= 4 and not s["ring_queued"], "ring filled")

    editor.type("Go")
    editor.type_slowly("z = ")
    editor.wait_hint()
    settle(editor)
    bodies = [r.json() for r in recorder.infill_requests()]
    assert bodies
    for body in bodies:
        text = json.dumps(body)
        assert "hunter2" not in text
        assert "NEW=1" not in text
    fim = [b for b in bodies if b["n_predict"] > 0]
    names = {c["filename"] for b in fim for c in b["input_extra"]}
    assert names == {"beta.py"}, names


def test_next_and_previous_cycle_through_suggestions_and_tab_takes_the_shown_one(
    editor: Editor,
) -> None:
    editor.set_text("import os\n", filetype="python")
    editor.type("Go")
    editor.type_slowly("path = ")
    first = editor.wait_hint()

    def shown(label: str) -> Callable[[], Hint | None]:
        def probe() -> Hint | None:
            hint = editor.hint()
            return hint if hint is not None and f"suggestion {label}" in hint.info else None

        return probe

    editor.type("<M-]>")
    second = wait_until(shown("2/2"), what="another suggestion")
    assert (second.inline, second.below) != (first.inline, first.below)
    editor.type("<M-[>")
    back = wait_until(shown("1/2"), what="the first suggestion again")
    assert (back.inline, back.below) == (first.inline, first.below)
    requests = settle(editor)["user_requests"]
    editor.type("<M-]>")
    again = wait_until(shown("2/2"), what="the second suggestion again")
    assert (again.inline, again.below) == (second.inline, second.below)
    assert settle(editor)["user_requests"] == requests, "recalled, not asked again"

    before = editor.text()
    editor.type("<Tab>")
    editor.wait_text_change(before)
    (line,) = [text for text in editor.lines() if text.startswith("path = ")]
    inserted = line[len("path = ") :]
    assert editor.display(inserted, vcol=len("path = ")) == second.inline
    assert_no_errors(editor)
