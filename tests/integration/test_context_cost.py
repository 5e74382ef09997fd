"""The ring's budget from measured timings (context_cost.py), in real Neovim.

Against a server whose timings make cached tokens dear (a fake one: what flash
attention costs depends on the machine, so its timings are made up, as a
microsecond per cached token per token of work), the ring gets capped after
one probe and later requests send less extra context. Against the real test
model with ``-fa off`` the whole budget stays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakeserver import FakeServer, Received, Reply
from tests.harness import Editor, LlamaServer, caught_up, free_port, ring_idle

pytestmark = pytest.mark.integration

SOURCE = Path(httpx.__file__).with_name("_models.py").read_text().split("\n")
# Lines typed before the decision must have come (8 requests settle it, twice).
MOST_LINES = 40
RING = {"ring_update_ms": 50, "ring_chunk_size": 64, "speculative": False}


def kv_length(body: dict[str, Any]) -> int:
    """The fake's cache length for ``body``: about four characters a token."""
    extra = sum(len(chunk["text"]) for chunk in body.get("input_extra", []))
    return (extra + len(body["input_prefix"]) + len(body["input_suffix"])) // 4


def dear_cache(request: Received) -> Reply:
    """A server on which every token of work costs a microsecond per cached token."""
    if request.path == "/tokenize":
        content = request.json()["content"]
        return Reply.of_json({"tokens": list(range(len(content) // 4))})
    body = request.json()
    kv = kv_length(body)
    rate = 0.05 + kv * 0.001
    prompt_n, predicted_n = (40, 20) if body["n_predict"] else (kv, 0)
    timings = {
        "prompt_n": prompt_n,
        "prompt_ms": prompt_n * rate,
        "predicted_n": predicted_n,
        "predicted_ms": predicted_n * rate,
        "cache_n": kv - prompt_n,
    }
    return Reply.of_json({"content": "pass", "timings": timings, "tokens_cached": kv})


# What a priming of the cheap server computes per prompt token (ms).
PRIMING_MS_PER_TOKEN = 0.5


def slow_cheap_cache(request: Received) -> Reply:
    """A server slower than a key gap whose cost does not grow with the cache (CPU, ``-fa off``)."""
    if request.path == "/tokenize":
        content = request.json()["content"]
        return Reply.of_json({"tokens": list(range(len(content) // 4))})
    body = request.json()
    kv = kv_length(body)
    if body["n_predict"]:
        prompt_n, prompt_ms, predicted_n = 40, 40 * 5.0, 20
    else:
        prompt_n, prompt_ms, predicted_n = kv, kv * PRIMING_MS_PER_TOKEN, 0
    timings = {
        "prompt_n": prompt_n,
        "prompt_ms": prompt_ms,
        "predicted_n": predicted_n,
        "predicted_ms": predicted_n * 5.0,
        "cache_n": kv - prompt_n,
    }
    return Reply.of_json({"content": "pass", "timings": timings, "tokens_cached": kv})


@pytest.fixture
def dear_server() -> Iterator[FakeServer]:
    server = FakeServer(dear_cache, n_ctx=16384)
    yield server
    server.close()


@pytest.fixture
def fa_off_server(fim_model: Path) -> Iterator[LlamaServer]:
    server = LlamaServer(fim_model, free_port(), "-fa", "off", ctx=8192)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def fill_ring(editor: Editor, tmp_path: Path) -> int:
    """Yank ten 32-line blocks of other files into the ring; then edit a new file."""
    for n in range(2):
        path = tmp_path / f"lib{n}.py"
        path.write_text("\n".join(SOURCE) + "\n")
        editor.nvim.command(f"edit {path}")
        for start in range(1, 400, 80):
            editor.type(f"{start + 200 * n}Gy31j")
    editor.nvim.command(f"edit {tmp_path / 'main.py'}")
    return ring_idle(editor)["ring_chunks"]


def type_until(editor: Editor, done: Callable[[dict[str, int]], bool]) -> dict[str, int]:
    """Type new lines, one request each at least, until the counters say ``done``."""
    for line in range(MOST_LINES):
        editor.type(f"o    v{line} = {line}")
        stats = caught_up(editor)
        editor.type("<Esc>")
        if done(stats):
            return stats
    raise AssertionError(f"not done after {MOST_LINES} lines: {stats}")


def suggestion_extra(bodies: list[dict[str, Any]]) -> list[int]:
    """Characters of extra context each suggestion request sent."""
    return [
        sum(len(c["text"]) for c in body["input_extra"]) for body in bodies if body["n_predict"]
    ]


def status(editor: Editor, wanted: str) -> str:
    """:LlamaStatus's report (no more-prompt: it is longer than the screen here)."""
    editor.nvim.command("set nomore")
    editor.nvim.command("LlamaStatus")
    editor.wait_messages(wanted)
    return editor.messages()


def test_dear_cached_tokens_cap_the_ring_after_one_probe(
    make_editor: Callable[..., Editor], dear_server: FakeServer, tmp_path: Path
) -> None:
    editor = make_editor({"endpoint": dear_server.infill_url, **RING})
    assert fill_ring(editor, tmp_path) >= 8
    stats = type_until(editor, lambda s: s["pace_us_per_cached_token"] > 0)
    assert stats["pace_ring_cap"] == 1024, stats
    assert 900 <= stats["pace_us_per_cached_token"] <= 1100, stats
    text = status(editor, "ring:      at most 1024 tokens")
    assert "(auto: cached tokens cost time, 1.0" in text, text
    # Requests send less extra context now than before the probe.
    extra = suggestion_extra(dear_server.infill_bodies())
    assert extra[-1] < extra[0] / 2, extra
    assert extra[-1] <= 1024 * 4, extra


def test_the_fast_model_with_fa_off_keeps_the_whole_budget(
    make_editor: Callable[..., Editor], fa_off_server: LlamaServer, tmp_path: Path
) -> None:
    editor = make_editor({"endpoint": fa_off_server.infill_url, **RING})
    assert fill_ring(editor, tmp_path) >= 8
    stats = type_until(editor, lambda s: s["pace_samples"] >= 20)
    assert stats["pace_ring_cap"] == 0, stats
    assert "ring:      whole budget (auto:" in status(editor, "ring:      whole budget"), stats
    # Far more than the floor's 1024 tokens (~250 tokens a chunk): all that fits.
    assert stats["last_extra_chunks"] >= 8, stats


def test_the_budget_a_probe_gives_back_comes_with_a_priming_once_the_user_is_idle(
    make_editor: Callable[..., Editor], tmp_path: Path
) -> None:
    server = FakeServer(slow_cheap_cache, n_ctx=16384)
    try:
        editor = make_editor({"endpoint": server.infill_url, **RING})
        assert fill_ring(editor, tmp_path) >= 8
        stats = type_until(editor, lambda s: s["pace_ring_rise_pending"] == 1)
        # Probed at the floor, found cheap: the whole budget is decided, but the
        # requests made while typing on keep the floor's extra context.
        assert stats["pace_ring_cap"] == 1024, stats
        assert "at most 1024 tokens until idle, then whole budget" in status(editor, "until idle")
        editor.type("o    w = 1")
        caught_up(editor)
        assert suggestion_extra(server.infill_bodies())[-1] <= 1024 * 4
        primed = len([b for b in server.infill_bodies() if not b["n_predict"]])
        editor.type("<Esc>")
        # Idle (normal mode) for as long as computing the whole ring takes at
        # the primings' speed: then one priming sends it.
        stats = editor.wait_stats(
            lambda s: s["pace_ring_rise_pending"] == 0, "the rise's priming", timeout=30
        )
        primings = [b for b in server.infill_bodies() if not b["n_predict"]][primed:]
        assert primings, stats
        whole = sum(len(c["text"]) for c in primings[-1]["input_extra"])
        assert whole > 1024 * 4 * 2, whole
        editor.type("o    z = 2")
        caught_up(editor)
        assert suggestion_extra(server.infill_bodies())[-1] >= whole - 1024 * 4
    finally:
        server.close()
