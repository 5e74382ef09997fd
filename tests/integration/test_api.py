"""The user's own keys and code: <Plug> mappings, the Lua API, LlamaIsHintShown(), the
User events and the state for statuslines, in a real Neovim against a real llama-server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.harness import Editor, LlamaServer, free_port, settle, wait_until
from tests.integration.test_completion import PY_SOURCE, fresh_line, shown_as_typed

pytestmark = pytest.mark.integration

PLUG_KEYS = {
    "<F2>": "trigger",
    "<F3>": "accept-full",
    "<F4>": "accept-line",
    "<F5>": "accept-word",
    "<F6>": "dismiss",
    "<F7>": "next",
    "<F8>": "prev",
}
PLUG_INIT = "\n".join(f"imap {key} <Plug>(llama-{name})" for key, name in PLUG_KEYS.items())

# Records every User event of the plugin with its data, and the state at that moment.
RECORD_EVENTS = """
lua << EOF
_G.llama_seen = {}
vim.api.nvim_create_autocmd('User', {
  pattern = { 'LlamaRequestStarted', 'LlamaRequestDone', 'LlamaSuggestionShown',
              'LlamaSuggestionAccepted', 'LlamaStateChanged' },
  callback = function(ev)
    table.insert(_G.llama_seen, { name = ev.match, data = ev.data, state = vim.g.llama_nvim_state })
  end,
})
EOF
"""


def plug_editor(make_editor: Callable[..., Editor], server: LlamaServer) -> Editor:
    """An editor with the user's own keys mapped to every <Plug> mapping; no automatic FIM."""
    editor = make_editor({"endpoint": server.infill_url, "auto_fim": False}, init=PLUG_INIT)
    editor.set_text(PY_SOURCE)
    return editor


def requests(editor: Editor) -> int:
    return editor.stats()["requests"]


def test_plug_trigger_dismiss_and_accept_full(
    make_editor: Callable[..., Editor], llama_server: LlamaServer
) -> None:
    editor = plug_editor(make_editor, llama_server)
    before, row, col = fresh_line(editor, "    total = ")
    editor.type("<F2>")
    hint = editor.wait_hint()
    editor.type("<F6>")
    wait_until(lambda: editor.hint() is None, what="<Plug>(llama-dismiss) to hide the hint")
    assert editor.text() == before

    editor.type("<F2>")
    hint = editor.wait_hint()
    editor.type("<F3>")
    after = editor.wait_text_change(before)
    inserted = "\n".join(after.split("\n")[row:])[col:]
    assert shown_as_typed(editor, vcol=col)(inserted) == hint.text
    assert editor.mode() == "i"


def test_plug_accept_word(make_editor: Callable[..., Editor], llama_server: LlamaServer) -> None:
    editor = plug_editor(make_editor, llama_server)
    before, row, col = fresh_line(editor, "    value = ")
    editor.type("<F2>")
    hint = editor.wait_hint()
    editor.type("<F5>")
    wait_until(lambda: editor.text() != before, what="<Plug>(llama-accept-word) to insert")
    word = editor.lines()[row][col:]
    assert word.strip(), "a word was inserted"
    assert hint.inline.startswith(shown_as_typed(editor, vcol=col)(word)), (word, hint.inline)
    assert len(editor.lines()) == len(before.split("\n")), "a word, not a line"


def test_plug_accept_line(make_editor: Callable[..., Editor], llama_server: LlamaServer) -> None:
    editor = plug_editor(make_editor, llama_server)
    for attempt in range(10):
        before, row, col = fresh_line(editor, f"    v{attempt} = ")
        editor.type("<F2>")
        hint = editor.wait_hint()
        if hint.inline.strip():
            break
    else:
        pytest.fail("no suggestion with text on its first line")
    editor.type("<F4>")
    wait_until(lambda: editor.text() != before, what="<Plug>(llama-accept-line) to insert")
    assert shown_as_typed(editor, vcol=col)(editor.lines()[row][col:]) == hint.inline
    assert len(editor.lines()) == len(before.split("\n")), "its first line only"


