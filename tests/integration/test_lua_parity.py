"""The Lua half against its Python mirrors, in a real embedded Neovim.

Python predicts what the editor will send (``cap_lines_above`` and
``accepted_snapshot``: the cache key of the state after Tab); Lua sends the
real context. Where the two disagree, speculative replies are stored under
keys the editor never sends. Lua alone decides how a hint looks
(``M.display``); it is checked against Neovim's own idea of cell widths.

Nothing in the plugin is reached around: the module is put on 'runtimepath'
as the plugin puts it, set up with this test's own channel, and its context is
read from the ``trigger`` notifications it sends (Ctrl+F's path), so the line
capping is context.lua's ``capped_lines`` exactly as used for every request.
Accepting goes through ``M.show`` and ``M.accept`` in insert mode.
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
from llama_nvim.context import Snapshot, accepted_snapshot, before_is_whole, cap_lines_above
from llama_nvim.messages import Keystroke, parse_event
from llama_nvim.plugin import _INSTALL_LUA, RUNTIME_DIR, _lua_options
from llama_nvim.render import RenderPlan
from tests.harness import nvim_binary

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
        # No ring chunks: the only notifications are keystrokes and triggers.
        options = _lua_options(dataclasses.replace(config, ring_n_chunks=0), True)
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

    def accept(self, snapshot: Snapshot, lines: list[str]) -> Snapshot:
        """Show ``lines`` at the snapshot's cursor, press the accept-full action, re-read."""
        plan = RenderPlan(snapshot, lines, "", 0).to_lua()
        self.nvim.exec_lua("require('llama_nvim').show(...)", plan)
        assert self.nvim.exec_lua("return require('llama_nvim').accept('full')") is True
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
        max_prefix_bytes=rng.choice([0, 1, 10, 40, 100, 250, 100_000]),
        max_line_bytes=rng.choice([16, 17, 24, 40]),
    )


# -- line capping ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["ascii", "multibyte, cut between characters", "multibyte, cut inside characters"]
)
def test_lines_above_the_cursor_are_capped_as_python_caps_them(lua: Lua, kind: str) -> None:
    rng = random.Random(f"cap {kind}")
    mismatches: list[str] = []
    for case in range(CASES):
        config = random_caps(rng)
        lua.setup(config)
        lines = random_buffer(rng, config.max_line_bytes, kind)
        row = rng.randrange(len(lines))
        snapshot = lua.snapshot(lines, row, 0)
        expected = cap_lines_above(
            lines[:row], config.n_prefix, config.max_prefix_bytes, config.max_line_bytes
        )
        if snapshot.above != expected:
            mismatches.append(f"case {case}: Lua {snapshot.above!r}, Python {expected!r}")
    assert not mismatches, f"{len(mismatches)} of {CASES} differ; first: {mismatches[0]}"


def test_a_line_cut_inside_a_character_is_capped_as_python_caps_it(lua: Lua) -> None:
    # Lua cuts "a"*14 + "中" to 16 bytes: 14 + two bytes of the three of 中,
    # which reach Python as two undecodable bytes. Python's cut of the same
    # line is one U+FFFD (three bytes), so its byte count differs as well.
    config = dataclasses.replace(Config(), n_prefix=10, max_prefix_bytes=19, max_line_bytes=16)
    lua.setup(config)
    lines = ["x", "a" * 14 + "中", "cursor"]
    snapshot = lua.snapshot(lines, 2, 0)
    assert snapshot.above == cap_lines_above(lines[:2], 10, 19, 16)


def test_the_harness_reads_the_context_lua_sends(lua: Lua) -> None:
    lua.setup(dataclasses.replace(Config(), n_prefix=2))
    snapshot = lua.snapshot(["one", "two", "three", "fo|ur", "five"], 3, 2)
    assert snapshot.above == ("two", "three")
    assert (snapshot.before, snapshot.after, snapshot.below) == ("fo", "|ur", ("five",))
    assert snapshot.manual


# -- accepting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["short lines", "long ascii lines"])
def test_the_state_after_accepting_is_the_one_python_predicts(lua: Lua, kind: str) -> None:
    rng = random.Random(f"accept {kind}")
    mismatches: list[str] = []
    for case in range(CASES):
        if kind == "short lines":
            # nothing is cut: every line, before and after the accept, fits
            config = dataclasses.replace(random_caps(rng), max_line_bytes=80)
            alphabet, longest = ASCII + MULTIBYTE, 8
        else:
            config = random_caps(rng)
            alphabet, longest = ASCII, 3 * config.max_line_bytes
        lua.setup(config)

        def text(alphabet: str = alphabet, longest: int = longest) -> str:
            return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, longest)))

        lines = [text() for _ in range(rng.randint(1, 12))]
        row = rng.randrange(len(lines))
        chars = rng.randint(0, len(lines[row]))
        col = len(lines[row][:chars].encode())
        suggestion = [text() for _ in range(rng.choice([1, 1, 2, 3, 5]))]
        if not "".join(suggestion).strip():
            suggestion[0] = "q"
        before = lua.snapshot(lines, row, col)
        if len(suggestion) > 1 and not before_is_whole(before):
            continue  # the engine does not speculate here: the line above is unknown
        after = lua.accept(before, suggestion)
        predicted = accepted_snapshot(
            before,
            suggestion,
            n_prefix=config.n_prefix,
            max_prefix_bytes=config.max_prefix_bytes,
            max_line_bytes=config.max_line_bytes,
        )
        if (predicted.above, predicted.before) != (after.above, after.before):
            mismatches.append(
                f"case {case}: Lua {after.above[-2:]!r} {after.before!r}, "
                f"Python {predicted.above[-2:]!r} {predicted.before!r}"
            )
    assert not mismatches, f"{len(mismatches)} of {CASES} differ; first: {mismatches[0]}"


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
