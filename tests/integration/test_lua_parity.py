"""The Lua half's own rules, in a real embedded Neovim.

The snapshot the editor sends per keystroke, capped in context.lua, is the
suggestion cache's key; after a hint is drawn, Lua also sends (``shown``) the
snapshot it will send once the hint is accepted, the key the speculative
request stores its answer under. Where the two differ, speculative answers
are never found. Lua alone decides how a hint looks (``M.display``); it is
checked against Neovim's own idea of cell widths.

Nothing in the plugin is reached around: the module is put on 'runtimepath'
as the plugin puts it, set up with this test's own channel, and its context is
read from the ``trigger`` notifications it sends (Ctrl+F's path, the same
snapshot every keystroke sends). Hints are drawn with ``M.show`` and accepted
with the real Tab key in insert mode.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
from collections.abc import Iterator
from typing import Any

import pynvim
import pytest

from llama_nvim.config import Config
from llama_nvim.context import Snapshot
from llama_nvim.messages import Keystroke, Shown, parse_event
from llama_nvim.plugin import _INSTALL_LUA, RUNTIME_DIR
from llama_nvim.render import RenderPlan
from llama_nvim.session import lua_options
from tests.harness import nvim_binary, wait_until

pytestmark = pytest.mark.integration

CASES = 150

ASCII = "abcxyz_ (){}=+,.:;'\"#\t"
# Two-, three- and four-byte characters.
MULTIBYTE = "éß中文😀🙂"


class Lua:
    """The plugin's Lua module in an embedded Neovim, talking to this test."""

    def __init__(self, nvim: Any) -> None:
        self.nvim = nvim

    def setup(self, config: Config) -> None:
        # No ring chunks: the only notifications are keystrokes, triggers and hints shown.
        options = lua_options(dataclasses.replace(config, ring_n_chunks=0), True)
        problems = self.nvim.exec_lua(
            "return require('llama_nvim').setup(...)", self.nvim.channel_id, options
        )
        assert problems == []

    def snapshot(self, lines: list[str], row: int, col: int) -> Snapshot:
        """The context Lua sends with the cursor at (row, byte col), as Python reads it."""
        self.nvim.current.buffer[:] = lines
        self.nvim.current.window.cursor = (row + 1, col)
        return self.trigger()

    def trigger(self) -> Snapshot:
        self.nvim.exec_lua("require('llama_nvim').trigger()")
        for _ in range(10_000):  # skip the keystroke events of the cursor moves
            message = self.nvim.next_message()
            if message.name == "llama_nvim_event" and message.args[0] == "trigger":
                event = parse_event(*message.args[:2])
                assert isinstance(event, Keystroke), message.args
                return event.snapshot
        raise AssertionError("no trigger event from the Lua side")

    def show(self, snapshot: Snapshot, lines: list[str]) -> Snapshot | None:
        """Draw ``lines`` at the snapshot's cursor; the after-accept snapshot Lua sends, if any."""
        plan = RenderPlan(snapshot, lines, "", 0).to_lua()
        self.nvim.exec_lua(
            "require('llama_nvim').show(...) vim.rpcnotify(select(2, ...), 'shown_done')",
            plan,
            self.nvim.channel_id,
        )
        after_accept = None
        for _ in range(10_000):
            message = self.nvim.next_message()
            if message.name == "shown_done":
                return after_accept
            if message.name == "llama_nvim_event" and message.args[0] == "shown":
                event = parse_event(*message.args[:2])
                assert isinstance(event, Shown), message.args
                after_accept = event.after_accept
        raise AssertionError("show did not return")

    def tab(self) -> Snapshot:
        """Press Tab (the accept-full key) on the shown hint; the context Lua sends then."""
        text = self.nvim.current.buffer[:]
        self.nvim.input("<Tab>")
        wait_until(lambda: self.nvim.current.buffer[:] != text, what="Tab to insert the hint")
        return self.trigger()

    def display(self, cases: list[tuple[str, int, int]]) -> list[str]:
        shown = self.nvim.exec_lua(
            """
            local M, out = require('llama_nvim'), {}
            for i, c in ipairs(...) do out[i] = M.display(c[1], c[2], c[3]) end
            return out
            """,
            [list(case) for case in cases],
        )
        return [str(text) for text in shown]