def test_plug_next_and_prev(make_editor: Callable[..., Editor], llama_server: LlamaServer) -> None:
    editor = plug_editor(make_editor, llama_server)
    fresh_line(editor, "    count = ")
    editor.type("<F2>")
    first = editor.wait_hint()
    asked = wait_until(lambda: editor.stats() if not editor.stats()["in_flight"] else None,
                       what="the first request to end")["requests"]  # fmt: skip
    editor.type("<F7>")
    wait_until(lambda: requests(editor) > asked, what="<Plug>(llama-next) to ask for another")
    wait_until(
        lambda: (editor.hint() not in (None, first)) or "no other suggestion" in editor.messages(),
        what="another suggestion, or word that there is none",
    )
    editor.type("<F8>")
    wait_until(
        lambda: (h := editor.hint()) is not None and h.text == first.text,
        what="<Plug>(llama-prev) to show the first suggestion again",
    )


def test_plug_mappings_do_nothing_without_a_suggestion(
    make_editor: Callable[..., Editor], llama_server: LlamaServer
) -> None:
    editor = plug_editor(make_editor, llama_server)
    _, row, _ = fresh_line(editor, "    n = ")
    line = editor.lines()[row]
    editor.type("<F3><F4><F5><F7><F8><F6>z")
    wait_until(lambda: editor.lines()[row] == line + "z", what="only the z to be typed")
    assert editor.hint() is None
    assert requests(editor) == 0


def test_lua_api_trigger_is_visible_dismiss_accept(
    make_editor: Callable[..., Editor], llama_server: LlamaServer
) -> None:
    editor = make_editor({"endpoint": llama_server.infill_url, "auto_fim": False})
    editor.set_text(PY_SOURCE)
    _, row, col = fresh_line(editor, "    result = ")

    def visible() -> tuple[bool, int]:
        return (
            editor.lua("return require('llama_nvim').is_visible()"),
            editor.nvim.call("LlamaIsHintShown"),
        )

    assert visible() == (False, 0)
    editor.lua("require('llama_nvim').trigger()")
    hint = editor.wait_hint()
    assert visible() == (True, 1)
    editor.lua("require('llama_nvim').dismiss()")
    wait_until(lambda: editor.hint() is None, what="dismiss() to hide the hint")
    assert visible() == (False, 0)

    editor.lua("require('llama_nvim').trigger()")
    hint = editor.wait_hint()
    assert editor.lua("return require('llama_nvim').accept('full')") is True
    inserted = "\n".join(editor.lines()[row:])[col:]
    assert shown_as_typed(editor, vcol=col)(inserted) == hint.text
    assert visible() == (False, 0)
    assert editor.lua("return require('llama_nvim').accept('full')") is False


# -- events and state --------------------------------------------------------------------------


def seen(editor: Editor, *, states: bool = False) -> list[dict[str, Any]]:
    """The User events recorded so far: the state changes, or all the others."""
    events: list[dict[str, Any]] = editor.lua("return _G.llama_seen")
    return [e for e in events if (e["name"] == "LlamaStateChanged") == states]


