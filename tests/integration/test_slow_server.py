"""A server slower than the typist: the CPU-bound test model, typed at a person's pace.

Each request takes this server a few hundred milliseconds, longer than the gap
between keys. The server's own /metrics say how many requests it works on and
how many wait for its one slot; a thread samples them while the user types.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.harness import Editor, LlamaServer, caught_up, human_pause, wait_until

pytestmark = pytest.mark.integration

SOURCE = "import os\n\n\ndef main():\n    total = 0\n    return total\n"
# A typist's gap between keys (s): well under this server's time per request.
KEY_GAP = 0.08


class ServerLoad:
    """Samples the server's requests_processing / requests_deferred gauges in a thread."""

    def __init__(self, server: LlamaServer) -> None:
        self._url = server.url + "/metrics"
        self._stop = threading.Event()
        self.processing: list[int] = []
        self.deferred: list[int] = []
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> ServerLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _gauge(self, text: str, name: str) -> int:
        match = re.search(rf"^llamacpp:{name} (\d+)", text, re.M)
        assert match is not None, text
        return int(match.group(1))

    def _sample(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                text = client.get(self._url).text
                self.processing.append(self._gauge(text, "requests_processing"))
                self.deferred.append(self._gauge(text, "requests_deferred"))
                self._stop.wait(0.01)


def open_line(editor: Editor, path: Path) -> None:
    """Edit a file whose requests all share one cached prefix, on a fresh line in main()."""
    path.write_text(SOURCE)
    editor.nvim.command(f"edit {path}")
    editor.type("6GO")  # a new line 6, above "    return total"


def typed(editor: Editor, text: str) -> None:
    for char in text:
        editor.type(char)
        human_pause(KEY_GAP)


def test_typing_faster_than_the_server_keeps_one_request_and_no_queue(
    make_editor: Callable[..., Editor], slow_server: LlamaServer, tmp_path: Path
) -> None:
    # The debounce set: paced, it would hold keys back until a pause, and keys
    # must come while a request is on the wire here.
    config = {"endpoint": slow_server.infill_url, "speculative": False, "debounce_ms": 10}
    editor = make_editor(config)
    open_line(editor, tmp_path / "a.py")
    caught_up(editor)  # the request for the empty line, so the prefix is cached
    before = editor.stats()
    with ServerLoad(slow_server) as load:
        typed(editor, "    count = total + len(os.environ)")
        stats = caught_up(editor)
    keys = stats["events"] - before["events"]
    requests = stats["requests"] - before["requests"]
    assert keys >= 30
    assert max(load.processing) <= 1, "the server worked on two of our requests at once"
    assert max(load.deferred) == 0, "a request of ours queued behind another"
    assert stats["cancelled"] == before["cancelled"], "typing along a line cancels nothing"
    # The regime this test is about: keys came while a request was on the wire.
    assert stats["waited"] - before["waited"] >= keys / 4, stats
    assert requests >= 2, "answers that did not match were followed by a request for the newest"


# Collects how long each request the user waited for took (the User event's ms).
RECORD_REQUEST_TIMES = """
vim.g.llama_test_ms = {}
vim.api.nvim_create_autocmd('User', {
  pattern = 'LlamaRequestDone',
  callback = function(ev)
    local times = vim.g.llama_test_ms
    table.insert(times, ev.data.ms)
    vim.g.llama_test_ms = times
  end,
})
"""


def test_a_pause_of_twice_the_servers_request_time_ends_with_a_suggestion(
    make_editor: Callable[..., Editor], slow_server: LlamaServer, tmp_path: Path
) -> None:
    editor = make_editor({"endpoint": slow_server.infill_url, "speculative": False})
    editor.lua(RECORD_REQUEST_TIMES)
    open_line(editor, tmp_path / "b.py")
    caught_up(editor)
    for word in ("    value = ", "total", " + ", "len("):
        done_before = len(editor.nvim.vars["llama_test_ms"])
        typed(editor, word)
        started = time.monotonic()
        editor.wait_hint(timeout=10)
        waited = time.monotonic() - started
        caught_up(editor)
        # The requests this word made, as long as each took: the pause waits at
        # most for the one on the wire when it began, then one for the newest text.
        times = editor.nvim.vars["llama_test_ms"][done_before:]
        request_s = max(times, default=0) / 1000  # none: the cache answered
        assert waited < 2 * request_s + 0.3, (word, round(waited, 2), times)
        editor.type("<Esc>a")  # keep the text, drop the hint: the next word asks anew


def _more_requests_than(count: int) -> Callable[[dict[str, int]], bool]:
    return lambda stats: stats["requests"] > count


def test_an_answer_for_a_place_typed_through_shows_the_rest(
    make_editor: Callable[..., Editor], slow_server: LlamaServer, tmp_path: Path
) -> None:
    # A small cache: leaving for another file and coming back forgets the
    # first answer, so coming back asks the server again.
    editor = make_editor(
        {"endpoint": slow_server.infill_url, "speculative": False, "max_cache_keys": 4}
    )
    other = tmp_path / "other.py"
    other.write_text("def other():\n    pass\n")
    served = 0
    for _ in range(3):  # a few tries, should the server's timing limit cut an answer short
        open_line(editor, tmp_path / "c.py")
        typed(editor, "    name = ")
        first = editor.wait_hint(timeout=10).inline
        editor.type("<Esc>")
        editor.nvim.command(f"silent! write | edit {other}")
        editor.type("GA")
        editor.wait_hint(timeout=10)  # another answer fills the cache
        editor.type("<Esc>")
        editor.nvim.command(f"silent! write | edit {tmp_path / 'c.py'}")
        before = caught_up(editor)
        editor.type("6GA")  # back at the end of "    name = ": a request goes out
        editor.wait_stats(_more_requests_than(before["requests"]), "the request")
        editor.type(first[0])  # typed before the answer comes
        stats = caught_up(editor)
        hint = editor.wait_hint(timeout=10)
        if stats["served_on_arrival"] > before["served_on_arrival"]:
            assert stats["requests"] == before["requests"] + 1, "served without a second request"
            line = editor.lines()[5]
            assert line.endswith("name = " + first[0]), line
            assert (hint.row, hint.col) == (5, len(line.encode())), hint
            served += 1
            break
        editor.type("<Esc>")
        editor.nvim.command("silent! %d | write")
    assert served == 1, "the answer never matched what was typed in three tries"


# Records every hint drawn ({growing, lines}); with g:llama_test_tab_on_growing
# set, the user presses Tab as soon as the first words of a suggestion show.
RECORD_DRAWS = """
local hint = require('llama_nvim.hint')
local draw = hint.show
vim.g.llama_test_draws = {}
local pressed = false
hint.show = function(plan)
  draw(plan)
  if hint.current() ~= plan then
    return
  end
  local draws = vim.g.llama_test_draws
  table.insert(draws, { growing = plan.growing, lines = plan.lines })
  vim.g.llama_test_draws = draws
  if plan.growing and vim.g.llama_test_tab_on_growing and not pressed then
    pressed = true
    vim.api.nvim_input('<Tab>')
  end
end
"""


def draws(editor: Editor) -> list[tuple[bool, str]]:
    return [(d["growing"], "\n".join(d["lines"])) for d in editor.nvim.vars["llama_test_draws"]]


# Long answers, without pacing, so that the server streams each for a while.
LONG_ANSWERS = {"speculative": False, "latency_target_ms": 0, "n_predict": 96,
                "t_max_predict_ms": 5000, "t_max_predict_ms_first": 5000}  # fmt: skip


def test_a_slow_answer_is_on_screen_while_it_is_generated(
    make_editor: Callable[..., Editor], slow_server: LlamaServer, tmp_path: Path
) -> None:
    editor = make_editor({"endpoint": slow_server.infill_url, **LONG_ANSWERS})
    editor.lua(RECORD_DRAWS)
    open_line(editor, tmp_path / "g.py")
    caught_up(editor)
    seen = draws(editor)
    # Its first words were drawn before the answer was finished, then replaced by it.
    finished = [text for growing, text in seen if not growing]
    assert finished, seen
    growing = [text for is_growing, text in seen[: seen.index((False, finished[0]))] if is_growing]
    assert growing, seen
    assert all(finished[0].startswith(text.rstrip()) for text in growing), seen
    stats = editor.stats()
    assert stats["cancelled"] == 0
    assert stats["shown"] <= stats["requests"], "a growing hint is one suggestion"
    assert editor.hint() is not None
    assert editor.lines()[5] == "    ", "nothing is inserted until accepted"


def test_tab_on_a_growing_suggestion_inserts_what_is_shown(
    make_editor: Callable[..., Editor], slow_server: LlamaServer, tmp_path: Path
) -> None:
    editor = make_editor({"endpoint": slow_server.infill_url, **LONG_ANSWERS})
    editor.lua(RECORD_DRAWS)
    editor.nvim.vars["llama_test_tab_on_growing"] = True
    open_line(editor, tmp_path / "h.py")
    wait_until(lambda: editor.nvim.vars["llama_test_draws"], timeout=10, what="a hint")
    editor.keys_handled()
    first_growing, first_text = draws(editor)[0]
    assert first_growing, draws(editor)
    lines = editor.lines()
    # The hint only grows: what Tab inserted starts with what was first drawn.
    inserted = "\n".join(lines[5 : 5 + first_text.count("\n") + 1])
    assert inserted.startswith("    " + first_text), (first_text, lines)  # after the indent
    assert lines[:5] == SOURCE.splitlines()[:5]
    assert lines[-1] == "    return total"
