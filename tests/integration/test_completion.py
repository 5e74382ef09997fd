"""Ghost text and accepting it, in a real Neovim against a real llama-server."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.harness import Editor, Hint, LlamaServer, caught_up, settle, wait_until

pytestmark = pytest.mark.integration

PY_SOURCE = """import os


def add(a, b):
    return a + b


def main():
"""


def shown_as_typed(
    editor: Editor, tabstop: int | None = None, vcol: int = 0
) -> Callable[[str], str]:
    """How a literal inserted text displays, to compare with what the hint showed."""

    def show(text: str) -> str:
        lines = text.split("\n")
        first = editor.display(lines[0], vcol, tabstop)
        return "\n".join([first, *(editor.display(line, 0, tabstop) for line in lines[1:])])

    return show


def fresh_line(editor: Editor, text: str = "    ") -> tuple[str, int, int]:
    """Open a new last line in insert mode and type ``text``; return the buffer and cursor."""
    editor.type("<Esc>Go")
    editor.type_slowly(text)
    row, col = editor.cursor()
    return editor.text(), row, col


def multi_line_hint(editor: Editor, attempts: int = 40) -> tuple[str, Hint]:
    """Type at fresh positions until the model offers more than one line.

    At column 0 there is no indentation bound (n_indent), so the tiny model's
    unindented lines are not cut.
    """
    editor.nvim.command("setlocal noautoindent nosmartindent indentexpr=")
    for attempt in range(attempts):
        fresh_line(editor, f"x{attempt} = ")
        hint = editor.wait_hint()
        if hint.below and hint.inline.strip():
            return editor.text(), hint
    pytest.fail("the model never offered a multi-line suggestion")


def test_typing_shows_ghost_text_and_tab_inserts_exactly_it(editor: Editor) -> None:
    editor.set_text(PY_SOURCE)
    before, row, col = fresh_line(editor, "    result = ")
    hint = editor.wait_hint()

    assert (hint.row, hint.col) == (row, col), "ghost text sits at the cursor"
    assert hint.inline or hint.below
    assert editor.text() == before, "showing a suggestion must not change the text"

    editor.type("<Tab>")
    inserted = editor.wait_text_change(before)
    lines_before = before.split("\n")
    lines_after = inserted.split("\n")
    assert lines_after[:row] == lines_before[:row]
    new_text = "\n".join(lines_after[row:])[col:]
    show = shown_as_typed(editor, vcol=col)
    assert show(new_text) == hint.text
    assert editor.mode() == "i", "still in the same insert session"
    end_row = row + len(hint.below)
    end_col = len(lines_after[end_row].encode())
    assert editor.cursor() == (end_row, end_col), "cursor right after the inserted text"


def test_info_text_shows_context_and_timings(editor: Editor) -> None:
    editor.set_text(PY_SOURCE)
    fresh_line(editor, "    value = ")
    hint = editor.wait_hint()
    assert "ctx " in hint.info
    assert "/4096" in hint.info
    assert "computed" in hint.info
    assert "generated" in hint.info


def test_shift_tab_accepts_only_the_first_line(editor: Editor) -> None:
    editor.set_text(PY_SOURCE)
    before, hint = multi_line_hint(editor)
    row, col = editor.cursor()
    editor.type("<S-Tab>")
    wait_until(lambda: editor.text() != before, what="first line inserted")
    after = editor.lines()
    assert len(after) == len(before.split("\n")), "no new line was added"
    show = shown_as_typed(editor, vcol=col)
    assert show(after[row][col:]) == hint.inline
    assert editor.cursor() == (row, len(after[row].encode()))
    rest = wait_until(editor.hint, what="the rest of the suggestion still shown")
    assert rest.text.lstrip("\n") == "\n".join(hint.below).lstrip("\n") or rest.inline == ""


def test_word_key_accepts_the_next_word(editor: Editor) -> None:
    editor.set_text(PY_SOURCE)
    for attempt in range(30):
        before, row, col = fresh_line(editor, f"    y{attempt} = ")
        hint = editor.wait_hint()
        words = hint.inline.split()
        if len(words) >= 2 and "\t" not in hint.inline:
            break
    else:
        pytest.fail("no suggestion with two words on its first line")
    editor.type("<C-B>")
    wait_until(lambda: editor.text() != before, what="a word inserted")
    line = editor.lines()[row]
    leading = hint.inline[: len(hint.inline) - len(hint.inline.lstrip())]
    assert line[col:] == leading + words[0]
    rest = wait_until(editor.hint, what="the rest still shown")
    assert rest.inline == hint.inline[len(leading + words[0]) :]


def test_tab_without_a_hint_is_a_plain_tab(
    make_editor: Callable[..., Editor], llama_server: LlamaServer
) -> None:
    editor = make_editor({"endpoint": llama_server.infill_url, "auto_fim": False})
    editor.set_text("x")
    editor.nvim.command("setlocal noexpandtab")
    editor.type("A<Tab>y<Esc>")
    wait_until(lambda: editor.lines()[0] == "x\ty", what="a literal tab")
    editor.nvim.command("setlocal expandtab shiftwidth=4 softtabstop=4")
    editor.type("o<Tab>z<Esc>")
    wait_until(lambda: editor.lines()[1:] == ["    z"], what="spaces from expandtab")


def test_tab_without_a_hint_runs_the_users_own_mapping(
    make_editor: Callable[..., Editor], llama_server: LlamaServer
) -> None:
    init = 'inoremap <Tab> <C-R>="MINE"<CR>\ninoremap <expr> <C-B> "WORD"'
    editor = make_editor({"endpoint": llama_server.infill_url}, init=init)
    editor.set_text(PY_SOURCE)
    editor.type("<Esc>Go<Tab><C-B>")
    wait_until(lambda: editor.lines()[-1].strip() == "MINEWORD", what="the user's mappings")

    before, row, col = fresh_line(editor, "    total = ")
    hint = editor.wait_hint()
    editor.type("<Tab>")
    wait_until(lambda: editor.text() != before, what="accept with the mapped Tab")
    assert "MINE" not in editor.lines()[row]
    assert shown_as_typed(editor, vcol=col)("\n".join(editor.lines()[row:])[col:]) == hint.text


def test_tab_falls_back_to_another_plugins_lua_mapping(
    make_editor: Callable[..., Editor], llama_server: LlamaServer
) -> None:
    # Like completion plugins do: a Lua callback that edits the buffer itself.
    init = (
        "lua vim.keymap.set('i', '<Tab>', function() "
        "vim.api.nvim_put({'PLUGIN'}, 'c', false, true) end)"
    )
    editor = make_editor({"endpoint": llama_server.infill_url, "auto_fim": False}, init=init)
    editor.type("i<Tab>")
    wait_until(lambda: editor.lines() == ["PLUGIN"], what="the other plugin's Tab")
    assert "E565" not in editor.messages()


def test_ctrl_f_requests_at_once_and_hides_a_shown_hint(
    make_editor: Callable[..., Editor], llama_server: LlamaServer
) -> None:
    editor = make_editor({"endpoint": llama_server.infill_url, "auto_fim": False})
    editor.set_text(PY_SOURCE)
    fresh_line(editor, "    count = ")
    stats = caught_up(editor)
    assert stats["events"] >= 1, "the plugin saw the typing"
    assert editor.hint() is None, "auto FIM is off: nothing without Ctrl+F"
    assert stats["requests"] == 0

    editor.type("<C-F>")
    editor.wait_hint()
    assert editor.stats()["requests"] >= 1
    editor.type("<C-F>")
    wait_until(lambda: editor.hint() is None, what="Ctrl+F to hide the hint")


def test_accept_is_one_undo_step(editor: Editor) -> None:
    editor.set_text(PY_SOURCE)
    original = editor.text()
    fresh_line(editor, "    z = ")
    editor.wait_hint()
    editor.type("<Tab>")
    editor.wait_text_change(original)
    editor.type("<Esc>u")
    wait_until(lambda: editor.text() == original, what="one undo to remove the insert")


def test_no_hint_while_the_popup_menu_is_open(editor: Editor) -> None:
    editor.set_text("alphabet alphanumeric\n", filetype="text")
    editor.nvim.command("setlocal noexpandtab")
    editor.type("<Esc>Go")
    editor.type_slowly("alp")
    editor.type("<C-N>")
    wait_until(lambda: editor.nvim.call("pumvisible") == 1, what="the popup menu")
    caught_up(editor)  # the request for "alp" is over by now: answered or cancelled
    assert editor.nvim.call("pumvisible") == 1
    assert editor.hint() is None
    # Tab with the menu open is not ours: with no mapping it inserts a tab.
    editor.type("<Tab>")
    wait_until(lambda: "\t" in editor.lines()[-1], what="Tab to go to the popup menu's owner")


def test_no_automatic_request_mid_line(editor: Editor) -> None:
    editor.set_text("print('a long text to the right of the cursor')")
    requests = editor.stats()["requests"]
    editor.type("0fpa")
    editor.type_slowly("x")
    stats = caught_up(editor)
    assert stats["events"] >= 1, "the plugin saw the keystroke"
    assert editor.hint() is None
    assert stats["requests"] == requests


def test_disable_and_enable(editor: Editor) -> None:
    editor.set_text(PY_SOURCE)
    fresh_line(editor, "    p = ")
    editor.wait_hint()
    requests = settle(editor)["requests"]
    editor.nvim.command("LlamaDisable")
    wait_until(lambda: editor.hint() is None, what="the shown suggestion to go")
    assert not editor.lua("return require('llama_nvim').is_enabled()")
    fresh_line(editor, "    q = ")
    stats = caught_up(editor)
    assert editor.hint() is None
    assert stats["requests"] == requests
    editor.type("<Esc>")
    editor.nvim.command("LlamaToggle")
    wait_until(lambda: editor.lua("return require('llama_nvim').is_enabled()"), what="on")
    fresh_line(editor, "    r = ")
    editor.wait_hint()


def test_leaving_insert_mode_hides_the_hint(editor: Editor) -> None:
    editor.set_text(PY_SOURCE)
    fresh_line(editor, "    s = ")
    editor.wait_hint()
    editor.type("<Esc>")
    wait_until(lambda: editor.hint() is None, what="the hint to go")