def test_events_fire_in_order_and_the_state_follows(
    make_editor: Callable[..., Editor], llama_server: LlamaServer
) -> None:
    config = {"endpoint": llama_server.infill_url, "auto_fim": False}
    editor = make_editor(config, init=RECORD_EVENTS)
    editor.set_text(PY_SOURCE)
    assert editor.lua("return require('llama_nvim').state()") == "idle"
    _, row, col = fresh_line(editor, "    total = ")
    editor.type("<C-F>")
    editor.wait_hint()
    wait_until(lambda: len(seen(editor)) >= 3, what="the request's end")
    hint = editor.wait_hint()  # the finished suggestion
    editor.type("<Tab>")
    wait_until(lambda: len(seen(editor)) >= 4, what="four events")
    events = seen(editor)
    started, accepted = events[0], events[3]
    by_name = {e["name"]: e for e in events[1:3]}
    done, shown = by_name["LlamaRequestDone"], by_name["LlamaSuggestionShown"]

    assert started["name"] == "LlamaRequestStarted"
    assert accepted["name"] == "LlamaSuggestionAccepted"
    assert done["data"]["id"] == started["data"]["id"]
    assert done["data"]["status"] == "ok"
    assert done["data"]["error"] == ""
    assert done["data"]["ms"] >= 0
    assert (shown["data"]["row"], shown["data"]["col"]) == (row, col)
    # Shown once, when first drawn: a streamed answer's first words may show
    # before the request ends; the finished suggestion starts with them.
    show = shown_as_typed(editor, vcol=col)
    assert hint.text.startswith(show("\n".join(shown["data"]["lines"])).rstrip())
    assert accepted["data"]["kind"] == "full"
    assert show("\n".join(accepted["data"]["lines"])) == hint.text
    assert "\n".join(editor.lines()[row:])[col:] == "\n".join(accepted["data"]["lines"])

    changes = [(e["data"]["previous"], e["data"]["state"]) for e in seen(editor, states=True)]
    assert changes == [("idle", "waiting"), ("waiting", "shown"), ("shown", "idle")]
    # g:llama_nvim_state as each event fired: the answer's end and its
    # suggestion come together, so the state never reads idle in between.
    assert (started["state"], accepted["state"]) == ("waiting", "idle")
    # Drawn while its answer still came, a suggestion leaves "waiting" only as
    # the request ends; drawn after, as it shows.
    if events.index(shown) < events.index(done):
        assert shown["state"] == "waiting"
    else:
        assert (done["state"], shown["state"]) == ("waiting", "shown")
    assert editor.nvim.vars["llama_nvim_state"] == "idle"


def test_events_for_one_key_typed_with_automatic_suggestions(
    make_editor: Callable[..., Editor], llama_server: LlamaServer
) -> None:
    editor = make_editor({"endpoint": llama_server.infill_url}, init=RECORD_EVENTS)
    editor.set_text(PY_SOURCE)
    for attempt in range(10):
        fresh_line(editor, f"    r{attempt} = ")
        hint = editor.wait_hint()
        settle(editor)
        editor.lua("_G.llama_seen = {}")
        # Not the hint's next character: that would only move the hint along.
        editor.type("Z" if hint.inline.startswith("Q") else "Q")
        wait_until(lambda: any(e["name"] == "LlamaRequestDone" for e in seen(editor)),
                   what="the request for the key to end")  # fmt: skip
        settle(editor)
        if editor.hint() is not None:
            break
    else:
        pytest.fail("no suggestion after a typed key")
    editor.type("<Tab>")
    wait_until(lambda: len(seen(editor)) >= 4, what="the accept event")
    started, first, second, accepted = seen(editor)[:4]
    assert (started["name"], accepted["name"]) == (
        "LlamaRequestStarted",
        "LlamaSuggestionAccepted",
    )
    # (a streamed answer shows its first words before the request ends)
    assert {first["name"], second["name"]} == {"LlamaRequestDone", "LlamaSuggestionShown"}
    done = first if first["name"] == "LlamaRequestDone" else second
    assert done["data"]["id"] == started["data"]["id"]
    assert done["data"]["status"] == "ok"


def test_state_is_error_against_a_dead_server(make_editor: Callable[..., Editor]) -> None:
    dead = f"http://127.0.0.1:{free_port()}/infill"
    editor = make_editor({"endpoint": dead, "auto_fim": False}, init=RECORD_EVENTS)
    editor.set_text(PY_SOURCE)
    fresh_line(editor, "    total = ")
    editor.type("<C-F>")
    wait_until(lambda: editor.nvim.vars.get("llama_nvim_state") == "error", what="error state")
    assert editor.lua("return require('llama_nvim').state()") == "error"
    started, done = seen(editor)
    assert (started["name"], done["name"]) == ("LlamaRequestStarted", "LlamaRequestDone")
    assert done["data"]["status"] == "error"
    assert "127.0.0.1" in done["data"]["error"]
    changes = [e["data"]["state"] for e in seen(editor, states=True)]
    assert changes == ["waiting", "error"]
