"""Instruction editing (:LlamaInstruct) in a real Neovim against a real llama-server.

The tiny model's answers are gibberish, so the checks are on structure: the
lines that replace the selection are exactly the content the server streamed
(as a recording proxy saw it), the requests carry the conversation, the
buffer and the marks are as they should be after each key.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakeserver import FakeServer, Received, Reply
from tests.harness import (
    Editor,
    LlamaServer,
    assert_no_errors,
    free_port,
    ring_idle,
    wait_until,
)
from tests.recording_proxy import RecordingProxy

pytestmark = pytest.mark.integration

TEXT = "\n".join(
    [
        "def area(width, height):",
        "    w = width",
        "    h = height",
        "    return w * h",
        "",
        "def perimeter(width, height):",
        "    return 2 * (width + height)",
        "",
        "print(area(2, 3))",
    ]
)
INST = "require('llama_nvim.instruct')"
REAL_SOURCE = Path(httpx.__file__).with_name("_models.py").read_text().split("\n")


class AnswerRecordingProxy(RecordingProxy):
    """A recording proxy that also keeps the answer to each request."""

    def __init__(self, upstream: str) -> None:
        self.answers: list[tuple[Received, bytes]] = []
        super().__init__(upstream)

    def _route(self, request: Received) -> Reply:
        reply = super()._route(request)
        with self._lock:
            self.answers.append((request, reply.body))
        return reply

    def chat(self) -> list[tuple[dict[str, Any], bytes]]:
        """(body, answer) of every chat request so far."""
        with self._lock:
            return [(r.json(), a) for r, a in self.answers if r.path == "/v1/chat/completions"]


def streamed_content(answer: bytes) -> str:
    """The text a streamed chat answer carried: its deltas joined."""
    text = []
    for line in answer.split(b"\n"):
        if line.startswith(b"data: ") and line[6:].strip() != b"[DONE]":
            delta = json.loads(line[6:])["choices"][0].get("delta", {})
            text.append(delta.get("content") or "")
    return "".join(text)


def replacement(content: str) -> list[str]:
    """The lines accepting ``content`` puts in place of the selection."""
    lines = content.split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    return lines


@pytest.fixture(scope="module")
def chat_server(fim_model: Path) -> Iterator[LlamaServer]:
    """A llama-server with two slots (FIM leases one, instructions the other)."""
    server = LlamaServer(fim_model, free_port(), "-np", "2", ctx=8192)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def proxy(chat_server: LlamaServer) -> Iterator[AnswerRecordingProxy]:
    recording = AnswerRecordingProxy(chat_server.url)
    try:
        yield recording
    finally:
        recording.close()


def open_editor(make_editor: Callable[..., Editor], url: str, **config: Any) -> Editor:
    editor = make_editor(
        {"endpoint": url + "/infill", "endpoint_inst": url + "/v1/chat/completions", **config}
    )
    editor.set_text(TEXT)
    return editor


def pending(editor: Editor) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = editor.lua(f"return {INST}.pending()")
    return result


def wait_status(editor: Editor, status: str, count: int = 1) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]] | None:
        now = pending(editor)
        return now if len([p for p in now if p["status"] == status]) >= count else None

    return wait_until(probe, timeout=30, what=f"{count} instruction(s) {status}")


def our_marks(editor: Editor) -> int:
    """Extmarks in every namespace of ours, over every buffer."""
    code = """
        local n = 0
        for name, ns in pairs(vim.api.nvim_get_namespaces()) do
          if name:match('^llama_nvim') then
            for _, b in ipairs(vim.api.nvim_list_bufs()) do
              n = n + #vim.api.nvim_buf_get_extmarks(b, ns, 0, -1, {})
            end
          end
        end
        return n
    """
    count: int = editor.lua(code)
    return count


def virtual_lines(editor: Editor) -> list[str]:
    code = """
        local ns = vim.api.nvim_create_namespace('llama_nvim_inst')
        local out = {}
        for _, m in ipairs(vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })) do
          for _, line in ipairs(m[4].virt_lines or {}) do
            local text = {}
            for _, chunk in ipairs(line) do text[#text + 1] = chunk[1] end
            out[#out + 1] = table.concat(text)
          end
        end
        return out
    """
    lines: list[str] = editor.lua(code)
    return lines


def instruct(editor: Editor, first: int, last: int, instruction: str) -> None:
    """`:first,lastLlamaInstruct`, answering the prompt as a user types."""
    editor.type(f":{first},{last}LlamaInstruct<CR>{instruction}<CR>")


def test_visual_key_instruction_accepted_replaces_exactly_the_selection_in_one_undo(
    make_editor: Callable[..., Editor], proxy: AnswerRecordingProxy
) -> None:
    editor = open_editor(make_editor, proxy.url)
    before = editor.lines()
    editor.type("2GVj\\llimake it shorter<CR>")
    wait_status(editor, "ready")
    assert any(line.startswith("Ready") for line in virtual_lines(editor))
    (warm, _), (body, answer) = proxy.chat()
    # The warm-up: the same system message, nothing generated; the cache is reused.
    assert warm["n_predict"] == 0
    assert warm["messages"][0] == body["messages"][0]
    system = body["messages"][0]["content"]
    assert "    w = width\n    h = height\n" in system
    assert system.index("--- PREFIX") < system.index("--- SELECTION") < system.index("--- SUFFIX")
    assert body["messages"][1:] == [{"role": "user", "content": "INSTRUCTION: make it shorter"}]
    assert body["stream"] is True

    editor.type("<Tab>")
    expected = before[:1] + replacement(streamed_content(answer)) + before[3:]
    wait_until(lambda: editor.lines() == expected, what="the selection replaced")
    assert our_marks(editor) == 0
    editor.type("u")
    wait_until(lambda: editor.lines() == before, what="one undo to restore the selection")
    assert editor.lua("return vim.fn.maparg('<Tab>', 'n')") == ""
    assert_no_errors(editor)


def test_preview_is_drawn_while_the_answer_streams(
    make_editor: Callable[..., Editor], chat_server: LlamaServer
) -> None:
    editor = open_editor(make_editor, chat_server.url)
    # Record what each update drew, as it drew it: the stream may be short.
    editor.lua(
        f"""
        local inst = {INST}
        local update = inst.update
        _G.drawn = {{}}
        inst.update = function(id, state)
          update(id, state)
          local ns = vim.api.nvim_create_namespace('llama_nvim_inst')
          local lines = {{}}
          for _, m in ipairs(vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, {{ details = true }})) do
            for _, line in ipairs(m[4].virt_lines or {{}}) do lines[#lines + 1] = line[1][1] end
          end
          local text = state.text or ''
          _G.drawn[#_G.drawn + 1] = {{ status = state.status, text = text, lines = lines }}
        end
        """
    )
    instruct(editor, 2, 3, "rename w")
    (done,) = wait_status(editor, "ready")
    drawn: list[dict[str, Any]] = editor.lua("return _G.drawn")
    assert drawn[0]["status"] == "proc"
    assert "Processing ..." in drawn[0]["lines"]
    assert "Instruction: rename w" in drawn[0]["lines"]
    tabstop: int = editor.lua("return vim.bo.tabstop")
    generating = [d for d in drawn if d["status"] == "gen"]
    assert generating, drawn
    for state in generating:
        assert done["text"].startswith(state["text"])
        assert any(line.startswith("Generating:") for line in state["lines"])
        last_line = state["text"].split("\n")[-1]
        assert editor.display(last_line, 0, tabstop) in state["lines"]
    assert drawn[-1]["status"] == "ready"


def test_cancel_stops_the_stream_and_leaves_the_buffer_and_keys_as_they_were(
    make_editor: Callable[..., Editor],
) -> None:
    chunk = b'data: {"choices":[{"delta":{"content":"x "}}]}\n\n'

    def slow_stream(request: Received) -> Reply:
        if request.path == "/v1/chat/completions" and request.json().get("stream"):
            return Reply(body=chunk * 400, content_type="text/event-stream", dribble=0.002)
        return Reply.completion("")

    server = FakeServer(slow_stream)
    try:
        editor = open_editor(make_editor, server.url)
        editor.nvim.command("nnoremap <buffer> <Esc> <Cmd>let g:own_esc = 1<CR>")
        before = editor.lines()
        instruct(editor, 2, 3, "anything")
        wait_status(editor, "gen")
        editor.type("9G<Esc>")  # outside the selection: the buffer's own mapping runs
        wait_until(lambda: editor.nvim.vars.get("own_esc") == 1, what="the user's own <Esc>")
        editor.type("2G<Esc>")
        wait_until(lambda: not pending(editor), what="the instruction cancelled")
        stream = [r for r in server.requests if r.path == "/v1/chat/completions"][-1]
        wait_until(lambda: stream.hung_up, what="the connection closed")
        assert editor.lines() == before
        assert our_marks(editor) == 0
        assert "own_esc" in editor.lua("return vim.fn.maparg('<Esc>', 'n')")
        assert editor.lua("return vim.fn.maparg('<Tab>', 'n')") == ""
        assert_no_errors(editor)
    finally:
        server.close()


def test_rerun_asks_again_and_continue_follows_up_in_the_same_conversation(
    make_editor: Callable[..., Editor], proxy: AnswerRecordingProxy
) -> None:
    editor = open_editor(make_editor, proxy.url)
    instruct(editor, 2, 3, "first")
    wait_status(editor, "ready")
    editor.type("\\llr")
    wait_until(lambda: len(proxy.chat()) == 3, what="the rerun request")
    wait_status(editor, "ready")
    editor.type("\\llcand then<CR>")
    wait_until(lambda: len(proxy.chat()) == 4, what="the follow-up request")
    (done,) = wait_status(editor, "ready")
    _, (first, _), (rerun, rerun_answer), (follow, follow_answer) = proxy.chat()
    assert rerun["messages"] == first["messages"]
    assert follow["messages"] == [
        *first["messages"],
        {"role": "assistant", "content": streamed_content(rerun_answer)},
        {"role": "user", "content": "INSTRUCTION: and then"},
    ]
    assert done["text"] == streamed_content(follow_answer)


def test_two_instructions_at_once_on_their_own_slots_and_an_edit_above_moves_them(
    make_editor: Callable[..., Editor], proxy: AnswerRecordingProxy
) -> None:
    editor = open_editor(make_editor, proxy.url)
    before = editor.lines()
    instruct(editor, 2, 3, "one")
    instruct(editor, 6, 7, "two")
    wait_status(editor, "ready", count=2)
    streams = [(b, a) for b, a in proxy.chat() if b["stream"]]
    slots = [b["id_slot"] for b, _ in streams]
    assert len(set(slots)) == 2, slots  # not both pinned to one slot
    editor.type("ggOnew first line<Esc>")
    wait_until(lambda: [(p["first"], p["last"]) for p in pending(editor)] == [(2, 3), (6, 7)])
    answers = {b["messages"][1]["content"]: streamed_content(a) for b, a in streams}
    editor.type("7G<Tab>")
    editor.type("3G<Tab>")
    expected = [
        "new first line",
        before[0],
        *replacement(answers["INSTRUCTION: one"]),
        *before[3:5],
        *replacement(answers["INSTRUCTION: two"]),
        *before[7:],
    ]
    wait_until(lambda: editor.lines() == expected, what="both selections replaced")
    assert our_marks(editor) == 0
    assert_no_errors(editor)


def test_editing_inside_a_pending_selection_cancels_it_with_a_message(
    make_editor: Callable[..., Editor], proxy: AnswerRecordingProxy
) -> None:
    editor = open_editor(make_editor, proxy.url)
    instruct(editor, 2, 3, "anything")
    wait_status(editor, "ready")
    editor.type("3Gx")
    wait_until(lambda: not pending(editor), what="the instruction cancelled")
    assert editor.message_count("instruction cancelled: its lines were edited") == 1
    assert editor.lines()[2] == "   h = height"
    assert our_marks(editor) == 0


def test_a_server_that_cannot_be_reached_gives_one_message_and_leaves_nothing(
    make_editor: Callable[..., Editor], chat_server: LlamaServer
) -> None:
    editor = make_editor(
        {
            "endpoint": chat_server.infill_url,
            "endpoint_inst": f"http://127.0.0.1:{free_port()}/v1/chat/completions",
        }
    )
    editor.set_text(TEXT)
    before = editor.lines()
    instruct(editor, 2, 3, "anything")
    editor.wait_messages("instruction failed: server not reachable")
    wait_until(lambda: not pending(editor), what="the instruction dropped")
    assert editor.message_count("instruction failed") == 1
    assert editor.lines() == before
    assert our_marks(editor) == 0


def test_escape_at_the_prompt_drops_the_instruction(
    make_editor: Callable[..., Editor], proxy: AnswerRecordingProxy
) -> None:
    editor = open_editor(make_editor, proxy.url)
    before = editor.lines()
    editor.type(":2,3LlamaInstruct<CR>")
    wait_until(lambda: pending(editor), what="the instruction to be opened")
    editor.type("<Esc>")
    wait_until(lambda: not pending(editor), what="the instruction dropped")
    editor.keys_handled()
    assert editor.lines() == before
    assert our_marks(editor) == 0
    assert all(not body["stream"] for body, _ in proxy.chat())  # only the warm-up went out
    assert editor.lua("return vim.fn.maparg('<Tab>', 'n')") == ""


def test_the_projects_extra_context_goes_first_in_the_prompt(
    make_editor: Callable[..., Editor], proxy: AnswerRecordingProxy, tmp_path: Path
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / "models.py").write_text("\n".join(REAL_SOURCE[:200]) + "\n")
    (project / "main.py").write_text(TEXT + "\n")
    editor = make_editor(
        {
            "endpoint": proxy.url + "/infill",
            "endpoint_inst": proxy.url + "/v1/chat/completions",
            "ring_update_ms": 50,
            "ring_chunk_size": 16,
        }
    )
    editor.nvim.command(f"cd {project}")
    editor.nvim.command("edit models.py")
    editor.type("50Gy10j")
    editor.nvim.command("edit main.py")
    ring_idle(editor)
    instruct(editor, 2, 3, "anything")
    wait_status(editor, "ready")
    system = proxy.chat()[-1][0]["messages"][0]["content"]
    context = system[system.index("--- CONTEXT") : system.index("--- PREFIX")]
    chunks = context.split("--- file: ")[1:]
    source = "\n".join(REAL_SOURCE[:200])
    from_models = [c.removeprefix("models.py\n") for c in chunks if c.startswith("models.py\n")]
    # Whole pieces of the other file, the yanked one (line 50 on) among them.
    assert all(chunk.rstrip("\n") in source for chunk in from_models)
    assert any(chunk.startswith("\n".join(REAL_SOURCE[49:53])) for chunk in from_models)
    assert system.index("--- file: models.py") < system.index("--- PREFIX")


def test_a_secret_file_is_never_sent_for_an_instruction(
    make_editor: Callable[..., Editor], proxy: AnswerRecordingProxy, tmp_path: Path
) -> None:
    secret = tmp_path / ".env"
    secret.write_text("API_KEY=hunter2\nOTHER=1\n")
    editor = open_editor(make_editor, proxy.url)
    editor.nvim.command(f"edit {secret}")
    instruct(editor, 1, 2, "anything")
    editor.wait_messages("no instruction here: this file is never sent")
    wait_until(lambda: not pending(editor), what="the instruction dropped")
    editor.keys_handled()
    assert b"hunter2" not in proxy.sent()
    assert our_marks(editor) == 0


def test_a_strict_openai_server_gets_no_llama_server_fields_and_the_edit_is_accepted(
    make_editor: Callable[..., Editor],
) -> None:
    pieces = ["    size = ", "width * height\n", "    return size\n"]

    def chat(request: Received) -> Reply:
        if request.path == "/v1/chat/completions":
            return Reply.chat_stream(pieces, dribble=0.01)
        return Reply.completion("")

    server = FakeServer(chat, openai_only=True)  # 400 for any field OpenAI's API has not
    try:
        editor = open_editor(make_editor, server.url)
        editor.lua(f"_G.seen = {{}}; local v = {INST}.update; {INST}.update = "
                   "function(id, s) _G.seen[#_G.seen + 1] = s.status; v(id, s) end")  # fmt: skip
        before = editor.lines()
        instruct(editor, 2, 4, "use one name")
        wait_status(editor, "ready")
        assert "gen" in editor.lua("return _G.seen"), "the preview was drawn while it streamed"
        shown = virtual_lines(editor)
        assert "    size = width * height" in shown
        assert "    return size" in shown
        (request,) = server.requests_to("/v1/chat/completions")  # no warm-up
        body = request.json()
        assert set(body) == {"messages", "stream", "temperature"}
        assert body["messages"][1] == {"role": "user", "content": "INSTRUCTION: use one name"}
        editor.type("2G<Tab>")
        expected = [before[0], "    size = width * height", "    return size", *before[4:]]
        wait_until(lambda: editor.lines() == expected, what="the selection replaced")
        assert our_marks(editor) == 0
        editor.type("u")
        wait_until(lambda: editor.lines() == before, what="one undo to restore the selection")
        assert_no_errors(editor)
    finally:
        server.close()


def test_an_unknown_key_name_in_an_inst_keymap_is_named_and_the_default_works(
    make_editor: Callable[..., Editor], proxy: AnswerRecordingProxy
) -> None:
    editor = open_editor(make_editor, proxy.url, keymap_inst_accept="<NoSuchKey>")
    messages = editor.wait_messages("<NoSuchKey>")
    assert messages.count("g:llama_config.keymap_inst_accept: unknown key name <NoSuchKey>") == 1
    assert 'using the default "<Tab>"' in messages
    before = editor.lines()
    instruct(editor, 2, 3, "anything")
    wait_status(editor, "ready")
    (_, answer) = proxy.chat()[-1]
    editor.type("<Tab>")
    expected = before[:1] + replacement(streamed_content(answer)) + before[3:]
    wait_until(lambda: editor.lines() == expected, what="the default <Tab> to accept")
    assert_no_errors(editor)
    report = "\n".join(checkhealth_lines(editor))
    assert "WARNING g:llama_config.keymap_inst_accept: unknown key name <NoSuchKey>" in report


def checkhealth_lines(editor: Editor) -> list[str]:
    editor.nvim.command("checkhealth llama_nvim")
    return list(editor.nvim.current.buffer[:])


def test_status_reports_the_instruction_server_and_a_dead_one(
    make_editor: Callable[..., Editor], chat_server: LlamaServer
) -> None:
    editor = open_editor(make_editor, chat_server.url, model_inst="tiny-chat")
    editor.nvim.command("LlamaStatus")
    report = editor.wait_messages("  pending:   ")
    assert (
        f"instruction editing (:LlamaInstruct)\n  endpoint:  {chat_server.url}/v1/chat/completions"
        in report
    )
    assert f"  server:    ok, llama-server; serves {chat_server.model}" in report
    assert "  model:     tiny-chat (model_inst)" in report
    assert "  pending:   0 instructions" in report
    instruct(editor, 2, 3, "anything")
    wait_status(editor, "ready")
    editor.nvim.command("LlamaStatus")
    editor.wait_messages("  pending:   1 instruction")

    dead = f"http://127.0.0.1:{free_port()}/v1/chat/completions"
    editor = make_editor({"endpoint": chat_server.infill_url, "endpoint_inst": dead})
    editor.nvim.command("LlamaStatus")
    report = editor.wait_messages("  pending:   ")
    models = dead.replace("/chat/completions", "/models")
    assert f"  server:    NOT ok: server not reachable at {models}" in report
    text = "\n".join(checkhealth_lines(editor))
    assert f"WARNING endpoint_inst {dead}: server not reachable at {models}" in text
