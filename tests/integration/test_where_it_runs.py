"""Where suggestions run, in a real Neovim against a real llama-server behind a recording proxy.

The filetype table, the buffer's own switch (b:llama_enabled, :LlamaBufToggle)
and a project's .llamaignore: from a buffer they rule out, no request is made
and nothing of its text is gathered into the ring, so none of it ever reaches
the server; checked on every byte the server was sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness import Editor, LlamaServer, assert_no_errors, settle, wait_until
from tests.recording_proxy import RecordingProxy

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(llama_server: LlamaServer) -> Iterator[RecordingProxy]:
    server = RecordingProxy(llama_server.url)
    yield server
    server.close()


def write_file(path: Path, marker: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{marker}_{n} = {n}\n" for n in range(8)))


def use_buffer(editor: Editor, marker: str, *, expect_hint: bool) -> dict[str, int]:
    """Yank, type, ask with Ctrl+F, leave and save, as a user does; the counters after."""
    editor.type("ggy5j")  # a yank is gathered into the ring when allowed
    editor.type("Go")
    editor.type_slowly(f"v = '{marker}' + ", delay=0.02)
    if expect_hint:
        editor.wait_hint()
    else:
        editor.type("<C-F>")
    editor.type("<Esc>")
    wait_until(lambda: editor.mode() == "n", what="normal mode")
    editor.nvim.command("write")
    # Neovim has sent every event of the keys above before it asks the host
    # for its counters, so settle() sees them all handled.
    return settle(editor)


def ask_in_allowed_buffer(editor: Editor, name: str, marker: str) -> None:
    """Wait for the ring to take what was gathered, then get a suggestion in ``name``."""
    editor.wait_stats(lambda s: s["ring_chunks"] >= 1 and not s["ring_queued"], "the ring")
    editor.nvim.command(f"edit {name}")
    use_buffer(editor, marker, expect_hint=True)


def test_filetype_table_keeps_markdown_from_the_server_and_lets_python_through(
    make_editor: Callable[..., Editor], proxy: RecordingProxy, tmp_path: Path
) -> None:
    write_file(tmp_path / "notes.md", "MDMARK")
    write_file(tmp_path / "tool.py", "PYMARK")
    editor = make_editor(
        {
            "endpoint": proxy.infill_url,
            "ring_update_ms": 50,
            "filetypes": {"*": True, "markdown": False},
        }
    )
    editor.nvim.command(f"cd {tmp_path}")
    editor.nvim.command("edit notes.md")
    assert editor.nvim.eval("&filetype") == "markdown"
    stats = use_buffer(editor, "MDTYPED", expect_hint=False)
    assert stats["events"] > 0, "the keystrokes reached the host"
    assert proxy.infill_requests() == [], "a request was made from a markdown buffer"
    assert stats["chunks_offered"] == 0, "markdown text was gathered into the ring"

    editor.nvim.command("edit tool.py")
    stats = use_buffer(editor, "PYTYPED", expect_hint=True)
    assert stats["chunks_offered"] >= 1, "python text is gathered"
    ask_in_allowed_buffer(editor, "tool.py", "PYAGAIN")
    sent = proxy.sent()
    assert b"PYTYPED" in sent, "python buffers are asked about"
    assert b"PYMARK" in sent, "and their chunks reach the server"
    assert b"MDMARK" not in sent
    assert b"MDTYPED" not in sent
    assert_no_errors(editor)


def test_buffer_switch_and_buf_toggle(
    make_editor: Callable[..., Editor], proxy: RecordingProxy, tmp_path: Path
) -> None:
    write_file(tmp_path / "quiet.py", "QUIETMARK")
    editor = make_editor({"endpoint": proxy.infill_url, "ring_update_ms": 50})
    editor.nvim.command(f"cd {tmp_path}")
    # Set as a user's autocommand or ftplugin would: before the buffer is entered.
    editor.nvim.command("autocmd BufReadPost quiet.py let b:llama_enabled = v:false")
    editor.nvim.command("edit quiet.py")
    stats = use_buffer(editor, "QUIETTYPED", expect_hint=False)
    assert stats["events"] > 0, "the keystrokes reached the host"
    assert proxy.infill_requests() == [], "a request was made from a switched-off buffer"
    assert stats["chunks_offered"] == 0, "a switched-off buffer's text was gathered"

    editor.nvim.command("LlamaBufToggle")
    editor.wait_messages("llama.nvim: suggestions on in this buffer")
    assert editor.nvim.eval("b:llama_enabled") is True
    editor.type("o")
    editor.type_slowly("w = ")
    editor.wait_hint()
    settle(editor)
    asked = len(proxy.infill_requests())
    assert asked >= 1, "switched back on, the buffer is asked about"

    editor.nvim.command("LlamaBufToggle")  # in insert mode, with the hint shown
    editor.wait_messages("llama.nvim: suggestions off in this buffer")
    wait_until(lambda: editor.hint() is None, what="the hint to go")
    assert editor.nvim.eval("b:llama_enabled") is False
    editor.type_slowly("OFFTYPED + ")
    editor.type("<C-F><Esc>")
    wait_until(lambda: editor.mode() == "n", what="normal mode")
    settle(editor)
    assert len(proxy.infill_requests()) == asked, "a request was made after :LlamaBufToggle"
    # (What was typed while the buffer was on is the buffer's text and was sent then.)
    assert b"OFFTYPED" not in proxy.sent()
    assert_no_errors(editor)


def test_llamaignore_keeps_project_files_from_the_server_and_the_ring(
    make_editor: Callable[..., Editor], proxy: RecordingProxy, tmp_path: Path
) -> None:
    project = tmp_path / "proj"
    (project / ".git").mkdir(parents=True)
    (project / ".llamaignore").write_text("# never sent\nprivate/\n*.hidden.py\n")
    write_file(project / "private" / "plan.py", "PLANMARK")
    write_file(project / "keys.hidden.py", "KEYSMARK")
    write_file(project / "util.py", "UTILMARK")
    editor = make_editor({"endpoint": proxy.infill_url, "ring_update_ms": 50})
    editor.nvim.command(f"cd {project}")
    for name, typed in (("private/plan.py", "PLANTYPED"), ("keys.hidden.py", "KEYSTYPED")):
        editor.nvim.command(f"edit {name}")
        stats = use_buffer(editor, typed, expect_hint=False)
        assert stats["events"] > 0, "the keystrokes reached the host"
        assert proxy.infill_requests() == [], f"a request was made from {name}"
        assert stats["chunks_offered"] == 0, f"text of {name} was gathered"

    editor.nvim.command("edit util.py")
    stats = use_buffer(editor, "UTILTYPED", expect_hint=True)
    assert stats["chunks_offered"] >= 1
    ask_in_allowed_buffer(editor, "util.py", "UTILAGAIN")
    sent = proxy.sent()
    assert b"UTILMARK" in sent, "chunks of files the project allows reach the server"
    for marker in (b"PLANMARK", b"PLANTYPED", b"KEYSMARK", b"KEYSTYPED"):
        assert marker not in sent, marker
    assert_no_errors(editor)


def test_buf_toggle_cannot_turn_on_a_disabled_filetype(
    make_editor: Callable[..., Editor], proxy: RecordingProxy, tmp_path: Path
) -> None:
    write_file(tmp_path / "notes.md", "NOTESMARK")
    editor = make_editor({"endpoint": proxy.infill_url, "disabled_filetypes": ["markdown"]})
    editor.nvim.command(f"edit {tmp_path / 'notes.md'}")
    editor.nvim.command("LlamaBufToggle")
    editor.wait_messages("llama.nvim: suggestions stay off in this buffer")
    editor.unblock()
    stats = use_buffer(editor, "NOTESTYPED", expect_hint=False)
    assert stats["events"] > 0, "the keystrokes reached the host"
    assert proxy.infill_requests() == [], "a request was made from a disabled filetype"
    assert b"NOTES" not in proxy.sent()