@pytest.fixture(scope="module")
def lua() -> Iterator[Lua]:
    argv = [nvim_binary(), "--embed", "--headless", "-u", "NONE", "-i", "NONE", "-n"]
    nvim = pynvim.attach("child", argv=argv)
    try:
        nvim.exec_lua(_INSTALL_LUA, str(RUNTIME_DIR))
        wrapper = Lua(nvim)
        wrapper.setup(Config())
        # Insert mode, where the context is gathered: the cursor may sit after
        # the last character, and show/accept work as when the user types.
        nvim.command("startinsert")
        assert nvim.api.get_mode()["mode"] == "i"
        yield wrapper
    finally:
        with contextlib.suppress(Exception):  # the child may be gone already
            nvim.command("qa!")
        nvim.close()


def random_line(rng: random.Random, max_line: int, alphabet: str) -> str:
    length = rng.choice([0, 0, 1, 3, max_line // 2, max_line - 1, max_line, max_line + 1])
    if rng.random() < 0.3:
        length = rng.randint(max_line, 3 * max_line)
    return "".join(rng.choice(alphabet) for _ in range(length))


def cut_on_char_boundaries(line: str, max_line: int) -> str:
    """``line`` reshaped so a cut at ``max_line`` bytes never splits a character."""
    if len(line.encode()) <= max_line:
        return line
    head = line.encode()[:max_line].decode("utf-8", "ignore")
    padding = "a" * (max_line - len(head.encode()))  # one-byte characters up to the cut
    return head + padding + line[len(head) :]


def random_buffer(rng: random.Random, max_line: int, kind: str) -> list[str]:
    alphabet = ASCII if kind == "ascii" else ASCII + MULTIBYTE * 2
    lines = [random_line(rng, max_line, alphabet) for _ in range(rng.randint(1, 14))]
    if kind == "multibyte, cut between characters":
        lines = [cut_on_char_boundaries(line, max_line) for line in lines]
    return lines


def random_caps(rng: random.Random) -> Config:
    return dataclasses.replace(
        Config(),
        n_prefix=rng.choice([0, 1, 2, 5, 8, 20]),
        n_suffix=rng.choice([0, 1, 3, 20]),
        max_prefix_bytes=rng.choice([0, 1, 10, 40, 100, 250, 100_000]),
        max_suffix_bytes=rng.choice([0, 10, 100, 100_000]),
        max_line_bytes=rng.choice([16, 17, 24, 40]),
    )


def the_key(s: Snapshot) -> tuple[Any, ...]:
    """What the cache key and the request are built from (not the tick, the screen column)."""
    return (s.buf, s.row, s.col, s.above, s.before, s.after, s.below, s.filename, s.filetype)


# -- line capping ----------------------------------------------------------------------------

CAPPING_CASES = [
    # (lines above the cursor, n_prefix, max_prefix_bytes, max_line_bytes, sent above)
    (["l7", "l8", "l9"], 2, 10_000, 100, ("l8", "l9")),
    (["l7", "l8", "l9"], 0, 10_000, 100, ()),
    # the lines nearest the cursor within the bytes, each counting a line break
    (["aaaa", "bbbb", "cccc"], 10, 15, 100, ("aaaa", "bbbb", "cccc")),
    (["aaaa", "bbbb", "cccc"], 10, 14, 100, ("bbbb", "cccc")),
    (["aaaa", "bbbb", "cccc"], 10, 4, 100, ()),
    # the first line that does not fit ends the lines sent, however short the next
    (["a", "bbbbbbbbbbbbbbb", "c"], 10, 10, 100, ("c",)),
    (["", "", "", "x"], 10, 4, 100, ("", "", "x")),  # an empty line costs one byte
    (["é", "中"], 10, 7, 100, ("é", "中")),  # bytes, not characters
    (["é", "中"], 10, 6, 100, ("中",)),
    # long lines are cut to max_line_bytes before they are counted
    (["x" * 50, "y" * 30], 10, 22, 10, ("x" * 10, "y" * 10)),
    (["x" * 50, "y" * 30], 10, 21, 10, ("y" * 10,)),
]


@pytest.mark.parametrize(("above", "n_prefix", "max_bytes", "max_line", "sent"), CAPPING_CASES)
def test_lines_above_the_cursor_are_capped(
    lua: Lua, above: list[str], n_prefix: int, max_bytes: int, max_line: int, sent: tuple[str]
) -> None:
    config = dataclasses.replace(
        Config(), n_prefix=n_prefix, max_prefix_bytes=max_bytes, max_line_bytes=max_line
    )
    lua.setup(config)
    assert lua.snapshot([*above, "cursor"], len(above), 0).above == sent


def test_a_line_is_never_cut_inside_a_character(lua: Lua) -> None:
    # 16 bytes of "a"*14 + "中" would end inside 中 (three bytes): the cut
    # falls before it, and the line costs 15 bytes of the 19.
    config = dataclasses.replace(Config(), n_prefix=10, max_prefix_bytes=19, max_line_bytes=16)
    lua.setup(config)
    snapshot = lua.snapshot(["x", "a" * 14 + "中", "cursor"], 2, 0)
    assert snapshot.above == ("x", "a" * 14)
    tail = lua.snapshot(["中" + "a" * 14 + "|"], 0, 17)
    assert tail.before == "a" * 14  # the text left of the cursor keeps its end


def test_the_harness_reads_the_context_lua_sends(lua: Lua) -> None:
    lua.setup(dataclasses.replace(Config(), n_prefix=2))
    snapshot = lua.snapshot(["one", "two", "three", "fo|ur", "five"], 3, 2)
    assert snapshot.above == ("two", "three")
    assert (snapshot.before, snapshot.after, snapshot.below) == ("fo", "|ur", ("five",))
    assert snapshot.manual


# -- accepting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["ascii", "multibyte, cut between characters", "multibyte, cut inside characters"]
)
def test_the_snapshot_sent_for_after_accepting_is_the_one_sent_after_tab(
    lua: Lua, kind: str
) -> None:
    rng = random.Random(f"accept {kind}")
    mismatches: list[str] = []
    cut = 0
    for case in range(CASES):
        config = random_caps(rng)
        lua.setup(config)
        lines = random_buffer(rng, config.max_line_bytes, kind)
        row = rng.randrange(len(lines))
        chars = rng.randint(0, len(lines[row]))
        col = len(lines[row][:chars].encode())
        # Control characters too: a reply may hold anything, NUL included.
        alphabet = (ASCII if kind == "ascii" else ASCII + MULTIBYTE) + "\x00\x1b"
        suggestion = [
            random_line(rng, config.max_line_bytes, alphabet)
            for _ in range(rng.choice([1, 1, 2, 3, 5]))
        ]
        if not "".join(suggestion).strip():
            suggestion[0] = "q"
        before = lua.snapshot(lines, row, col)
        after_accept = lua.show(before, suggestion)
        if after_accept is None:
            # Only a multi-line hint where the text left of the cursor was cut.
            assert len(suggestion) > 1, case
            assert col > config.max_line_bytes, (case, col)
            cut += 1
            lua.nvim.exec_lua("require('llama_nvim').hide()")
            continue
        after_tab = lua.tab()
        assert not after_accept.manual
        if the_key(after_accept) != the_key(after_tab):
            mismatches.append(f"case {case}: shown {after_accept!r}, after Tab {after_tab!r}")
    assert not mismatches, f"{len(mismatches)} of {CASES} differ; first: {mismatches[0]}"
    assert cut < CASES // 2, "most cases must be compared"


def test_no_snapshot_for_after_accepting_several_lines_on_a_cut_line(lua: Lua) -> None:
    # The text left of the cursor is longer than max_line_bytes: only the
    # trigger key asks there, and the engine is not sent the state after a
    # multi-line accept (no speculation), as ever; a one-line hint is fine.
    lua.setup(dataclasses.replace(Config(), max_line_bytes=16))
    line = "0123456789abcdefghij"
    before = lua.snapshot([line], 0, len(line))
    assert lua.show(before, ["1", "2"]) is None
    single = lua.show(before, ["XYZ"])
    assert single is not None
    assert single.before == "6789abcdefghijXYZ"[-16:]
    lua.nvim.exec_lua("require('llama_nvim').hide()")


# -- display text ---------------------------------------------------------------------------------

C0 = "".join(chr(c) for c in range(0x20)) + "\x7f"
PRINTABLE = (
    "abc XYZ 123 {}()[]#.,;"
    + "".join(chr(c) for c in range(0xA0, 0x100))  # Latin-1, incl. the soft hyphen
    + "".join(chr(c) for c in range(0x300, 0x370))  # combining accents
    + "".join(chr(c) for c in range(0x4E00, 0x4E40))  # CJK ideographs
    + "".join(chr(c) for c in range(0xAC00, 0xAC20))  # Hangul syllables
    + "".join(chr(c) for c in range(0xFF01, 0xFF5F))  # fullwidth forms
    + "".join(chr(c) for c in range(0x1F600, 0x1F650))  # emoji faces
)


DISPLAY_CASES = [
    # tabs expand relative to the start column
    ("\tx", 0, 8, "        x"),
    ("\tx", 3, 8, "     x"),
    ("\tx", 7, 8, " x"),
    ("\tx", 8, 8, "        x"),
    ("\tx", 10, 4, "  x"),
    ("a\tb", 0, 4, "a   b"),
    ("ab\t\tc", 1, 4, "ab " + "    " + "c"),
    ("\t", 0, 1, " "),
    # control characters in caret notation, C1 ones as <xx>
    ("\x1b[31mred", 0, 8, "^[[31mred"),
    ("a\x00b", 0, 8, "a^@b"),
    ("\x07", 0, 8, "^G"),
    ("\x0d", 0, 8, "^M"),
    ("\x7f", 0, 8, "^?"),
    ("\x85", 0, 8, "<85>"),
    ("\x9b2J", 0, 8, "<9b>2J"),
    ("\x1b\tx", 0, 8, "^[" + " " * 6 + "x"),
    ("\x85\tx", 0, 8, "<85>" + " " * 4 + "x"),
    # printable text unchanged; wide characters take two cells before a tab
    ('fn main() { println!("héllo → 世界"); }', 5, 8, 'fn main() { println!("héllo → 世界"); }'),
    ("日本\tx", 0, 8, "日本" + " " * 4 + "x"),
]


def test_display_of_tabs_and_control_characters(lua: Lua) -> None:
    shown = lua.display([(text, vcol, ts) for text, vcol, ts, _ in DISPLAY_CASES])
    assert shown == [expected for *_, expected in DISPLAY_CASES]


def test_display_puts_everything_where_neovim_would(lua: Lua) -> None:
    """The shown text is as wide as Neovim itself draws the literal text."""
    rng = random.Random("display")
    cases = []
    for _ in range(600):
        # No NUL: a Vim string cannot hold one, so strdisplaywidth() cannot judge it.
        pools = ["\t" * 4, C0.replace("\x00", ""), PRINTABLE, PRINTABLE]
        text = "".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(0, 30)))
        cases.append((text, rng.randint(0, 20), rng.choice([1, 2, 3, 4, 8])))
    shown = lua.display(cases)
    widths = lua.nvim.exec_lua(
        """
        local out = {}
        for i, c in ipairs(...) do
          vim.bo.tabstop = c[3]
          out[i] = vim.fn.strdisplaywidth(c[1], c[2])
        end
        return out
        """,
        [list(case) for case in cases],
    )
    shown_widths = lua.nvim.exec_lua(
        "local out = {} for i, t in ipairs(...) do out[i] = vim.api.nvim_strwidth(t) end "
        "return out",
        shown,
    )
    mismatches = [
        f"{case!r}: shown {text!r} is {got} cells, Neovim draws {want}"
        for case, text, got, want in zip(cases, shown, shown_widths, widths, strict=True)
        if got != want
    ]
    assert not mismatches, f"{len(mismatches)} of {len(cases)} differ; first: {mismatches[0]}"


def test_no_control_character_reaches_the_screen(lua: Lua) -> None:
    every_control = "".join(chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)])
    (shown,) = lua.display([(every_control.replace("\t", ""), 0, 8)])
    assert all(0x20 <= ord(ch) < 0x7F for ch in shown)
