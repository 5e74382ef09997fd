"""Big, odd and off-limits buffers, and editing habits around a suggestion, in a real Neovim.

The fake server records every request body, so what the plugin sends (and
that it sends nothing at all from some buffers) is checked byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from statistics import median
from typing import Any

import pytest

from tests.fakeserver import FakeServer, Reply
from tests.harness import (
    Editor,
    Hint,
    assert_no_errors,
    caught_up,
    human_pause,
    ring_idle,
    settle,
    wait_until,
)

pytestmark = pytest.mark.integration

PLUGIN = "llama.nvim: "
# Defaults of the byte caps on the local context (config.Config).
MAX_PREFIX_BYTES = 32768
MAX_SUFFIX_BYTES = 8192
MAX_LINE_BYTES = 4096
MAX_BODY_BYTES = 64 * 1024


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = FakeServer(lambda r: Reply.completion("tail()"))
    yield server
    server.close()


def assert_capped(fake: FakeServer) -> list[dict[str, Any]]:
    """Every /infill body stays within the byte caps; returns the bodies."""
    requests = fake.infill_requests()
    assert requests
    bodies = []
    for request in requests:
        assert len(request.body) < MAX_BODY_BYTES, len(request.body)
        body = request.json()
        assert len(body["input_prefix"].encode()) <= MAX_PREFIX_BYTES
        # The rest of the cursor line (capped), a newline, then the capped lines below.
        assert len(body["input_suffix"].encode()) <= MAX_LINE_BYTES + 1 + MAX_SUFFIX_BYTES
        assert len(body["prompt"].encode()) <= MAX_LINE_BYTES
        bodies.append(body)
    return bodies


def typing_latencies(editor: Editor, text: str) -> list[float]:
    latencies = []
    for char in text:
        latencies.append(editor.key_latency(char))
        human_pause(0.02)
    return latencies


# -- huge buffers ----------------------------------------------------------------------------


def test_200k_line_file_request_is_capped_and_typing_stays_fast(
    make_editor: Callable[..., Editor], fake: FakeServer, tmp_path: Path
) -> None:
    # 240-byte lines: the 256 lines above the cursor alone would be 60 KB uncapped.
    path = tmp_path / "big.py"
    filler = "abcdefghij" * 22
    with path.open("w") as out:
        for i in range(200_000):
            out.write(f"v{i:06d} = '{filler}'\n")
    editor = make_editor({"endpoint": fake.infill_url})
    editor.nvim.command(f"edit {path}")
    assert editor.nvim.call("line", "$") == 200_000
    editor.type("100000Go")
    latencies = typing_latencies(editor, "total = ")
    editor.wait_hint()
    settle(editor)
    bodies = [b for b in assert_capped(fake) if b["prompt"] == "total = "]
    assert bodies, "the request for the typed text"
    assert bodies[-1]["input_prefix"].endswith(f"v099999 = '{filler}'\n")
    assert max(latencies) < 0.5, latencies
    assert sorted(latencies)[len(latencies) // 2] < 0.1, latencies
    assert editor.host_roundtrip() < 0.5
    assert_no_errors(editor)


def test_two_megabyte_single_line_is_capped_and_typing_stays_fast(
    make_editor: Callable[..., Editor], fake: FakeServer, tmp_path: Path
) -> None:
    path = tmp_path / "bundle.min.js"
    piece = "function f(a){return a+1};var b=f(2);"
    line = piece * (2_000_000 // len(piece))
    path.write_text(line + "\n")
    fake.responder = lambda r: Reply.completion("g(b);h(b);")
    editor = make_editor({"endpoint": fake.infill_url})
    editor.nvim.command(f"edit {path}")
    # The same keys' cost without the plugin, measured here and now: compared
    # with it, the machine's load cancels out of the figure.
    editor.nvim.command("LlamaDisable")
    wait_until(lambda: not editor.lua("return require('llama_nvim').is_enabled()"), what="off")
    editor.type("A")
    baseline = typing_latencies(editor, "q=0;q=0;q=")
    editor.type("<Esc>")
    editor.nvim.command("LlamaEnable")
    wait_until(lambda: editor.lua("return require('llama_nvim').is_enabled()"), what="on")
    editor.type("A")
    # No automatic suggestion on such a line: its context is cut anyway, and an
    # inline hint would make every keystroke slow to redraw.
    latencies = typing_latencies(editor, "x=1;g(b);zz")
    settle(editor)
    assert fake.infill_requests() == []
    assert editor.hint() is None
    assert median(latencies) < 2 * median(baseline) + 0.02, (
        [round(t, 3) for t in latencies],
        [round(t, 3) for t in baseline],
    )
    # Asked for by hand, it comes, with the nearest text kept within the cap.
    editor.type("<C-F>")
    editor.wait_hint()
    body = [b for b in assert_capped(fake) if b["prompt"].endswith("zz")][-1]
    assert len(body["prompt"].encode()) == MAX_LINE_BYTES, "the nearest text is kept"

    # In the middle of the line, by hand: the text right of the cursor is capped too.
    editor.type("<Esc>")
    editor.type("1000000|i")
    before = len(fake.infill_requests())
    editor.type("<C-F>")
    wait_until(lambda: len(fake.infill_requests()) > before, what="the manual request")
    settle(editor)
    body = assert_capped(fake)[before]
    assert len(body["input_suffix"].encode()) == MAX_LINE_BYTES + 1
    assert editor.host_roundtrip() < 0.5
    assert_no_errors(editor)


# -- odd encodings and whitespace ----------------------------------------------------------------


def test_binary_file_is_sent_as_valid_json_and_left_intact(
    make_editor: Callable[..., Editor], fake: FakeServer, tmp_path: Path
) -> None:
    data = (
        b"\x7fELF\x02\x01\x01\x00\x00\x00\x03\x00>\x00\x01\n"
        + bytes(b for b in range(256) if b not in (10, 13))
        + b"\nab\xff\xfe cd \xc3( \xed\xa0\x80\n\x00\x01\x02 tail\n"
    )
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    fake.responder = lambda r: Reply.completion("read()")
    editor = make_editor({"endpoint": fake.infill_url})
    editor.nvim.command(f"edit ++bin {path}")
    original = [line.encode("utf-8", "surrogateescape") for line in editor.lines()]
    assert original == data.split(b"\n")[:-1], "the buffer holds the raw bytes"
    editor.type("Go")
    editor.type_slowly("x = ")
    editor.wait_hint()
    settle(editor)
    for request in fake.requests:
        request.body.decode("utf-8")  # every body is valid UTF-8 ...
    bodies = fake.infill_bodies()  # ... and valid JSON
    prefix = bodies[-1]["input_prefix"]
    assert "\ufffd" in prefix, "undecodable bytes become U+FFFD"
    assert "ELF" in prefix
    editor.type("<Tab>")
    wait_until(lambda: editor.lines()[-1] == "x = read()", what="the accept")
    lines = [line.encode("utf-8", "surrogateescape") for line in editor.lines()]
    assert lines[:-1] == original, "the binary lines are untouched"
    assert_no_errors(editor)


def test_crlf_file_sends_no_carriage_returns_and_stays_dos(
    make_editor: Callable[..., Editor], fake: FakeServer, tmp_path: Path
) -> None:
    path = tmp_path / "dos.py"
    path.write_bytes(b"def f():\r\n    return 1\r\n")
    fake.responder = lambda r: Reply.completion("one\r\ntwo\r\n")
    editor = make_editor({"endpoint": fake.infill_url})
    editor.nvim.command(f"edit {path}")
    assert editor.nvim.eval("&fileformat") == "dos"
    editor.nvim.command("setlocal noautoindent nosmartindent indentexpr=")
    editor.type("Go")
    editor.type_slowly("x = ")
    hint = editor.wait_hint()
    assert (hint.inline, hint.below) == ("one", ["two"])
    settle(editor)
    for body in fake.infill_bodies():
        for key in ("input_prefix", "input_suffix", "prompt"):
            assert "\r" not in body[key], (key, body[key])
    editor.type("<Tab>")
    wait_until(lambda: editor.lines()[-2:] == ["x = one", "two"], what="the accept")
    editor.type("<Esc>")
    editor.nvim.command("write")
    assert path.read_bytes() == b"def f():\r\n    return 1\r\nx = one\r\ntwo\r\n"
    assert_no_errors(editor)


def test_tabs_are_shown_at_their_width_and_inserted_literally(
    make_editor: Callable[..., Editor], fake: FakeServer
) -> None:
    fake.responder = lambda r: Reply.completion("\ta\tb\n\tnext")
    editor = make_editor({"endpoint": fake.infill_url})
    editor.nvim.command("setlocal expandtab tabstop=4 shiftwidth=4 softtabstop=4")
    editor.nvim.command("setlocal noautoindent nosmartindent indentexpr=")
    editor.nvim.current.buffer[:] = ["\tx = "]  # an old tab in an expandtab buffer
    editor.type("A")
    editor.type_slowly("1")
    hint = editor.wait_hint()
    # The cursor is at screen column 9 (tab to 4, then "x = 1"): the next tab
    # stops are 12 and 16; the second line starts at column 0.
    assert hint.inline == "   a   b"
    assert hint.below == ["    next"]
    assert fake.infill_bodies()[-1]["prompt"] == "\tx = 1"
    editor.type("<Tab>")
    wait_until(lambda: editor.lines() != ["\tx = 1"], what="the accept")
    assert editor.lines() == ["\tx = 1\ta\tb", "\tnext"], "the model's text, exactly"
    assert editor.cursor() == (1, len("\tnext"))
    assert_no_errors(editor)


def test_multibyte_text_before_the_cursor(
    make_editor: Callable[..., Editor], fake: FakeServer
) -> None:
    fake.responder = lambda r: Reply.completion("ü→ok más")
    editor = make_editor({"endpoint": fake.infill_url})
    prefix = "é日本語 = "
    col = len(prefix.encode())
    assert (col, len(prefix)) == (14, 7), "bytes and characters differ"
    editor.type("i")
    editor.type_slowly(prefix)
    hint = editor.wait_hint()
    assert (hint.row, hint.col) == (0, col), "ghost text at the cursor's byte column"
    assert editor.cursor() == (0, col)
    assert hint.inline == "ü→ok más"
    assert fake.infill_bodies()[-1]["prompt"] == prefix
    requests = settle(editor)["user_requests"]

    # Type-through over a two-byte character: the rest shows with no request.
    editor.type_slowly("ü")

    def through() -> Hint | None:
        hint = editor.hint()
        return hint if hint is not None and hint.inline == "→ok más" else None

    shown = wait_until(through, what="type-through")
    assert shown.col == col + len("ü".encode())
    # Ctrl+B takes one word, Tab the rest.
    editor.type("<C-B>")
    wait_until(lambda: editor.lines() == [prefix + "ü→ok"], what="the word accept")
    editor.type("<Tab>")
    wait_until(lambda: editor.lines() == [prefix + "ü→ok más"], what="the full accept")
    assert editor.cursor() == (0, len((prefix + "ü→ok más").encode()))
    assert settle(editor)["user_requests"] == requests
    assert_no_errors(editor)


# -- buffers that are never read -------------------------------------------------------------------

SECRET = "SECRETMARK"
SECRET_LINES = [f"{SECRET}_{i} = 'private value {i}'" for i in range(8)]

# name -> (Ex commands to set the buffer up, fill it with SECRET_LINES, keys to type in it)
OFF_LIMITS: dict[str, tuple[list[str], bool, str]] = {
    "help": (["help help", "setlocal modifiable noreadonly"], True, "GA"),
    "terminal": (["terminal cat", "startinsert"], False, ""),
    "quickfix": (
        ["cexpr ['a.py:1:x', 'a.py:2:y', 'a.py:3:z']", "copen", "setlocal modifiable"],
        True,
        "GA",
    ),
    "prompt": (["new", "setlocal buftype=prompt"], True, "A"),
    "nofile": (["new", "setlocal buftype=nofile"], True, "GA"),
    "unlisted": (["new", "setlocal nobuflisted"], True, "GA"),
    "readonly": (["view {file}"], False, "GA"),
    # New buffers take the global value: the file is nomodifiable when entered.
    "nomodifiable": (
        ["setglobal nomodifiable", "edit {file}", "setglobal modifiable"],
        False,
        "GA",
    ),
}


@pytest.mark.parametrize("kind", [*OFF_LIMITS, "control-file"])
def test_special_buffers_are_never_sent_nor_gathered(
    make_editor: Callable[..., Editor], fake: FakeServer, tmp_path: Path, kind: str
) -> None:
    """Typing, Ctrl+F, yanking, entering and leaving: nothing of these buffers leaves.

    "control-file" does the same in a plain file buffer, to show the test sees
    what it looks for when it is sent.
    """
    file = tmp_path / "secret.txt"
    file.write_text("\n".join(SECRET_LINES) + "\n")
    editor = make_editor({"endpoint": fake.infill_url, "ring_update_ms": 50})
    editor.nvim.command(f"cd {tmp_path}")
    commands, fill, keys = OFF_LIMITS.get(kind, (["edit {file}"], False, "GA"))
    for command in commands:
        editor.nvim.command(command.format(file=file))
    if fill:
        editor.lua("vim.api.nvim_buf_set_lines(0, 0, -1, false, ...)", SECRET_LINES)
    if kind != "terminal":
        editor.type("gg")
        editor.type("y4j")
    editor.type(keys)
    editor.type_slowly(f" more {SECRET}", delay=0.04)
    editor.type("<C-F>")
    caught_up(editor)  # whatever the typing and Ctrl+F asked has been asked and answered
    editor.type("<C-\\><C-N>" if kind == "terminal" else "<Esc>")
    if kind == "terminal":
        editor.type("ggy4j")
    ring_idle(editor)  # idle in normal mode: any gathered chunk has been admitted and primed
    sent_from_buffer = list(fake.infill_requests())

    # Another, ordinary buffer: its requests carry the ring's chunks.
    editor.nvim.command("enew")
    editor.type("i")
    editor.type_slowly("go = ")
    editor.wait_hint()
    settle(editor)
    leaked = [r.path for r in fake.requests if SECRET.encode() in r.body]
    if kind == "control-file":
        assert sent_from_buffer, "a plain file buffer is asked about"
        assert leaked, "the test would see the text if it were sent"
    else:
        assert sent_from_buffer == [], f"{kind} buffer: a request was sent"
        assert leaked == [], f"{kind} buffer: its text reached the server"
        assert fake.infill_requests(), "the ordinary buffer is asked about"
    assert_no_errors(editor)


def test_secret_files_are_never_sent_nor_gathered(
    make_editor: Callable[..., Editor], fake: FakeServer, tmp_path: Path
) -> None:
    project = tmp_path / "proj"
    (project / ".ssh").mkdir(parents=True)
    (project / ".gnupg").mkdir()
    (project / "private").mkdir()
    secrets = [
        ".env", ".env.local", "x.pem", "x.key", "id_rsa", "id_rsa.pub", "cert.p12",
        ".netrc", ".git-credentials", ".ssh/config", ".gnupg/gpg.conf",
        "deploy.secret", "private/plan.txt", "notes.md",
    ]  # fmt: skip
    markers = {}
    for i, name in enumerate(secrets):
        marker = f"MARK{i:02d}X"
        markers[name] = marker
        (project / name).write_text("".join(f"{marker} line {n}\n" for n in range(8)))
    (project / "util.py").write_text("".join(f"VISIBLE_UTIL_{n} = {n}\n" for n in range(8)))
    (project / "main.py").write_text("import util\n")
    editor = make_editor(
        {
            "endpoint": fake.infill_url,
            "ring_update_ms": 50,
            "exclude_globs": ["*.secret", "*/private/*"],
            "disabled_filetypes": ["markdown"],
        }
    )
    editor.nvim.command(f"cd {project}")
    for name in secrets:
        editor.nvim.command(f"edit {name}")
        if name == "notes.md":
            assert editor.nvim.eval("&filetype") == "markdown"
        editor.type("ggy5j")  # yank
        editor.type("Go")
        editor.type_slowly("x = 1", delay=0.02)
        editor.type("<C-F>")
        caught_up(editor)  # anything typing or Ctrl+F would ask has been asked
        editor.type("<Esc>")
        editor.nvim.command("write")  # and save
    ring_idle(editor)  # idle: anything gathered has been primed
    assert fake.infill_requests() == [], "a request was made from a secret file"

    editor.nvim.command("edit util.py")
    editor.type("ggy5j")
    editor.nvim.command("edit main.py")
    editor.wait_stats(lambda s: s["ring_chunks"] >= 1 and not s["ring_queued"], "the ring")
    editor.type("Go")
    editor.type_slowly("z = ")
    editor.wait_hint()
    settle(editor)
    sent = b"".join(r.body for r in fake.requests)
    assert b"VISIBLE_UTIL" in sent, "chunks from ordinary files do reach the server"
    for name, marker in markers.items():
        assert marker.encode() not in sent, f"text of {name} reached the server"
    assert_no_errors(editor)


# -- the buffer changes under a request in flight ---------------------------------------------

IN_FLIGHT_ACTIONS = {
    "wiped": "edit {b} | bwipeout! {a}",
    "reloaded": "edit!",
    "switched": "buffer {b}",
    "window-closed": "split {b} | wincmd j | close",
}


HINTS_LUA = """
local ns = vim.api.nvim_create_namespace('llama_nvim')
local out = {}
for _, b in ipairs(vim.api.nvim_list_bufs()) do
  if vim.api.nvim_buf_is_loaded(b) then
    for _, m in ipairs(vim.api.nvim_buf_get_extmarks(b, ns, 0, -1, {details = true})) do
      if m[4].virt_text_pos == 'inline' then
        out[#out + 1] = {b, m[2], m[3], m[4].virt_text[1][1]}
      end
    end
  end
end
return out
"""


@pytest.mark.parametrize("action", list(IN_FLIGHT_ACTIONS))
def test_buffer_changes_while_a_request_is_in_flight(
    make_editor: Callable[..., Editor], fake: FakeServer, tmp_path: Path, action: str
) -> None:
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("def a():\n    pass\n")
    b.write_text("def b():\n    pass\n")
    # Each reply names the text it answers, so a hint shows where it came from.
    fake.responder = lambda r: Reply.completion(f"<{r.json()['prompt']}>", delay=1.0)
    editor = make_editor({"endpoint": fake.infill_url})
    editor.nvim.command(f"edit {b}")
    editor.nvim.command(f"edit {a}")
    editor.type("Go")
    editor.type_slowly("x = ")
    in_flight = wait_until(
        lambda: [r for r in fake.infill_requests() if not r.ended], what="in flight"
    )[-1]
    editor.nvim.command(IN_FLIGHT_ACTIONS[action].format(a=a, b=b))
    # The reply for "x = " has come (or the request was dropped) and been dealt
    # with, as has any request the action set off: it must not show anywhere.
    wait_until(lambda: in_flight.ended, what="the request in flight to end")
    caught_up(editor)
    assert_no_errors(editor)
    current = editor.nvim.current.buffer.number
    row, col = editor.cursor()
    for buf, hint_row, hint_col, text in editor.lua(HINTS_LUA):
        assert text != "<x = >", "the reply for the old state was drawn"
        assert (buf, hint_row, hint_col) == (current, row, col), "a hint away from the cursor"

    # The editor and the plugin carry on.
    editor.type("<Esc>Go")
    editor.type_slowly("y = ")

    def new_hint() -> Hint | None:
        hint = editor.hint()
        return hint if hint is not None and hint.inline == "<y = >" else None

    hint = wait_until(new_hint, timeout=10, what="the hint for the new text")
    assert hint.row == len(editor.lines()) - 1
    assert set(editor.all_hints()) == {editor.nvim.current.buffer.number}
    assert_no_errors(editor)


# -- windows, menus, macros, repeat and undo ------------------------------------------------------


def test_two_windows_on_one_buffer(make_editor: Callable[..., Editor], fake: FakeServer) -> None:
    fake.responder = lambda r: Reply.completion("both()")
    editor = make_editor({"endpoint": fake.infill_url})
    editor.set_text("first\nsecond", filetype="text")
    editor.nvim.command("split")
    top = editor.nvim.current.window
    editor.type("Go")
    editor.type_slowly("a = ")
    editor.wait_hint()
    # To the other window without leaving insert mode: the hint goes.
    editor.type("<C-O><C-W>w")
    wait_until(lambda: editor.nvim.current.window != top, what="the other window")
    wait_until(lambda: editor.all_hints() == {}, what="the hint to go")
    assert editor.mode() == "i"
    other_row = editor.cursor()[0]
    assert other_row != 2
    editor.type("<Tab>")
    wait_until(lambda: "\t" in editor.text(), what="a plain Tab in the other window")
    assert "both()" not in editor.text(), "the hint of the other window was not accepted here"
    # Back: a suggestion there is accepted where it was made, seen in both windows.
    editor.type("<C-O><C-W>w")
    wait_until(lambda: editor.nvim.current.window == top, what="the first window")
    editor.type("<End>")
    editor.type_slowly("b")
    editor.wait_hint()
    editor.type("<Tab>")
    wait_until(lambda: editor.lines()[2] == "a = bboth()", what="the accept")
    windows = editor.nvim.current.tabpage.windows
    assert len(windows) == 2
    assert all(w.buffer.number == top.buffer.number for w in windows)
    assert_no_errors(editor)


def test_tab_goes_to_the_popup_menu_when_it_is_open(
    make_editor: Callable[..., Editor], fake: FakeServer
) -> None:
    fake.responder = lambda r: Reply.completion("ZZZ_SUGGESTED")
    init = 'inoremap <expr> <Tab> pumvisible() ? "\\<C-n>" : "\\<Tab>"'
    editor = make_editor({"endpoint": fake.infill_url}, init=init)
    editor.set_text("alphabet alphanumeric alphorn", filetype="text")
    editor.type("Go")
    editor.type_slowly("alp")
    editor.wait_hint()
    editor.type("<C-N>")
    wait_until(lambda: editor.nvim.call("pumvisible") == 1, what="the popup menu")
    wait_until(lambda: editor.hint() is None, what="the hint to make way for the menu")
    first = editor.lines()[-1]
    editor.type("<Tab>")
    wait_until(lambda: editor.lines()[-1] != first, what="Tab to move in the menu")
    assert editor.lines()[-1] in ("alphabet", "alphanumeric", "alphorn")
    assert "ZZZ" not in editor.text()
    caught_up(editor)  # any reply still due has come
    assert editor.nvim.call("pumvisible") == 1
    assert editor.hint() is None, "no hint over an open menu"
    editor.type("<C-Y>")
    wait_until(lambda: editor.nvim.call("pumvisible") == 0, what="the menu to close")
    assert "ZZZ" not in editor.text()
    assert_no_errors(editor)


def test_macro_recorded_and_replayed_around_a_hint(
    make_editor: Callable[..., Editor], fake: FakeServer
) -> None:
    fake.responder = lambda r: Reply.completion("mac()")
    editor = make_editor({"endpoint": fake.infill_url})
    editor.set_text("start", filetype="text")
    editor.type("qa")
    editor.type("o")
    editor.type_slowly("m = ")
    editor.wait_hint()
    editor.type("<Tab>")
    wait_until(lambda: editor.lines() == ["start", "m = mac()"], what="the accept")
    editor.type("<Esc>q")
    wait_until(lambda: editor.nvim.call("getreg", "a"), what="the macro")
    editor.type("@a")
    wait_until(lambda: len(editor.lines()) == 3, what="the replay")
    editor.type("2@a")
    wait_until(lambda: len(editor.lines()) == 5, what="the second replay")
    caught_up(editor)  # the replay has ended, and any reply it set off has come
    assert editor.mode() == "n"
    lines = editor.lines()
    assert lines[:2] == ["start", "m = mac()"]
    for line in lines[2:]:
        # Replayed keys run faster than any reply: Tab finds no hint and is a Tab.
        assert line in ("m = mac()", "m = \t"), lines
    assert_no_errors(editor)


def test_accept_is_one_undo_step_and_dot_repeats_without_error(
    make_editor: Callable[..., Editor], fake: FakeServer
) -> None:
    fake.responder = lambda r: Reply.completion("dot(\n    1)")
    editor = make_editor({"endpoint": fake.infill_url})
    editor.set_text("base", filetype="text")
    editor.nvim.command("setlocal noautoindent nosmartindent indentexpr=")
    original = editor.text()
    editor.type("o")
    editor.type_slowly("d = ")
    editor.wait_hint()
    editor.type("<C-G>u")  # what was typed so far is its own undo step
    editor.type("<Tab>")
    wait_until(lambda: editor.lines() == ["base", "d = dot(", "    1)"], what="the accept")
    editor.type("<Esc>")
    accepted = editor.text()
    editor.type("u")
    wait_until(lambda: editor.lines() == ["base", "d = "], what="one undo for the accept")
    editor.type("u")
    wait_until(lambda: editor.text() == original, what="the typing undone")
    editor.type("<C-R><C-R>")
    wait_until(lambda: editor.text() == accepted, what="redo to bring it all back")

    editor.type("G.")
    wait_until(lambda: len(editor.lines()) > 3, what="the repeat")
    caught_up(editor)  # the repeat has ended, and any reply it set off has come
    assert editor.mode() == "n"
    assert editor.lines()[:3] == ["base", "d = dot(", "    1)"]
    assert editor.lines()[3].startswith("d = ")
    assert_no_errors(editor)


# -- bad configuration -------------------------------------------------------------------------

BAD_VALUES: dict[str, Any] = {
    "n_prefix": "lots",  # string for a number
    "n_suffix": -5,  # negative size
    "max_prefix_bytes": -1,
    "n_predict": 12.5,  # float for an int
    "timeout_ms": 0.5,
    "api_key": ["k"],  # list for a string
    "stop_strings": "x",  # string for a list
    "auto_fim": "yes",
    "ring_similarity": "high",
    "debounce_ms": [1],
    "show_info": {"a": 1},
    "ring_n_chunks": -3,
    "keymap_accept_full": 5,
    "ca_bundle": "/nonexistent/ca.pem",  # a file that is not there
}


def test_bad_values_of_every_type_are_named_once_and_defaults_used(
    make_editor: Callable[..., Editor], fake: FakeServer
) -> None:
    # A screen big enough for all the problems at once: on a small one Neovim
    # would hold them behind a -- More -- prompt for the user to page through.
    editor = make_editor(
        {"endpoint": fake.infill_url, **BAD_VALUES}, init="set columns=250 lines=60"
    )
    messages = editor.wait_messages("g:llama_config.ca_bundle")
    for key in BAD_VALUES:
        assert messages.count(f"g:llama_config.{key}") == 1, (key, messages)
    assert "using the default 256" in messages
    assert_no_errors(editor)

    # Defaults in force: 256 lines above, 64 below (3 of them as the FIM
    # suffix, the others last in the extra context), Tab accepts. Short lines,
    # so that all 256 fit under the server's prefix cap.
    editor.set_text("\n".join(str(i) for i in range(400)), filetype="text")
    editor.type("256Go")
    editor.type_slowly("q = ")
    editor.wait_hint()
    body = fake.infill_bodies()[-1]
    assert body["input_prefix"] == "".join(f"{i}\n" for i in range(256))
    assert body["input_suffix"] == "\n256\n257\n258\n"
    assert body["input_extra"][-1]["text"] == "".join(f"{i}\n" for i in range(259, 320))
    assert body["stop"] == []
    assert "authorization" not in fake.infill_requests()[-1].headers
    editor.type("<Tab>")
    wait_until(lambda: editor.lines()[256] == "q = tail()", what="Tab to accept")


def test_unknown_key_name_is_named_and_the_default_key_still_works(
    make_editor: Callable[..., Editor], fake: FakeServer
) -> None:
    editor = make_editor(
        {"endpoint": fake.infill_url, "keymap_trigger": "<NoSuchKey>", "auto_fim": False}
    )
    messages = editor.wait_messages("<NoSuchKey>")
    assert messages.count("g:llama_config.keymap_trigger") == 1
    editor.type("i")
    editor.type_slowly("w = ")
    assert caught_up(editor)["events"] >= 1, "the plugin saw the typing"
    assert fake.infill_requests() == [], "auto FIM is off"
    editor.type("<C-F>")
    assert editor.wait_hint(timeout=5).inline == "tail()", "the default trigger key is used"
    assert_no_errors(editor)


@pytest.fixture
def default_port_server() -> Iterator[FakeServer]:
    """A fake server on the default endpoint's port, where a bad endpoint falls back to."""

    def bound() -> FakeServer | None:
        try:
            return FakeServer(lambda r: Reply.completion("default()"), port=8012)
        except OSError:
            return None

    # Another test's server may still hold the port for a moment.
    server = wait_until(bound, timeout=20, interval=0.5, what="port 8012 (the default endpoint)")
    yield server
    server.close()


@pytest.mark.parametrize(
    ("setting", "needle"),
    [
        ("let g:llama_config = 'fast'", "g:llama_config must be a dictionary"),
        ("let g:llama_config = [1, 2]", "g:llama_config must be a dictionary"),
        ("let g:llama_config = {'endpoint': 'ftp://x'}", "g:llama_config.endpoint"),
        ("let g:llama_config = {'endpoint': 'http://[::1'}", "g:llama_config.endpoint"),
        ("let g:llama_config = {'endpoint': 42}", "g:llama_config.endpoint"),
    ],
    ids=["string", "list", "ftp-endpoint", "broken-ipv6-endpoint", "number-endpoint"],
)
def test_bad_config_shape_or_endpoint_falls_back_to_the_defaults(
    make_editor: Callable[..., Editor],
    default_port_server: FakeServer,
    setting: str,
    needle: str,
) -> None:
    editor = make_editor(init=setting)
    messages = editor.wait_messages(needle)
    assert messages.count(needle) == 1, messages
    assert_no_errors(editor)
    editor.type("i")
    editor.type_slowly("d = ")
    hint: Hint = editor.wait_hint()
    assert hint.inline == "default()", "completions work from the default endpoint"
    assert default_port_server.infill_requests()
