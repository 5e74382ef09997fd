"""Server faults, met through a real Neovim typed into like a user.

The fault-injecting fake server stands in for llama-server wherever a real one
cannot misbehave on cue: refusing connections then coming up, dying mid-answer,
hanging, dribbling bytes, answering with errors, garbage or hostile text,
speaking TLS with a self-signed certificate. For every fault the same promises
hold: the editor keeps working, each distinct problem is told at most once,
the buffer changes only when the user accepts, and suggestions come back once
the server behaves again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakeserver import FakeServer, Received, Reply, make_self_signed_cert
from tests.harness import (
    Editor,
    Hint,
    assert_no_errors,
    caught_up,
    free_port,
    poll_until,
    settle,
    wait_until,
)

pytestmark = pytest.mark.integration

PLUGIN = "llama.nvim: "
UNREACHABLE = "llama-server not reachable"
TOO_SLOW = "llama-server too slow to answer"
MALFORMED = "sent a malformed reply"
RECOVERED = "llama-server answers again"


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = FakeServer()
    yield server
    server.close()


def recover(editor: Editor, *, manual: bool = False, timeout: float = 15.0) -> Hint:
    """Type on (or press Ctrl+F) until a suggestion shows again; return it."""
    deadline = time.monotonic() + timeout
    while True:
        hint = editor.hint()
        if hint is not None:
            return hint
        if time.monotonic() > deadline:
            pytest.fail("no suggestion after the server behaved again")
        editor.type("<C-F>" if manual else "z")
        # The user's pace: the next key after this long, unless a suggestion shows first.
        poll_until(editor.hint, timeout=1.0 if manual else 0.4)


def start_typing(editor: Editor, text: str) -> None:
    editor.type("i")
    editor.type_slowly(text, delay=0.04)


# -- the server is not there, then is -------------------------------------------------


def test_server_not_running_at_startup_then_started_recovers_by_itself(
    make_editor: Callable[..., Editor],
) -> None:
    port = free_port()
    editor = make_editor({"endpoint": f"http://127.0.0.1:{port}/infill"})
    start_typing(editor, "alpha = ")
    wait_until(lambda: editor.message_count(UNREACHABLE), what="the unreachable message")
    editor.type_slowly("beta + gamma", delay=0.05)
    caught_up(editor)  # every request these keys made has failed by now
    assert editor.message_count(UNREACHABLE) == 1
    assert editor.message_count(PLUGIN) == 1, editor.messages()
    assert editor.lines() == ["alpha = beta + gamma"], "nothing inserted without Tab"
    assert editor.hint() is None

    server = FakeServer(lambda r: Reply.completion(" + delta"), port=port)
    try:
        # No command, no restart: typing on is enough.
        assert recover(editor).inline == " + delta"
        editor.wait_messages(RECOVERED)
        assert editor.message_count(UNREACHABLE) == 1
        assert editor.message_count(RECOVERED) == 1
        before = editor.text()
        editor.type("<Tab>")
        assert editor.wait_text_change(before).endswith(" + delta")
        assert_no_errors(editor)
    finally:
        server.close()


@pytest.mark.parametrize(
    "broken",
    [Reply(close_without_answer=True), Reply.completion("never shown", cut_after=20)],
    ids=["closed-without-answer", "closed-mid-answer"],
)
def test_server_killed_mid_request(
    make_editor: Callable[..., Editor], fake: FakeServer, broken: Reply
) -> None:
    fake.responder = lambda r: broken
    editor = make_editor({"endpoint": fake.infill_url})
    start_typing(editor, "value = ")
    wait_until(lambda: editor.message_count(PLUGIN), what="a message about the dead server")
    editor.type_slowly("other + more", delay=0.05)
    caught_up(editor)  # every request these keys made has failed by now
    assert len(fake.infill_requests()) >= 2, "the plugin kept trying"
    assert editor.message_count(PLUGIN) == 1, editor.messages()
    assert "never shown" not in editor.text()
    assert editor.lines() == ["value = other + more"]
    assert editor.hint() is None
    assert editor.mode() == "i"

    fake.responder = lambda r: Reply.completion("recovered()")
    assert recover(editor).inline == "recovered()"
    assert_no_errors(editor)


# -- a slow server ----------------------------------------------------------------------


def test_hanging_server_times_out_and_the_editor_never_waits_for_it(
    make_editor: Callable[..., Editor], fake: FakeServer
) -> None:
    fake.responder = lambda r: Reply.completion("too late", delay=10)
    editor = make_editor({"endpoint": fake.infill_url, "timeout_ms": 1000})
    start_typing(editor, "slow = ")
    first = wait_until(fake.infill_requests, what="a request to hang")[-1]

    # While the request hangs: Neovim and the plugin's host answer at once ...
    trips = [editor.roundtrip() for _ in range(20)]
    host_trips = [editor.host_roundtrip() for _ in range(10)]
    assert max(trips) < 0.3, trips
    assert max(host_trips) < 0.3, host_trips
    # ... typed keys land in the buffer at once ...
    latencies = [editor.key_latency(ch) for ch in "abc"]
    assert max(latencies) < 0.3, latencies
    # ... and the keys typed meanwhile, which its answer could still have
    # served, wait beside it rather than queue at the server: the client gives
    # up at its own deadline (1 s), not the server's 10 s, and nothing else was
    # sent while it hung.
    wait_until(lambda: first.hung_up, timeout=3, what="the hanging request to be given up")
    assert first.ended - first.started < 2.0
    assert [r for r in fake.infill_requests() if first.started < r.started < first.ended] == []

    # Left alone, the last request hits the deadline: one message, nothing shown.
    wait_until(lambda: editor.message_count(TOO_SLOW), timeout=5, what="the timeout message")
    last = fake.infill_requests()[-1]
    wait_until(lambda: last.ended, timeout=3, what="the request to end")
    assert last.hung_up
    assert last.ended - last.started < 2.0, "the client gave up after ~1 s"
    editor.type_slowly("def", delay=0.1)
    caught_up(editor)  # every request these keys made has timed out by now
    assert editor.message_count(TOO_SLOW) == 1
    assert editor.message_count(PLUGIN) == 1, editor.messages()
    assert editor.lines() == ["slow = abcdef"]
    assert editor.hint() is None

    fake.responder = lambda r: Reply.completion("quick()")
    recover(editor)
    editor.wait_messages(RECOVERED)
    assert_no_errors(editor)


def test_server_dribbling_bytes_trips_the_whole_request_deadline(
    make_editor: Callable[..., Editor], fake: FakeServer
) -> None:
    # 10 bytes a second: every read succeeds well within any per-read timeout,
    # so only a deadline on the whole exchange can stop it.
    fake.responder = lambda r: Reply.completion("x" * 100, dribble=0.1)
    editor = make_editor({"endpoint": fake.infill_url, "timeout_ms": 1000})
    start_typing(editor, "drip = ")
    wait_until(lambda: editor.message_count(TOO_SLOW), timeout=6, what="the timeout message")
    request = fake.infill_requests()[0]
    wait_until(lambda: request.ended, timeout=3, what="the request to end")
    assert request.hung_up
    assert request.ended - request.started < 2.5, "the deadline covers the whole exchange"
    assert editor.hint() is None
    assert editor.lines() == ["drip = "]
    assert editor.host_roundtrip() < 0.3
    fake.responder = lambda r: Reply.completion("done()")
    recover(editor)
    assert editor.message_count(TOO_SLOW) == 1
    assert_no_errors(editor)


# -- HTTP errors --------------------------------------------------------------------------

_JSON = "json"
_TEXT = "text"

HTTP_ERRORS = [
    (400, _JSON, "the request exceeds the available context size", "refused the request"),
    (400, _TEXT, "Bad Request: nonsense", "refused the request"),
    (401, _JSON, "Invalid API Key", "API key rejected"),
    (401, _TEXT, "Unauthorized", "API key rejected"),
    (404, _JSON, "File Not Found", "HTTP 404 from"),
    (404, _TEXT, "<html><body>Not Found</body></html>", "HTTP 404 from"),
    (500, _JSON, "tokenizer exploded", "llama-server failed"),
    (500, _TEXT, "Internal Server Error", "llama-server failed"),
    (501, _JSON, "This server does not support infill.", "model has no FIM tokens"),
    (501, _TEXT, "Not Implemented", "model has no FIM tokens"),
    (503, _JSON, "Loading model", ""),
    (503, _TEXT, "Service Unavailable", ""),
]


def _error_reply(status: int, shape: str, message: str) -> Reply:
    if shape == _JSON:
        kinds = {400: "invalid_request_error", 401: "authentication_error",
                 404: "not_found_error", 500: "server_error", 501: "not_supported_error",
                 503: "unavailable_error"}  # fmt: skip
        return Reply.error(status, message, kinds[status])
    return Reply(status=status, body=message.encode(), content_type="text/plain")


@pytest.mark.parametrize(
    ("status", "shape", "message", "needle"),
    HTTP_ERRORS,
    ids=[f"{s}-{shape}" for s, shape, _, _ in HTTP_ERRORS],
)
def test_http_errors_are_told_once_and_the_plugin_recovers(
    make_editor: Callable[..., Editor],
    fake: FakeServer,
    status: int,
    shape: str,
    message: str,
    needle: str,
) -> None:
    fake.responder = lambda r: _error_reply(status, shape, message)
    editor = make_editor({"endpoint": fake.infill_url})
    start_typing(editor, "res = ")
    wait_until(fake.infill_requests, what="a request")
    if needle:
        wait_until(lambda: editor.message_count(needle), what=f"the {status} message")
    editor.type_slowly("compute(", delay=0.05)
    editor.type("<C-F>")  # asking by hand must not repeat the message either
    caught_up(editor)  # its request has failed: the next Ctrl+F does not cancel it
    editor.type("<C-F>")
    caught_up(editor)
    if needle:
        assert editor.message_count(needle) == 1, editor.messages()
        assert editor.message_count(PLUGIN) == 1, editor.messages()
    else:
        assert editor.message_count(PLUGIN) == 0, "a loading model is not worth a message"
    assert editor.stats()["failed"] >= 2
    assert editor.lines() == ["res = compute("]
    assert editor.hint() is None
    assert editor.mode() == "i"

    fake.responder = lambda r: Reply.completion("a, b)")
    assert recover(editor, manual=True).inline == "a, b)"
    # Automatic requests resume too, not just the one asked for by hand.
    editor.type("<Esc>o")
    editor.type_slowly("again = ")
    editor.wait_hint()
    assert editor.message_count(needle or PLUGIN) == (1 if needle else 0)
    assert_no_errors(editor)


# -- replies of the wrong shape -------------------------------------------------------------

MALFORMED_REPLIES = {
    "not-json": Reply(body=b"{this is not json"),
    "truncated-json": Reply(body=b'{"content": "abc", "timings": {"prompt_n'),
    "huge-json": Reply(body=json.dumps({"content": "a" * (10 << 20)}).encode()),
    "content-number": Reply.of_json({"content": 42}),
    "content-list": Reply.of_json({"content": ["import os"]}),
    "content-null": Reply.of_json({"content": None}),
    "missing-content": Reply.of_json({"timings": {"prompt_n": 1}}),
    "top-level-list": Reply.of_json(["content", "x"]),
    "empty-body": Reply(body=b""),
}


@pytest.mark.parametrize("name", list(MALFORMED_REPLIES))
def test_malformed_replies_are_told_once_and_change_nothing(
    make_editor: Callable[..., Editor], fake: FakeServer, name: str
) -> None:
    fake.responder = lambda r: MALFORMED_REPLIES[name]
    editor = make_editor({"endpoint": fake.infill_url})
    rss_before = editor.stats()["rss_kb"]
    start_typing(editor, "data = ")
    wait_until(lambda: editor.message_count(MALFORMED), what="the malformed-reply message")
    editor.type_slowly("load(", delay=0.05)
    editor.type("<C-F>")
    caught_up(editor)
    assert editor.message_count(MALFORMED) == 1, editor.messages()
    assert editor.message_count(PLUGIN) == 1, editor.messages()
    assert editor.lines() == ["data = load("]
    assert editor.hint() is None
    # A 10 MB reply is not read whole into the host.
    assert editor.stats()["rss_kb"] - rss_before < 8 * 1024

    fake.responder = lambda r: Reply.completion("path)")
    assert recover(editor, manual=True).inline == "path)"
    assert_no_errors(editor)


@pytest.mark.parametrize(
    "data",
    [
        {"content": "fine()"},
        {"content": "fine()", "timings": "fast", "tokens_cached": "many", "truncated": "yes"},
        {"content": "fine()", "timings": {"prompt_n": None, "cache_n": [1]}, "stop_type": 7},
    ],
    ids=["only-content", "odd-types", "odd-timings"],
)
def test_reply_missing_or_odd_optional_fields_still_shows(
    make_editor: Callable[..., Editor], fake: FakeServer, data: dict[str, object]
) -> None:
    fake.responder = lambda r: Reply.of_json(data)
    editor = make_editor({"endpoint": fake.infill_url})
    start_typing(editor, "ok = ")
    assert editor.wait_hint().inline == "fine()"
    editor.type("<Tab>")
    wait_until(lambda: editor.lines() == ["ok = fine()"], what="the accept")
    assert editor.message_count(PLUGIN) == 0
    assert_no_errors(editor)


# -- hostile text: shown and inserted only as literal text -----------------------------------

HOSTILE = {
    "control-chars": ("a\x01b\x07c\x08d\x0be\x0cf\x7f", None),
    "ansi-escapes": ("\x1b[31mred\x1b[0m \x1b]0;title\x07 \x1b[2J", None),
    "c1-controls": ("\x9b31mX\x85Y\x90Z", None),
    "nul": ("a\x00b", None),
    "crlf": ("one\r\ntwo\r\nthree", ["one", "two", "three"]),
    "stray-cr": ("ab\rcd", ["abcd"]),
    "keys-shell": ("<Esc>:!rm -rf {victim}<CR>", None),
    "keys-expr-register": ("<C-r>=system('touch {marker}')<CR>", None),
    "raw-escape-quit": ("\x1b:qa!\r", ["\x1b:qa!"]),
    "raw-escape-command": (
        "\x1b:call writefile(['x'], '{marker}')\r\x1bdd",
        ["\x1b:call writefile(['x'], '{marker}')\x1bdd"],
    ),
    "ctrl-v-escape": ("\x16\x1b:!touch {marker}\n", ["\x16\x1b:!touch {marker}"]),
    "multi-line-keys": ("i\n<Esc>ZZ\n:qa!<CR>", ["i", "<Esc>ZZ", ":qa!<CR>"]),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_suggestion_is_shown_and_inserted_as_literal_text(
    make_editor: Callable[..., Editor], fake: FakeServer, tmp_path: Path, name: str
) -> None:
    marker = tmp_path / "pwned"
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("keep")
    raw, expected_lines = HOSTILE[name]
    content = raw.format(marker=marker, victim=victim)
    expected = (
        [line.format(marker=marker, victim=victim) for line in expected_lines]
        if expected_lines is not None
        else content.split("\n")
    )
    fake.responder = lambda r: Reply.completion(content)
    editor = make_editor({"endpoint": fake.infill_url})
    start_typing(editor, "x = ")
    hint = editor.wait_hint()
    assert hint.inline == editor.display(expected[0], 4, 8), "shown, never interpreted"
    assert hint.below == [editor.display(line, 0, 8) for line in expected[1:]]
    for shown in (hint.inline, *hint.below):
        assert all(ch == " " or ch.isprintable() for ch in shown), repr(shown)
    assert editor.lines() == ["x = "], "showing changes nothing"

    editor.type("<Tab>")
    wait_until(lambda: editor.lines() != ["x = "], what="the accept")
    caught_up(editor)  # keys a key-like text might have queued would have run now
    assert editor.lines() == ["x = " + expected[0], *expected[1:]]
    assert editor.mode() == "i", "no <Esc> was typed"
    assert editor.cursor() == (
        len(expected) - 1,
        len(("x = " if len(expected) == 1 else "").encode() + expected[-1].encode()),
    )
    assert not marker.exists(), "no command ran"
    assert (victim / "keep").exists(), "no shell command ran"
    assert editor.roundtrip() < 1, "Neovim is still there"
    assert editor.message_count(PLUGIN) == 0
    assert_no_errors(editor)


@pytest.mark.parametrize(
    "body",
    [
        b'{"content": "ok\xff\xfe!"}',
        b'{"content": "ok\xc3(!"}',
        b'{"content": "ok\xed\xa0\x80!"}',
        b'{"content": "ok\\udcff!"}',
        b'{"content": "ok\\ud800!"}',
    ],
    ids=[
        "raw-ff-fe",
        "raw-truncated-sequence",
        "raw-encoded-surrogate",
        "escaped-dcff",
        "escaped-lone-surrogate",
    ],
)
def test_invalid_utf8_in_a_reply_never_reaches_the_buffer(
    make_editor: Callable[..., Editor], fake: FakeServer, body: bytes
) -> None:
    fake.responder = lambda r: Reply(body=body)
    editor = make_editor({"endpoint": fake.infill_url})
    start_typing(editor, "s = ")
    first = wait_until(fake.infill_requests, what="a request")[0]
    wait_until(lambda: first.ended, what="the reply")
    caught_up(editor)  # the reply has been dealt with: shown, or told about
    # Away and back: the same state again (answered from the cache, if cached).
    editor.type("x")
    caught_up(editor)
    editor.type("<BS>")
    caught_up(editor)
    assert_no_errors(editor)
    hint = editor.hint()
    assert hint is not None or editor.message_count(PLUGIN) == 1, "the reply vanished silently"
    if hint is not None:
        editor.type("<Tab>")
        wait_until(lambda: editor.lines() != ["s = "], what="the accept")
        line = editor.lines()[0].encode("utf-8", "surrogateescape")
        assert line.startswith(b"s = ok")
        assert line.endswith(b"!")
        line.decode("utf-8")  # raises if an invalid byte reached the buffer
    else:
        assert editor.lines() == ["s = "]
    fake.responder = lambda r: Reply.completion("clean")
    editor.type("<Esc>o")
    editor.type_slowly("t = ")
    assert recover(editor).inline == "clean"
    assert_no_errors(editor)


# -- TLS ------------------------------------------------------------------------------------


def test_self_signed_https_is_refused_by_default_and_accepted_with_ca_bundle(
    make_editor: Callable[..., Editor], tmp_path: Path
) -> None:
    cert, key = make_self_signed_cert(tmp_path / "tls")
    server = FakeServer(lambda r: Reply.completion("secure()"), tls=(cert, key))
    try:
        assert server.infill_url.startswith("https://")
        refusing = make_editor({"endpoint": server.infill_url})
        start_typing(refusing, "conn = ")
        wait_until(lambda: refusing.message_count("TLS error"), what="the TLS message")
        refusing.type_slowly("open(", delay=0.05)
        refusing.type("<C-F>")
        caught_up(refusing)  # its request has failed by now
        assert refusing.message_count("TLS error") == 1
        assert refusing.message_count(PLUGIN) == 1, refusing.messages()
        assert server.tls_failures >= 1, "the handshake was tried and refused"
        assert server.infill_requests() == [], "nothing was sent over an unverified connection"
        assert refusing.hint() is None
        assert refusing.lines() == ["conn = open("]

        trusting = make_editor({"endpoint": server.infill_url, "ca_bundle": str(cert)})
        start_typing(trusting, "conn = ")
        assert trusting.wait_hint().inline == "secure()"
        trusting.type("<Tab>")
        wait_until(lambda: trusting.lines() == ["conn = secure()"], what="the accept")
        assert trusting.message_count(PLUGIN) == 0, trusting.messages()
        assert server.infill_requests()
        assert_no_errors(trusting)
    finally:
        server.close()


# -- where requests go, and the API key ---------------------------------------------------------

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def test_proxies_in_the_environment_see_nothing(
    make_editor: Callable[..., Editor], fake: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    trap = FakeServer(lambda r: Reply(status=502, body=b"proxied", content_type="text/plain"))
    try:
        for var in PROXY_VARS:
            monkeypatch.setenv(var, trap.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        fake.responder = lambda r: Reply.completion("direct()")
        editor = make_editor({"endpoint": fake.infill_url})
        environ = Path(f"/proc/{editor.host_pid()}/environ").read_bytes()
        assert f"HTTP_PROXY={trap.url}".encode() in environ, "the host runs with the proxies set"

        start_typing(editor, "via = ")
        assert editor.wait_hint().inline == "direct()"
        editor.type("<Esc>")
        editor.nvim.command("LlamaStatus")
        editor.wait_messages("llama.nvim status")
        settle(editor)
        assert fake.infill_requests()
        assert {r.path for r in fake.requests} >= {"/infill", "/health", "/props"}
        assert trap.connections == 0, [(r.method, r.path) for r in trap.requests]
    finally:
        trap.close()


API_KEY = "sk-LEAKCHECK-8f2b71c9d0"


def test_api_key_never_appears_in_messages_status_or_logs(
    make_editor: Callable[..., Editor], fake: FakeServer
) -> None:
    # A server, or a proxy in front of it, that repeats the credentials it got
    # in its error texts: the plugin must not pass them on to the screen.
    script: list[Callable[[str], Reply]] = [
        lambda auth: Reply.error(401, f"Invalid API Key {auth}", "authentication_error"),
        lambda auth: Reply(status=502, body=f"upstream refused {auth}".encode()),
        lambda auth: Reply.error(500, f"{auth} crashed the tokenizer"),
        lambda auth: Reply.error(400, f"bad token: {auth}", "invalid_request_error"),
    ]

    def answer(request: Received) -> Reply:
        step = script[0] if script else (lambda auth: Reply.completion(f"ok{len(auth)}"))
        return step(request.headers.get("authorization", ""))

    fake.responder = answer
    editor = make_editor({"endpoint": fake.infill_url, "api_key": API_KEY, "debug_log": True})
    editor.nvim.command("set columns=400")  # messages are not cut short on a wide screen
    log_path = Path(editor.nvim.funcs.stdpath("state")) / "llama_nvim.log"
    editor.nvim.command("LlamaDebugClear")
    editor.type("i")
    # The key typed into the buffer reaches the log as part of the prompt.
    editor.type_slowly(f'token = "{API_KEY}"', delay=0.01)
    settle(editor)
    for _ in range(len(script)):
        failed = editor.stats()["failed"]
        editor.type("<C-F>")
        editor.wait_stats(lambda s: s["failed"] > failed, "the scripted failure")  # noqa: B023
        script.pop(0)
    editor.type("<C-F>")
    editor.wait_hint()
    editor.type("<Esc>")
    editor.nvim.command("LlamaStatus")
    status = editor.wait_messages("llama.nvim status")
    assert "last problem" in status
    editor.nvim.command("LlamaDebugToggle")
    editor.wait_messages("debug log off")

    sent = {r.headers.get("authorization") for r in fake.infill_requests()}
    assert sent == {f"Bearer {API_KEY}"}, "the key was in play"
    log = wait_until(lambda: (log_path.exists() and log_path.read_text()) or None, what="the log")
    assert "<redacted>" in log
    assert API_KEY not in log, "API key in the debug log"
    assert API_KEY not in editor.host_log(), "API key in the host's log"
    messages = editor.messages()
    assert API_KEY not in messages, f"API key in :messages / :LlamaStatus:\n{messages}"


def test_debug_log_is_written_under_state_dir_and_toggles(
    make_editor: Callable[..., Editor], fake: FakeServer
) -> None:
    fake.responder = lambda r: Reply.completion("logged()")
    editor = make_editor({"endpoint": fake.infill_url})
    log_path = Path(editor.nvim.funcs.stdpath("state")) / "llama_nvim.log"
    if log_path.exists():
        log_path.unlink()
    start_typing(editor, "a = ")
    editor.wait_hint()
    assert not log_path.exists(), "the debug log is off by default"
    editor.type("<Esc>")
    editor.nvim.command("LlamaDebugToggle")
    editor.wait_messages(f"debug log on, writing {log_path}")
    editor.type("o")
    editor.type_slowly("b = ")
    editor.wait_hint()
    settle(editor)
    events = [json.loads(line)["event"] for line in log_path.read_text().splitlines()]
    assert "request" in events, events
    assert "reply" in events, events
    editor.type("<Esc>")
    editor.nvim.command("LlamaDebugToggle")
    editor.wait_messages("debug log off")
    size = log_path.stat().st_size
    editor.type("o")
    editor.type_slowly("c = ")
    editor.wait_hint()
    settle(editor)
    assert log_path.stat().st_size == size, "nothing written while off"
