"""FIM through other server kinds, in a real Neovim: /v1/completions and Ollama's /api/generate.

/v1/completions is served by the real llama-server (the tiny model's text is
gibberish, so what is checked is where it goes, not what it says), seen
through a proxy that keeps every request and reply. Ollama cannot be installed
here: its wire format is played by the fake server.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakeserver import FakeServer, Received, Reply
from tests.harness import (
    Editor,
    LlamaServer,
    assert_no_errors,
    caught_up,
    poll_until,
    settle,
    wait_until,
)
from tests.recording_proxy import RecordingProxy

pytestmark = pytest.mark.integration

SOURCE = "import os\n\n\ndef add(a, b):\n    return a + b\n\n\ndef main():\n"


class ReplyRecordingProxy(RecordingProxy):
    """A RecordingProxy that keeps the replies too, in the order of the requests."""

    def __init__(self, upstream: str) -> None:
        self.replies: list[tuple[Received, Reply]] = []
        super().__init__(upstream)

    def _route(self, request: Received) -> Reply:
        reply = super()._route(request)
        with self._lock:
            self.replies.append((request, reply))
        return reply

    def completions(self) -> list[tuple[dict[str, Any], str]]:
        """(request body, streamed text) of every answered /v1/completions request."""
        with self._lock:
            pairs = [(q, r) for q, r in self.replies if q.path == "/v1/completions"]
        return [(q.json(), streamed_text(r.body)) for q, r in pairs if r.status == 200]


def streamed_text(body: bytes) -> str:
    """The text of a streamed /v1/completions reply: its choices' text, joined."""
    pieces = []
    for line in body.decode().split("\n"):
        if line.startswith("data: ") and line != "data: [DONE]":
            pieces += [choice["text"] for choice in json.loads(line[6:])["choices"]]
    return "".join(pieces)


def as_shown(content: str) -> str:
    """A reply as the plugin shows it at the end of a buffer: no trailing blank lines."""
    return re.sub(r"(\n[ \t]*)+$", "", content.replace("\r\n", "\n").replace("\r", ""))


@pytest.fixture
def proxy(llama_server: LlamaServer) -> Iterator[ReplyRecordingProxy]:
    server = ReplyRecordingProxy(llama_server.url)
    yield server
    server.close()


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = FakeServer()
    yield server
    server.close()


def completions_editor(make_editor: Callable[..., Editor], url: str, **options: Any) -> Editor:
    return make_editor({"endpoint": url + "/v1/completions", "speculative": False, **options})


def test_v1_completions_ghost_text_is_what_the_server_sent_and_tab_inserts_it(
    make_editor: Callable[..., Editor], proxy: ReplyRecordingProxy
) -> None:
    editor = completions_editor(make_editor, proxy.url)
    editor.set_text(SOURCE)
    editor.nvim.command("setlocal noautoindent nosmartindent indentexpr=")
    for attempt in range(20):
        editor.type("<Esc>Go")
        editor.type_slowly(f"x{attempt} = ")
        editor.wait_hint()
        caught_up(editor)
        hint = editor.hint()
        # The reply for the text as typed (a hint may also be the rest of an
        # earlier reply that the last keys typed through: then try again).
        answered = [
            (b, c)
            for b, c in proxy.completions()
            if hint is not None
            and as_shown(c) == hint.text
            and b["prompt"].endswith(f"x{attempt} = <|fim_suffix|>\n<|fim_middle|>")
        ]
        if hint is not None and answered and "\t" not in hint.text:
            break
    else:
        pytest.fail("no suggestion without a tab in it, for the text as typed")
    row, col = editor.cursor()
    before = editor.text()
    body, content = answered[-1]
    assert body["prompt"].startswith("<|fim_prefix|>")
    assert body["prompt"].endswith(f"x{attempt} = <|fim_suffix|>\n<|fim_middle|>")
    assert body["stream"] is True
    assert body["max_tokens"] == 128
    assert proxy.requests_to("/infill") == [], "nothing went to /infill"

    editor.type("<Tab>")
    after = editor.wait_text_change(before)
    inserted = "\n".join(after.split("\n")[row:])[col:]
    assert inserted == as_shown(content), "Tab inserts exactly what the server sent"
    assert_no_errors(editor)


