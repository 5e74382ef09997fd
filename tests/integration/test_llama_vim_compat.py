"""A llama.vim user's setup in a real Neovim against a real llama-server.

Their g:llama_config (every llama.vim option name) loads without a word and
its keys work, their highlight groups colour the hint, the debug key toggles
the log, and a changed g:llama_config applies with :LlamaReload.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.harness import Editor, LlamaServer, assert_no_errors, settle, wait_until
from tests.integration.test_completion import PY_SOURCE, fresh_line, shown_as_typed
from tests.recording_proxy import RecordingProxy
from tests.unit.test_config import LLAMA_VIM_CONFIG

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(llama_server: LlamaServer) -> Iterator[RecordingProxy]:
    server = RecordingProxy(llama_server.url)
    yield server
    server.close()


def accept_and_check(editor: Editor, key: str) -> None:
    """Get a suggestion on a fresh line, press ``key``: exactly the hint is inserted."""
    before, row, col = fresh_line(editor, "    total = ")
    hint = editor.wait_hint()
    editor.type(key)
    after = editor.wait_text_change(before)
    inserted = "\n".join(after.split("\n")[row:])[col:]
    assert shown_as_typed(editor, vcol=col)(inserted) == hint.text


def highlight_groups(editor: Editor) -> tuple[str, str]:
    """The groups of the hint's first line and of its info text."""
    marks = editor.nvim.api.buf_get_extmarks(0, editor.ns, 0, -1, {"details": True})
    groups = {d.get("virt_text_pos"): d["virt_text"][0][1] for _, _, _, d in marks}
    return groups["inline"], groups["eol"]


def test_a_llama_vim_config_loads_silently_and_its_keys_work(
    make_editor: Callable[..., Editor], llama_server: LlamaServer
) -> None:
    config: dict[str, Any] = dict(
        LLAMA_VIM_CONFIG,
        endpoint_fim=llama_server.infill_url,
        keymap_fim_accept_full="<C-L>",  # not our default: proves the option is honoured
    )
    editor = make_editor(config)
    editor.set_text(PY_SOURCE)
    accept_and_check(editor, "<C-L>")
    editor.type("<Esc>")
    settle(editor)
    assert editor.messages() == "", "a llama.vim config must load without any message"

    editor.type("<Esc>\\lld")  # keymap_debug_toggle, <leader> being the default backslash
    editor.wait_messages("llama.nvim: debug log on")
    editor.type("\\lld")
    editor.wait_messages("llama.nvim: debug log off")
    assert_no_errors(editor)


def test_llama_vim_highlight_groups_are_used_when_defined(editor: Editor) -> None:
    editor.set_text(PY_SOURCE)
    fresh_line(editor, "    first = ")
    editor.wait_hint()
    assert highlight_groups(editor) == ("LlamaNvimHint", "LlamaNvimInfo")

    # llama.vim's own definitions, as its users have them.
    editor.nvim.command("highlight llama_hl_fim_hint guifg=#ff772f ctermfg=202")
    editor.nvim.command("highlight llama_hl_fim_info guifg=#77ff2f ctermfg=119")
    fresh_line(editor, "    second = ")
    editor.wait_hint()
    assert highlight_groups(editor) == ("llama_hl_fim_hint", "llama_hl_fim_info")

    editor.nvim.command("highlight clear llama_hl_fim_hint")
    fresh_line(editor, "    third = ")
    editor.wait_hint()
    assert highlight_groups(editor) == ("LlamaNvimHint", "llama_hl_fim_info")
    assert_no_errors(editor)


def predicted(proxy: RecordingProxy) -> list[int]:
    """n_predict of each suggestion request (priming asks for 0 tokens)."""
    return [body["n_predict"] for body in proxy.infill_bodies() if body["n_predict"]]


def test_reload_applies_a_changed_config_without_restart(
    make_editor: Callable[..., Editor], proxy: RecordingProxy
) -> None:
    editor = make_editor({"endpoint": proxy.infill_url, "n_predict": 8})
    editor.set_text(PY_SOURCE)
    fresh_line(editor, "    one = ")
    editor.wait_hint()
    settle(editor)
    assert set(predicted(proxy)) == {8}
    asked = len(predicted(proxy))

    editor.type("<Esc>")
    editor.nvim.command("let g:llama_config.keymap_accept_full = '<C-L>'")
    editor.nvim.command("let g:llama_config.n_predict = 5")
    editor.nvim.command("LlamaReload")
    editor.wait_messages("llama.nvim: configuration reloaded")
    accept_and_check(editor, "<C-L>")
    settle(editor)
    assert predicted(proxy)[asked:], "requests were made after the reload"
    assert set(predicted(proxy)[asked:]) == {5}

    # <Tab> is no longer the accept key: with a hint shown it is a plain Tab.
    editor.nvim.command("setlocal expandtab shiftwidth=4 softtabstop=4")
    before, row, col = fresh_line(editor, "    two = ")
    editor.wait_hint()
    editor.type("<Tab>")
    after = editor.wait_text_change(before)
    typed = after.split("\n")[row][col:]
    assert typed, "the Tab was typed"
    assert not typed.strip(), f"<Tab> inserted {typed!r}, not blanks up to the next tab stop"

    # A bad value is reported once, naming the key, and the rest still applies.
    editor.type("<Esc>")
    editor.nvim.command("let g:llama_config.n_predict = 'many'")
    editor.nvim.command("LlamaReload")
    editor.wait_messages("g:llama_config.n_predict must be")
    settle(editor)
    assert editor.message_count("g:llama_config.n_predict must be") == 1
    editor.unblock()
    wait_until(lambda: not editor.blocked(), what="no prompt")
    assert_no_errors(editor)
