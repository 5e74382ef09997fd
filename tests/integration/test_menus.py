"""hide_during_completion: the suggestion hides while a completion menu is open and comes
back when it closes, in a real Neovim against a real llama-server.

The native popup menu is the real one (<C-N> keyword completion). nvim-cmp and
blink.cmp cannot be installed here: blink.cmp's menu is announced with the
User autocommands it emits (BlinkCmpMenuOpen / BlinkCmpMenuClose), fired here
as blink.cmp fires them; nvim-cmp is stood in for by a `cmp` module with the
two parts of nvim-cmp's API the plugin uses (cmp.event:on and cmp.visible).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.harness import Editor, Hint, LlamaServer, wait_until
from tests.integration.test_completion import PY_SOURCE, fresh_line

pytestmark = pytest.mark.integration

# nvim-cmp's module as the plugin sees it: event:on(name, callback), visible().
FAKE_CMP = """
lua << END
local listeners = {}
_G.fake_cmp = { open = false }
package.loaded['cmp'] = {
  event = { on = function(_, name, callback) listeners[name] = callback end },
  visible = function() return _G.fake_cmp.open end,
}
function _G.fake_cmp.set(open)
  _G.fake_cmp.open = open
  listeners[open and 'menu_opened' or 'menu_closed']()
end
END
"""


def same_hint(editor: Editor, hint: Hint) -> Hint | None:
    """The hint shown if it is ``hint``'s text at ``hint``'s place (its info text may differ:
    typing on after a menu closes can get the same suggestion back from the cache)."""
    shown = editor.hint()
    if shown is None:
        return None
    return shown if (shown.row, shown.col, shown.text) == (hint.row, hint.col, hint.text) else None


def test_native_popup_menu_hides_the_hint_and_it_returns_when_dismissed(editor: Editor) -> None:
    editor.set_text("alphabet alphanumeric\n", filetype="text")
    editor.type("<Esc>Go")
    editor.type_slowly("alp")
    hint = editor.wait_hint()
    asked = editor.wait_stats(lambda s: not s["in_flight"], "the request to end")["requests"]
    editor.type("<C-N>")
    wait_until(lambda: editor.nvim.call("pumvisible") == 1, what="the popup menu")
    wait_until(lambda: editor.hint() is None, what="the hint to hide")
    assert not editor.lua("return require('llama_nvim').is_visible()")
    editor.type("<C-E>")
    wait_until(lambda: editor.nvim.call("pumvisible") == 0, what="the menu to close")
    wait_until(lambda: same_hint(editor, hint), what="the same hint back")
    assert editor.lines()[-1] == "alp"
    assert editor.stats()["requests"] == asked, "shown again without asking the server"
    assert editor.lua("return require('llama_nvim').is_visible()")


def test_blink_cmp_menu_events_hide_and_bring_back_the_hint(editor: Editor) -> None:
    editor.set_text(PY_SOURCE)
    fresh_line(editor, "    total = ")
    hint = editor.wait_hint()
    editor.lua("vim.api.nvim_exec_autocmds('User', { pattern = 'BlinkCmpMenuOpen' })")
    wait_until(lambda: editor.hint() is None, what="the hint to hide")
    editor.lua("vim.api.nvim_exec_autocmds('User', { pattern = 'BlinkCmpMenuClose' })")
    wait_until(lambda: same_hint(editor, hint), what="the same hint back")


def test_nvim_cmp_menu_hides_the_hint_and_it_returns(
    make_editor: Callable[..., Editor], llama_server: LlamaServer
) -> None:
    editor = make_editor({"endpoint": llama_server.infill_url}, init=FAKE_CMP)
    editor.set_text(PY_SOURCE)
    fresh_line(editor, "    total = ")
    hint = editor.wait_hint()
    editor.lua("_G.fake_cmp.set(true)")
    wait_until(lambda: editor.hint() is None, what="the hint to hide")
    editor.lua("_G.fake_cmp.set(false)")
    wait_until(lambda: same_hint(editor, hint), what="the same hint back")


def test_a_suggestion_arriving_while_a_menu_is_open_shows_when_it_closes(
    make_editor: Callable[..., Editor], llama_server: LlamaServer
) -> None:
    editor = make_editor({"endpoint": llama_server.infill_url, "auto_fim": False}, init=FAKE_CMP)
    editor.set_text(PY_SOURCE)
    fresh_line(editor, "    total = ")
    editor.lua("_G.fake_cmp.set(true)")
    asked = editor.stats()["requests"]
    editor.type("<C-F>")
    editor.wait_stats(lambda s: s["requests"] > asked and not s["in_flight"], "the answer")
    assert editor.hint() is None, "not drawn while the menu is open"
    editor.lua("_G.fake_cmp.set(false)")
    editor.wait_hint()


def test_with_the_option_off_the_hint_stays_while_a_menu_is_open(
    make_editor: Callable[..., Editor], llama_server: LlamaServer
) -> None:
    config = {"endpoint": llama_server.infill_url, "hide_during_completion": False}
    editor = make_editor(config, init=FAKE_CMP)
    editor.set_text(PY_SOURCE)
    fresh_line(editor, "    total = ")
    hint = editor.wait_hint()
    editor.lua("_G.fake_cmp.set(true)")
    editor.lua("vim.api.nvim_exec_autocmds('User', { pattern = 'BlinkCmpMenuOpen' })")
    # The menu callbacks run synchronously: had they hidden it, it would be gone now.
    assert same_hint(editor, hint)