def make_project(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_v1_completions_prompts_carry_the_rings_chunks_first_as_repository_files(
    make_editor: Callable[..., Editor], proxy: ReplyRecordingProxy, tmp_path: Path
) -> None:
    helper = "".join(f"def helper_{n}(value):\n    return value * {n}\n\n" for n in range(8))
    project = make_project(tmp_path / "shop", {"helpers.py": helper, "main.py": SOURCE})
    editor = completions_editor(make_editor, proxy.url, ring_chunk_size=16)
    editor.nvim.command(f"cd {project}")
    editor.nvim.command("edit helpers.py")
    editor.type("3Gy10j")
    editor.nvim.command("edit main.py")
    editor.wait_stats(lambda s: s["ring_chunks"] >= 1 and s["n_ctx"] > 0, "a chunk in the ring")

    editor.type("Go")
    editor.type_slowly("total = ")
    editor.wait_hint()
    first = settle(editor)
    assert first["last_extra_chunks"] >= 1
    prompt = proxy.completions()[-1][0]["prompt"]
    assert prompt.startswith("<|repo_name|>shop\n<|file_sep|>helpers.py\n")
    assert prompt.index("def helper_3(value):") < prompt.index("<|file_sep|>main.py\n<|fim_")
    assert prompt.endswith("total = <|fim_suffix|>\n<|fim_middle|>")

    editor.type_slowly(" 1")
    wait_until(lambda: editor.stats()["requests"] > first["requests"], what="a second request")
    second = settle(editor)
    assert second["last_cache_n"] > 40, "the server reused the chunks it cached"
    assert_no_errors(editor)


def test_status_names_the_kind_and_the_model_that_answered(
    make_editor: Callable[..., Editor], proxy: ReplyRecordingProxy, llama_server: LlamaServer
) -> None:
    editor = completions_editor(make_editor, proxy.url, model_fim="tiny-coder")
    editor.nvim.command("LlamaStatus")
    report = editor.wait_messages("llama.nvim status")
    assert "API:       /v1/completions (OpenAI-compatible), FIM template qwen2.5-coder" in report
    assert f"model:     {llama_server.model}" in report, "llama-server answers with its model"
    assert "FIM:       supported" in report
    probe = next(r.json() for r in proxy.requests_to("/v1/completions"))
    assert probe["model"] == "tiny-coder"


def test_model_fim_goes_with_every_infill_request_priming_and_speculation_too(
    make_editor: Callable[..., Editor], fake: FakeServer, tmp_path: Path
) -> None:
    fake.responder = lambda request: Reply.completion("pass")
    helper = "".join(f"def helper_{n}(value):\n    return value * {n}\n\n" for n in range(8))
    project = make_project(tmp_path / "p", {"helpers.py": helper, "main.py": SOURCE})
    options = {"ring_update_ms": 50, "ring_chunk_size": 16, "speculative_delay_ms": 0}
    editor = make_editor({"endpoint": fake.infill_url, "model_fim": "coder-7b", **options})
    editor.nvim.command(f"cd {project}")
    editor.nvim.command("edit helpers.py")
    editor.type("3Gy10j")
    editor.nvim.command("edit main.py")
    editor.wait_stats(lambda s: s["primes"] >= 1, "the ring's chunk primed while idle")
    editor.type("Go")
    editor.type_slowly("x = ")
    editor.wait_hint()
    editor.wait_stats(lambda s: s["speculative"] >= 1, "a speculative request")
    settle(editor)

    bodies = fake.infill_bodies()
    assert {body.get("model") for body in bodies} == {"coder-7b"}
    assert any(body["n_predict"] == 0 for body in bodies), "priming was among them"
    assert_no_errors(editor)


# -- Ollama's wire format, played by the fake server ---------------------------------------------


def ollama_editor(make_editor: Callable[..., Editor], fake: FakeServer, **options: Any) -> Editor:
    config = {"endpoint": fake.url + "/api/generate", "model_fim": "qwen2.5-coder:1.5b"}
    return make_editor({**config, "speculative": False, **options})


def test_ollama_stream_shows_as_ghost_text_and_tab_inserts_it(
    make_editor: Callable[..., Editor], fake: FakeServer
) -> None:
    pieces = ["a", " + b", "\n    return total"]
    fake.responder = lambda request: Reply.ollama_stream(pieces)
    editor = ollama_editor(make_editor, fake)
    editor.set_text(SOURCE)
    editor.nvim.command("setlocal noautoindent nosmartindent indentexpr=")
    editor.type("Go")
    editor.type_slowly("    total = ")
    hint = editor.wait_hint()
    assert hint.text == "a + b\n    return total"

    body = fake.requests_to("/api/generate")[-1].json()
    assert body["model"] == "qwen2.5-coder:1.5b"
    assert body["prompt"] == SOURCE + "\n    total = "
    assert body["suffix"] == "\n"
    assert body["stream"] is True
    assert body["options"]["num_predict"] == 128
    assert "raw" not in body, "Ollama applies the model's own FIM template"

    before = editor.text()
    editor.type("<Tab>")
    after = editor.wait_text_change(before)
    assert after == before + "a + b\n    return total"
    asked = {r.path for r in fake.requests}
    assert asked <= {"/api/generate", "/api/version"}, f"llama-server requests: {asked}"
    assert_no_errors(editor)


def test_ollama_with_a_template_sends_a_raw_prompt(
    make_editor: Callable[..., Editor], fake: FakeServer
) -> None:
    fake.responder = lambda request: Reply.ollama_stream(["pass"])
    editor = ollama_editor(make_editor, fake, fim_template="codellama")
    editor.set_text(SOURCE)
    editor.nvim.command("setlocal noautoindent nosmartindent indentexpr=")
    editor.type("Go")
    editor.type_slowly("    ")
    editor.wait_hint()
    body = fake.requests_to("/api/generate")[-1].json()
    assert body["raw"] is True
    assert body["prompt"] == f"<PRE> {SOURCE}\n     <SUF>\n <MID>"
    assert "<EOT>" in body["options"]["stop"]


# -- one clear message for a failing or misbehaving server of each kind ---------------------------

BROKEN = {
    "completions-500": (
        "/v1/completions",
        Reply.error(500, "slot unavailable"),
        "the server failed (HTTP 500: slot unavailable)",
    ),
    "completions-cut-stream": (
        "/v1/completions",
        Reply(body=b'data: {"choices": [{"text": "x"}]}\n\n', content_type="text/event-stream"),
        "the server sent a malformed reply (the stream ended",
    ),
    "ollama-no-model": (
        "/api/generate",
        Reply(status=404, body=b'{"error": "model \'coder\' not found"}'),
        "Ollama answered HTTP 404: model 'coder' not found",
    ),
    "ollama-error-mid-stream": (
        "/api/generate",
        Reply(
            body=b'{"response": "a", "done": false}\n{"error": "out of memory"}\n',
            content_type="application/x-ndjson",
        ),
        "Ollama failed (out of memory); retrying quietly",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_server_of_each_kind_is_told_once(
    make_editor: Callable[..., Editor], fake: FakeServer, case: str
) -> None:
    path, reply, message = BROKEN[case]
    fake.responder = lambda request: reply
    editor = make_editor({"endpoint": fake.url + path, "model_fim": "coder", "speculative": False})
    editor.type("i")
    editor.type_slowly("import os", delay=0.05)
    editor.wait_messages(message)
    editor.type_slowly("\nimport sys", delay=0.05)
    caught_up(editor)
    slow = "404" in message  # backs off for long: a restart or a config change fixes it
    assert len(fake.requests_to(path)) >= (1 if slow else 2), "the plugin kept trying"
    assert editor.message_count(message) == 1
    assert "llama-server" not in editor.messages()
    assert editor.hint() is None

    if slow:
        return
    fake.responder = lambda request: (
        Reply.ollama_stream(["ok()"]) if path == "/api/generate" else Reply.openai_stream(["ok()"])
    )
    deadline = time.monotonic() + 15
    while editor.hint() is None:  # ask by hand until the backoff lets a request through
        assert time.monotonic() < deadline, "no suggestion once the server is fine again"
        editor.type("<C-F>")
        poll_until(editor.hint, timeout=1.0)
    recovered = editor.hint()
    assert recovered is not None
    assert recovered.inline == "ok()"
    assert_no_errors(editor)


def test_status_for_ollama_names_its_model_and_no_slot(
    make_editor: Callable[..., Editor], fake: FakeServer
) -> None:
    fake.responder = lambda request: Reply.ollama_stream([], model="qwen2.5-coder:7b")
    editor = ollama_editor(make_editor, fake)
    editor.nvim.command("LlamaStatus")
    report = editor.wait_messages("llama.nvim status")
    assert "API:       Ollama /api/generate, the model's template" in report
    assert "model:     qwen2.5-coder:7b" in report
    assert "FIM:       supported" in report
    assert "slot:" not in report
    assert "n_ctx:" not in report
    assert {r.path for r in fake.requests} == {"/api/version", "/api/generate"}
