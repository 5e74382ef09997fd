"""Two Neovims, one llama-server with two slots: each editor keeps its own KV cache.

Both edit one file of one project, so their prompts share a long prefix; left
to choose, the server would put both in the slot whose cache matches best and
each request would throw away the other editor's text. Each editor leases a
slot of its own (slot_lease.py); the figures are the server's own ``timings``
(cache_n reused, prompt_n computed) of each editor's last request.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from llama_nvim.client import server_root
from llama_nvim.slot_lease import SlotLease, lease_dir
from tests.fakeserver import Received, Reply
from tests.harness import Editor, LlamaServer, caught_up, free_port, ring_idle
from tests.recording_proxy import RecordingProxy

pytestmark = pytest.mark.integration

MODELS = Path(httpx.__file__).with_name("_models.py").read_text().split("\n")
SOURCE = MODELS[:120]
OTHER = MODELS[400:460]  # another file of the project, for the extra context
# Where each editor types: far apart, so that a request from one editor's
# place in the other's slot recomputes everything between them.
ROW_A, ROW_B = 30, 10
# Manual requests only: one request per Ctrl+F, nothing between.
QUIET = {"auto_fim": False, "speculative": False, "ring_update_ms": 50}


@pytest.fixture
def two_slot_server(fim_model: Path) -> Iterator[LlamaServer]:
    """A fresh server: no slot holds what an earlier test left."""
    server = LlamaServer(fim_model, free_port(), "-np", "2", ctx=8192)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def project_file(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    path = root / "models.py"
    path.write_text("\n".join(SOURCE) + "\n")
    (root / "other.py").write_text("\n".join(OTHER) + "\n")
    return path


def open_at(editor: Editor, path: Path, row: int) -> None:
    """Yank from the project's other file, edit ``path`` and open a line below ``row``.

    The yank puts the other file into the ring: the extra context both
    editors send first, so their prompts share a long prefix.
    """
    editor.nvim.command(f"edit {path.with_name('other.py')}")
    editor.type("ggyG")
    editor.nvim.command(f"edit {path}")
    ring_idle(editor)
    editor.type(f"<Esc>{row}Go")


def ask(editor: Editor, text: str) -> dict[str, int]:
    """Type ``text``, ask with Ctrl+F; the counters once the answer is in."""
    before = caught_up(editor)["requests"]
    editor.type_slowly(text)
    editor.type("<C-F>")
    stats = caught_up(editor)
    assert stats["requests"] == before + 1, stats
    assert stats["failed"] == 0, stats
    return stats


def interleave(a: Editor, b: Editor, path: Path) -> tuple[dict[str, int], dict[str, int]]:
    """A asks, B asks, then each asks again one key later; the counters of the second asks."""
    open_at(a, path, ROW_A)
    open_at(b, path, ROW_B)
    ask(a, "total_a = ")
    ask(b, "total_b = ")
    return ask(a, "1"), ask(b, "2")


def recomputed(stats: dict[str, int]) -> float:
    """Share of the last request's prompt the server computed rather than reused."""
    evaluated = stats["last_prompt_n"] + stats["last_cache_n"]
    assert evaluated > 0, stats
    return stats["last_prompt_n"] / evaluated


def test_each_editor_keeps_its_own_cache_on_a_two_slot_server(
    make_editor: Callable[..., Editor], two_slot_server: LlamaServer, project_file: Path
) -> None:
    config = {"endpoint": two_slot_server.infill_url, **QUIET}
    a, b = make_editor(config), make_editor(config)
    slots = [e.wait_stats(lambda s: s["n_ctx"] > 0, "/props")["id_slot"] for e in (a, b)]
    assert sorted(slots) == [0, 1]
    a.nvim.command("LlamaStatus")
    a.wait_messages(f"slot:      {slots[0]} (leased, of 2)")
    again_a, again_b = interleave(a, b, project_file)
    # Only the key typed and the few lines after the cursor are computed again.
    assert recomputed(again_a) < 0.15, again_a
    assert recomputed(again_b) < 0.15, again_b


def test_two_editors_in_one_slot_recompute_each_others_text(
    make_editor: Callable[..., Editor], two_slot_server: LlamaServer, project_file: Path
) -> None:
    """The control: with both pinned to slot 0, A's second request pays for B's."""
    config = {"endpoint": two_slot_server.infill_url, **QUIET, "id_slot": 0}
    a, b = make_editor(config), make_editor(config)
    for editor in (a, b):
        assert editor.wait_stats(lambda s: s["n_ctx"] > 0, "/props")["id_slot"] == 0
    again_a, _ = interleave(a, b, project_file)
    # All of A's text after the extra context both share (about 40 % here).
    assert recomputed(again_a) > 0.3, again_a


def test_with_every_slot_leased_the_server_chooses_and_puts_both_in_one(
    make_editor: Callable[..., Editor],
    two_slot_server: LlamaServer,
    project_file: Path,
    plugin_home: Path,
) -> None:
    """Why the lease: left to choose, the server sends B to the slot whose cache
    shares the extra context with B's prompt, A's, as in the control above."""
    state = plugin_home / "xdg_state_home" / "nvim"  # the editors' stdpath('state')
    folder = lease_dir(str(state), server_root(two_slot_server.infill_url))
    others = [SlotLease(folder), SlotLease(folder)]
    try:
        assert [lease.acquire(2) for lease in others] == [0, 1]
        config = {"endpoint": two_slot_server.infill_url, **QUIET}
        a, b = make_editor(config), make_editor(config)
        for editor in (a, b):
            assert editor.wait_stats(lambda s: s["n_ctx"] > 0, "/props")["id_slot"] == -1
        again_a, _ = interleave(a, b, project_file)
        assert recomputed(again_a) > 0.3, again_a
    finally:
        for lease in others:
            lease.release()


def test_a_one_slot_server_chooses_the_slot(
    make_editor: Callable[..., Editor], llama_server: LlamaServer
) -> None:
    editor = make_editor({"endpoint": llama_server.infill_url, **QUIET})
    assert editor.wait_stats(lambda s: s["n_ctx"] > 0, "/props")["id_slot"] == -1
    editor.nvim.command("LlamaStatus")
    editor.wait_messages("slot:      server chooses (one slot)")


class ProxyWithoutProps(RecordingProxy):
    """The real two-slot server behind a proxy that has no /props."""

    def _route(self, request: Received) -> Reply:
        if request.path == "/props":
            return Reply.error(404, "File Not Found", "not_found_error")
        return super()._route(request)


def test_without_props_requests_leave_the_slot_to_the_server(
    make_editor: Callable[..., Editor], two_slot_server: LlamaServer, project_file: Path
) -> None:
    proxy = ProxyWithoutProps(two_slot_server.url)
    try:
        editor = make_editor({"endpoint": proxy.infill_url, **QUIET})
        open_at(editor, project_file, ROW_B)
        ask(editor, "x = ")
        ask(editor, "1")
        bodies: list[dict[str, Any]] = proxy.infill_bodies()
        assert [body["id_slot"] for body in bodies] == [-1, -1]
        assert editor.stats()["id_slot"] == -1
    finally:
        proxy.close()
