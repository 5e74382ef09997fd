"""Pacing from measured timings, against the fast test model and the CPU-bound one.

Each server sits behind a recording proxy, so the test reads what the request
the plugin sent actually asked for. Nothing here times the server: the test
checks that the pacing the plugin reports is the one it sends, and that the
slow model gets a shorter, later request than the fast one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Editor, LlamaServer, caught_up
from tests.recording_proxy import RecordingProxy

pytestmark = pytest.mark.integration

SOURCE = "import os\n\n\ndef main():\n    total = 0\n    return total\n"
# Lines typed, one request each at least, before the pacer must have measured the server.
MOST_LINES = 15
DEFAULT_N_PREDICT = 128
DEFAULT_T_MAX_PREDICT_MS = 250


def suggestion_bodies(proxy: RecordingProxy) -> list[dict[str, Any]]:
    """The /infill bodies that asked for a suggestion (priming asks for 0 tokens)."""
    return [body for body in proxy.infill_bodies() if body["n_predict"]]


def measured(editor: Editor, path: Path) -> dict[str, int]:
    """Type on new lines until the pacer has measured the server; the counters then."""
    path.write_text(SOURCE)
    editor.nvim.command(f"edit {path}")
    editor.type("5G")
    for line in range(MOST_LINES):
        editor.type(f"o    v{line} = {line}")
        stats = caught_up(editor)
        editor.type("<Esc>")
        if stats["pace_prompt_us_per_token"] and stats["pace_predicted_us_per_token"]:
            return caught_up(editor)
    raise AssertionError(f"no estimates after {MOST_LINES} lines: {stats}")


def pacing_sent(
    make_editor: Callable[..., Editor], server: LlamaServer, path: Path
) -> tuple[dict[str, int], dict[str, Any]]:
    """Once the server is measured: the pacing reported, and the next request's body."""
    proxy = RecordingProxy(server.url)
    try:
        # No priming and no speculation: every reply measured is a request typed for.
        editor = make_editor(
            {"endpoint": proxy.infill_url, "ring_n_chunks": 0, "speculative": False}
        )
        stats = measured(editor, path)
        asked = len(suggestion_bodies(proxy))
        editor.type("o    w = ")
        caught_up(editor)
        body = suggestion_bodies(proxy)[asked]
        # :LlamaStatus tells the estimates and the pacing as they are now.
        now = caught_up(editor)
        editor.nvim.command("LlamaStatus")
        editor.wait_messages(f"n_predict {now['pace_n_predict']} (auto)")
        status = editor.messages()
        assert "  speed:     prompt " in status, status
        assert "ms/token" in status, status
        assert "target 1000 ms" in status, status
        assert f"debounce_ms {now['pace_debounce_ms']} (auto)" in status, status
        pause = re.search(r"after a pause at most ~(\d+) ms", status)
        assert pause is not None, status
        return stats | {"pause_ms": int(pause.group(1))}, body
    finally:
        proxy.close()


def test_the_slow_model_gets_shorter_requests_after_a_longer_pause_than_the_fast_one(
    make_editor: Callable[..., Editor],
    llama_server: LlamaServer,
    slow_server: LlamaServer,
    tmp_path: Path,
) -> None:
    fast, fast_body = pacing_sent(make_editor, llama_server, tmp_path / "fast.py")
    slow, slow_body = pacing_sent(make_editor, slow_server, tmp_path / "slow.py")
    # What was sent is what the pacer had derived when the request was made.
    for stats, body in ((fast, fast_body), (slow, slow_body)):
        assert body["n_predict"] == stats["pace_n_predict"], (stats, body["n_predict"])
        assert body["t_max_predict_ms"] == stats["pace_t_max_predict_ms"], stats
    # The fast model: the whole suggestion, as configured (its debounce depends on
    # how busy the machine is: a request through the proxy takes some 80 ms).
    assert fast["pace_n_predict"] == DEFAULT_N_PREDICT, fast
    assert fast["pace_t_max_predict_ms"] == DEFAULT_T_MAX_PREDICT_MS, fast
    # The slow one: measured slower, it waits longer for a pause and asks for less.
    assert slow["pace_predicted_us_per_token"] > fast["pace_predicted_us_per_token"], slow
    assert slow["pace_debounce_ms"] > fast["pace_debounce_ms"], (slow, fast)
    # It asks for less, unless this machine runs it fast enough for the whole
    # suggestion: then two such requests and the debounce still fit the target.
    if slow["pace_n_predict"] == DEFAULT_N_PREDICT:
        assert slow["pause_ms"] <= 1000, slow
    else:
        assert slow["pace_n_predict"] < fast["pace_n_predict"], slow
