"""Stale requests, a dead or wrong server, bad config: in a real Neovim.

The real llama-server is used wherever it can produce the case; the fault
server stands in only where a real one cannot be made slow or broken on cue.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakeserver import FakeServer, Received, Reply
from tests.harness import Editor, LlamaServer, caught_up, free_port, human_pause, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = FakeServer()
    yield server
    server.close()


def count(text: str, needle: str) -> int:
    return text.count(needle)


def answer_naming_the_prompt(delay: float) -> Callable[[Received], Reply]:
    """Each reply names the prompt it answers, after ``delay`` seconds."""

    def answer(request: Received) -> Reply:
        prompt = request.json()["prompt"]
        return Reply.completion(f"<{prompt.strip()}>", delay=delay)

    return answer


def type_a_line_per_key(editor: Editor, letters: str, gap: float) -> None:
    """Each letter on the line above the one before, moving up with <Up>.

    Moving up is not typing: no answer for one line can serve the next. (Enter
    would not do: an answer may go on with the next line.)
    """
    editor.set_text("\n" * (len(letters) - 1), filetype="")
    editor.type("Gi")
    for i, letter in enumerate(letters):
        editor.type(("<Up>" if i else "") + letter)
        human_pause(gap)


def test_typing_on_waits_for_the_request_in_flight_and_no_stale_hint_shows(
    make_editor: Callable[..., Editor], fake: FakeServer
) -> None:
    # Replies take 400 ms: typing at a person's pace, every key but the first
    # comes while a request is on the wire, and its answer may still fit what
    # is typed: it is waited for, never cancelled, and the newest text asked
    # for when it does not fit.
    fake.responder = answer_naming_the_prompt(0.4)
    editor = make_editor({"endpoint": fake.infill_url, "debounce_ms": 0})
    editor.type("i")
    editor.type_slowly("abcdef", delay=0.06)
    hint = editor.wait_hint()

    assert hint.inline == "<abcdef>", "only the reply for the current text may show"
    stats = caught_up(editor)
    requests = fake.infill_requests()
    assert [r for r in requests if r.hung_up] == [], "nothing was cancelled"
    assert stats["cancelled"] == 0
    assert 2 <= len(requests) <= 3, [r.json()["prompt"] for r in requests]
    assert stats["waited"] >= 4
    assert stats["shown"] == 1
    assert editor.lines() == ["abcdef"]


def test_typing_that_no_answer_can_serve_cancels_the_request_in_flight(
    make_editor: Callable[..., Editor], fake: FakeServer
) -> None:
    fake.responder = answer_naming_the_prompt(0.4)
    editor = make_editor({"endpoint": fake.infill_url, "debounce_ms": 0})
    type_a_line_per_key(editor, "abcdef", gap=0.06)
    hint = editor.wait_hint()

    assert hint.inline == "<f>", "only the reply for the current text may show"
    requests = fake.infill_requests()
    hung_up = [r for r in requests if r.hung_up]
    assert len(hung_up) >= 3, "requests for lines left behind were cancelled"
    stats = caught_up(editor)
    assert stats["cancelled"] >= 3
    assert stats["shown"] == 1
    assert editor.lines() == list("fedcba")


def test_at_most_one_request_in_flight(
    make_editor: Callable[..., Editor], fake: FakeServer
) -> None:
    fake.responder = lambda request: Reply.completion("tail", delay=0.15)
    editor = make_editor({"endpoint": fake.infill_url, "debounce_ms": 0})
    type_a_line_per_key(editor, "hello", gap=0.02)
    editor.wait_hint()
    spans = sorted((r.started, r.ended) for r in fake.infill_requests())
    assert len(spans) >= 3
    # The server notices a hang-up within a few ms; a second request in flight
    # would overlap the first by most of its 150 ms.
    overlaps = [prev[1] - cur[0] for prev, cur in itertools.pairwise(spans)]
    assert max(overlaps) < 0.03, overlaps


def test_stopped_server_gives_one_message_and_recovers_by_itself(
    make_editor: Callable[..., Editor], own_server: LlamaServer
) -> None:
    editor = make_editor({"endpoint": own_server.infill_url})
    editor.set_text("def f():\n", filetype="python")
    editor.type("Go")
    editor.type_slowly("x = ")
    editor.wait_hint()

    own_server.stop()
    editor.type_slowly("1 + 2 + 3 + 4 + 5 + 6", delay=0.05)
    wait_until(lambda: "llama-server not reachable" in editor.messages(), what="the message")
    editor.type_slowly(" + 7 + 8 + 9", delay=0.05)
    caught_up(editor)  # every request these keys made has failed by now
    assert count(editor.messages(), "llama-server not reachable") == 1
    assert editor.lines()[-1].endswith("x = 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9")
    assert editor.hint() is None
    failed = editor.stats()["failed"]
    assert 1 <= failed < 20, "retries back off instead of one per keystroke"

    own_server.start()
    deadline = time.monotonic() + 20
    while editor.hint() is None and time.monotonic() < deadline:
        editor.type_slowly(" +", delay=0.3)
    assert editor.hint() is not None, "suggestions come back once the server does"
    assert "llama-server answers again" in editor.messages()
    assert count(editor.messages(), "llama-server not reachable") == 1


def test_model_without_fim_tokens_is_named_once(
    make_editor: Callable[..., Editor], no_fim_model: Path
) -> None:
    server = LlamaServer(no_fim_model, free_port())
    server.start()
    try:
        editor = make_editor({"endpoint": server.infill_url})
        editor.type("i")
        editor.type_slowly("import os", delay=0.05)
        wait_until(lambda: "no FIM tokens" in editor.messages(), what="the 501 message")
        editor.type_slowly("\nimport sys", delay=0.05)
        caught_up(editor)  # every request these keys made has been refused by now
        messages = editor.messages()
        assert count(messages, "no FIM tokens") == 1
        assert editor.hint() is None

        editor.type("<Esc>")
        # With the advice on what to run, the report is longer than the 24
        # lines of a UI-less Neovim: its hit-enter prompt would hold the test.
        editor.nvim.command("set lines=60")
        editor.nvim.command("LlamaStatus")
        status = editor.wait_messages("FIM:       NOT supported")
        assert "--fim-qwen" in status, "tells what to run instead"
    finally:
        server.stop()


def test_status_reports_the_server_model_and_context(
    editor: Editor, llama_server: LlamaServer
) -> None:
    editor.nvim.command("LlamaStatus")
    report = editor.wait_messages("llama.nvim status")
    assert llama_server.infill_url in report
    assert "server:    ok" in report
    assert "n_ctx:     4096" in report
    assert llama_server.model.name in report
    assert "FIM:       supported" in report


def test_status_when_the_server_is_down(make_editor: Callable[..., Editor]) -> None:
    editor = make_editor({"endpoint": f"http://127.0.0.1:{free_port()}/infill"})
    editor.nvim.command("LlamaStatus")
    wait_until(lambda: "NOT reachable" in editor.messages(), what="status")


def test_wrong_api_key_is_named_and_no_header_without_key(
    make_editor: Callable[..., Editor], fim_model: Path, fake: FakeServer
) -> None:
    server = LlamaServer(fim_model, free_port(), "--api-key", "s3cret")
    server.start()
    try:
        editor = make_editor({"endpoint": server.infill_url, "api_key": "wrong"})
        editor.type("i")
        editor.type_slowly("value = ", delay=0.05)
        wait_until(lambda: "API key" in editor.messages(), what="the 401 message")
        assert "wrong" not in editor.messages(), "the key itself is never shown"

        good = make_editor({"endpoint": server.infill_url, "api_key": "s3cret"})
        good.type("i")
        good.type_slowly("value = ", delay=0.05)
        good.wait_hint()
    finally:
        server.stop()

    plain = make_editor({"endpoint": fake.infill_url})
    plain.type("i")
    plain.type_slowly("abc", delay=0.05)
    plain.wait_hint()
    assert all("authorization" not in r.headers for r in fake.requests)


def test_bad_config_is_reported_by_key_and_defaults_are_used(
    make_editor: Callable[..., Editor], llama_server: LlamaServer
) -> None:
    config = {
        "endpoint": llama_server.infill_url,
        "n_prefix": "lots",
        "show_info": 7,
        "auto_fim": "yes",
        "keymap_accept_word": "<NoSuchKey>",
        "no_such_option": 1,
    }
    editor = make_editor(config)
    messages = editor.wait_messages("no_such_option")
    assert "g:llama_config.n_prefix must be" in messages
    assert "g:llama_config.show_info must be" in messages
    assert "g:llama_config.auto_fim must be" in messages
    assert "keymap_accept_word" in messages
    assert "<NoSuchKey>" in messages
    assert count(messages, "n_prefix") == 1

    editor.set_text("def f():\n")
    editor.type("Go")
    editor.type_slowly("y = ")
    editor.wait_hint()
