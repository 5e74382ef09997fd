""":LlamaStats in a real Neovim against a real llama-server.

An accept is counted (a word, then the rest of the same suggestion: one
suggestion accepted), the counts survive a restart of Neovim with the same
state folder, :LlamaStats reset clears them, and the file never holds any of
the user's text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakeserver import FakeServer, Reply
from tests.harness import (
    Editor,
    LlamaServer,
    assert_no_errors,
    caught_up,
    register_plugin,
    wait_until,
)
from tests.integration.test_completion import PY_SOURCE, fresh_line

pytestmark = pytest.mark.integration

STATS_FILE = "llama_nvim_acceptance.json"


def stats_row(editor: Editor, filetype: str) -> list[str]:
    """The cells of ``filetype``'s row in what :LlamaStats shows."""
    editor.nvim.command("messages clear")
    editor.nvim.command("LlamaStats")
    report = editor.wait_messages("llama.nvim suggestions since")
    editor.unblock()
    for line in report.splitlines():
        cells = line.split()
        if cells and cells[0] == filetype:
            return cells[1:]
    pytest.fail(f"no {filetype} row in :LlamaStats:\n{report}")


def test_an_accept_is_counted_kept_across_a_restart_and_reset(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    # A home of its own: the statistics file is shared by every Neovim using it.
    home = tmp_path / "home"
    home.mkdir()
    register_plugin(home)
    config = {"endpoint": llama_server.infill_url}
    stats_file = home / "xdg_state_home" / "nvim" / STATS_FILE
    typed: list[str] = []

    editor = Editor.start(home, tmp_path, config)
    try:
        editor.set_text(PY_SOURCE)
        for attempt in range(30):
            before, row, col = fresh_line(editor, f"    w{attempt} = ")
            typed.append(f"w{attempt}")
            hint = editor.wait_hint()
            if len(hint.inline.split()) >= 2 and not hint.below:
                break
        else:
            pytest.fail("no one-line suggestion with two words")
        editor.type("<C-B>")
        editor.wait_text_change(before)
        wait_until(editor.hint, what="the rest of the suggestion")
        editor.type("<Tab>")
        wait_until(lambda: editor.hint() is None, what="the whole suggestion taken")
        inserted = editor.lines()[row][col:]
        assert inserted
        shown, accepted, rate, full, line, word, chars, p50, p90 = stats_row(editor, "python")
        assert int(shown) >= 1
        assert (accepted, full, line, word) == ("1", "1", "0", "1"), "one suggestion, two accepts"
        assert int(chars) == len(inserted)
        assert rate.endswith("%")
        assert p50.isdigit(), "a suggestion from the server has its latency"
        assert p90.isdigit()
        assert_no_errors(editor)
        # What the file must keep: the figures once the editor is idle (the key
        # after the accept may still bring another suggestion to count).
        caught_up(editor)
        shown, accepted, rate, full, line, word, chars, p50, p90 = stats_row(editor, "python")
    finally:
        editor.close()  # VimLeavePre writes the file

    wait_until(stats_file.exists, what="the statistics file")
    saved = stats_file.read_text()
    data = json.loads(saved)
    assert data["filetypes"]["python"]["accepted"] == 1
    # Only filetype names and numbers: none of the buffer's text, the
    # suggestion or the file's name.
    for text in [*typed, inserted.strip(), "def add", "return a + b", str(tmp_path)]:
        assert text not in saved, text
    assert set(data) == {"version", "since", "overall", "filetypes"}
    assert set(data["filetypes"]) == {"python"}

    editor = Editor.start(home, tmp_path, config)
    try:
        cells = stats_row(editor, "python")
        assert cells[1:7] == [accepted, rate, full, line, word, chars], "kept across a restart"

        editor.nvim.command("LlamaStats reset")
        editor.wait_messages("llama.nvim: suggestion statistics reset")
        editor.nvim.command("LlamaStats")
        editor.wait_messages("llama.nvim: no suggestion shown yet")
        assert json.loads(stats_file.read_text())["overall"]["accepted"] == 0
        assert_no_errors(editor)
    finally:
        editor.close()
    assert json.loads(stats_file.read_text())["filetypes"] == {}, "still reset after exit"


def test_characters_are_counted_in_any_text_the_server_sends(tmp_path: Path) -> None:
    """A NUL and a two-byte character: three characters, and the accept still works."""
    home = tmp_path / "home"
    home.mkdir()
    register_plugin(home)
    fake = FakeServer(lambda r: Reply.completion("é\x00b"))
    editor = Editor.start(home, tmp_path, {"endpoint": fake.infill_url})
    try:
        editor.set_text("")
        editor.type("i")
        editor.type_slowly("x = ")
        editor.wait_hint()
        editor.type("<Tab>")
        wait_until(lambda: editor.hint() is None, what="the accept")
        assert editor.cursor() == (0, len("x = é\x00b".encode())), "after the inserted text"
        cells = stats_row(editor, "python")
        assert (cells[1], cells[3], cells[6]) == ("1", "1", "3")
        assert_no_errors(editor)
    finally:
        editor.close()
        fake.close()
