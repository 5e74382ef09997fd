"""Thirty minutes of typing, compressed: the plugin must not leak or wear down.

Thousands of keystrokes against the real llama-server, across several buffers,
with seeded random jumps, accepts, manual requests, yanks, leaving and entering
insert mode. After a warm-up the host's memory, tasks and sockets are measured,
then again at the end; the ring and the cache are watched against their limits
throughout; and nothing may have gone wrong on the way.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.harness import Editor, LlamaServer, human_pause, poll_until, wait_until

pytestmark = pytest.mark.integration

SOURCE = Path(httpx.__file__).with_name("_models.py").read_text().split("\n")
WORDS = [
    "value", "result", "self", "return", "items", "for", "in", "if", "not", "None",
    "len(", ")", "[0]", " = ", " + ", ", ", ".append(", "data", "key", "headers",
    "True", "url", "def", "x", "count", "#", ":", "'text'", "1", "0",
]  # fmt: skip
RING_N_CHUNKS = 8
MAX_CACHE_KEYS = 64
TOTAL_KEYS = 3200
WARM_UP_KEYS = 500


class Typist:
    """Types like a person in a hurry, counting every key."""

    def __init__(self, editor: Editor, files: list[Path], seed: int) -> None:
        self.editor = editor
        self.files = files
        self.rng = random.Random(seed)
        self.keys = 0
        self.samples: list[dict[str, int]] = []

    def key(self, keys: str, count: int = 1) -> None:
        self.editor.type(keys)
        self.keys += count
        human_pause(0.01)

    def glance(self) -> None:
        """Pause for up to half a second to look at a suggestion; sometimes take it."""
        poll_until(self.editor.hint, timeout=0.5)
        if self.editor.hint() is not None and self.rng.random() < 0.4:
            self.key(self.rng.choice(["<Tab>", "<Tab>", "<S-Tab>", "<C-B>"]))

    def text(self, text: str) -> None:
        for char in text:
            self.key("<lt>" if char == "<" else char)

    def leave(self) -> None:
        self.key("<Esc>")

    def step(self) -> None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.55:
            self.text("".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4))))
            if rng.random() < 0.45:
                self.glance()
        elif roll < 0.63:
            self.key("<Tab>")
        elif roll < 0.68:
            self.key("<C-F>")
            human_pause(0.05)
        elif roll < 0.75:
            self.key("<CR>")
        elif roll < 0.79:
            self.key("<BS>", 1)
            self.key("<BS>", 1)
        elif roll < 0.87:  # leave insert mode, jump, come back
            self.leave()
            line = rng.randint(1, max(1, int(self.editor.nvim.call("line", "$"))))
            self.text(f"{line}G")
            self.key(rng.choice(["o", "A", "I", "O"]))
        elif roll < 0.91:  # yank a few lines
            self.leave()
            self.text(f"y{rng.randint(3, 12)}j")
            self.key("o")
        elif roll < 0.96:  # another buffer
            self.leave()
            path = str(rng.choice(self.files))
            self.editor.lua(
                "local b = vim.fn.bufadd(...); vim.fn.bufload(b); vim.bo[b].buflisted = true; "
                "vim.api.nvim_set_current_buf(b)",
                path,
            )
            self.key(rng.choice(["Go", "ggO", "A"]))
        else:  # think: stay idle in normal mode a moment (the ring is updated now)
            self.leave()
            human_pause(0.3)
            self.key("u")
            self.key("o")

    def sample(self) -> None:
        self.samples.append(self.editor.stats())


def quiesce(editor: Editor) -> dict[str, int]:
    """Normal mode, nothing in flight, the ring's queue drained."""
    editor.type("<Esc>")
    return editor.wait_stats(
        lambda s: not s["in_flight"] and not s["ring_queued"],
        "the plugin to go idle",
        timeout=30,
    )


def test_thousands_of_keystrokes_leave_memory_tasks_and_sockets_bounded(
    make_editor: Callable[..., Editor], llama_server: LlamaServer, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    files = []
    for i, start in enumerate(range(0, 900, 300)):
        path = project / f"module{i}.py"
        path.write_text("\n".join(SOURCE[start : start + 300]) + "\n")
        files.append(path)
    editor = make_editor(
        {
            "endpoint": llama_server.infill_url,
            "ring_n_chunks": RING_N_CHUNKS,
            "ring_chunk_size": 16,
            "ring_update_ms": 100,
            "max_cache_keys": MAX_CACHE_KEYS,
        },
        init="set hidden",
    )
    editor.nvim.command(f"cd {project}")
    editor.nvim.command(f"edit {files[0]}")
    editor.type("Go")
    typist = Typist(editor, files, seed=20240611)
    started = time.monotonic()

    while typist.keys < WARM_UP_KEYS:
        typist.step()
    warm = quiesce(editor)
    warm_sockets = editor.host_sockets()
    editor.type("o")

    next_sample = typist.keys + 200
    while typist.keys < TOTAL_KEYS:
        typist.step()
        if typist.keys >= next_sample:
            typist.sample()
            next_sample += 200
    end = quiesce(editor)
    end_sockets = editor.host_sockets()
    elapsed = time.monotonic() - started

    report = (
        f"{typist.keys} keys in {elapsed:.0f} s; warm {warm}; end {end}; "
        f"sockets {warm_sockets} -> {end_sockets}"
    )
    # It was real work: suggestions asked for, shown, cancelled, cached, primed.
    assert end["user_requests"] > 100, report
    assert end["shown"] > 50, report
    assert end["cancelled"] > 20, report
    assert end["primes"] >= 1, report
    assert end["failed"] == 0, report
    # Bounded host: memory, tasks and sockets do not grow with use. (Polled: a
    # task or a connection still closing is not a leak; one that stays is.)
    assert end["rss_kb"] - warm["rss_kb"] < 30 * 1024, report
    editor.wait_stats(lambda s: s["tasks"] <= warm["tasks"], f"no leaked tasks: {report}", 10)
    # (one keep-alive connection to the server may be open or not at either time)
    wait_until(
        lambda: editor.host_sockets() <= warm_sockets + 1, 10, what=f"no leaked sockets: {report}"
    )
    # The ring and the cache never pass their limits, and the cache did fill.
    for stats in [*typist.samples, warm, end]:
        assert stats["ring_chunks"] <= RING_N_CHUNKS, stats
        assert stats["ring_queued"] <= RING_N_CHUNKS, stats
        assert stats["cache_entries"] <= MAX_CACHE_KEYS, stats
    assert max(s["cache_entries"] for s in typist.samples) == MAX_CACHE_KEYS, report
    # Nothing went wrong on the way.
    errors = editor.error_report()
    assert not errors, errors
    assert "llama.nvim: " not in editor.messages(), editor.messages()
    log = editor.host_log()
    for mark in ("Traceback", "[ERROR", "Exception"):
        assert mark not in log, log[-3000:]
    assert editor.host_roundtrip() < 0.5, "the host still answers at once"
