"""Real components for the tests: llama-server processes and embedded Neovims.

Nothing here fakes the plugin's environment: Neovim is the real binary, the
plugin is registered with :UpdateRemotePlugins into a private manifest, and
keys are typed with nvim_input as a user would type them. Waiting is done by
polling, never by fixed sleeps that hope the work is done.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pynvim
import pytest

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")
# What a Lua error, a Python exception or a failed async call looks like in :messages.
ERROR_MARKS = (
    "Traceback",
    "stack traceback",
    "E5108",
    "error caught in",
    "Async request caused an error",
    "Error executing",
)


def _venv_bin() -> str:
    return str(Path(sys.executable).parent)


def find_binary(env_var: str, *names: str) -> str:
    """A required binary: from ``env_var``, the venv, or PATH; fail (never skip) if absent."""
    explicit = os.environ.get(env_var)
    if explicit:
        return explicit
    search = os.pathsep.join([_venv_bin(), os.environ.get("PATH", "")])
    for name in names:
        found = shutil.which(name, path=search)
        if found:
            return found
    pytest.fail(f"{' or '.join(names)} not found; run .ci/run to install it or set {env_var}")


def nvim_binary() -> str:
    return find_binary("LLAMA_NVIM_NVIM", "nvim")


def server_binary() -> str:
    return find_binary("LLAMA_NVIM_SERVER", "llama-server", "llama-server-vulkan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def poll_until(probe: Callable[[], T | None], timeout: float, interval: float = 0.02) -> T | None:
    """Poll ``probe`` until it returns something truthy (returned) or ``timeout`` passes (None).

    The one polling loop of the tests: every wait for something to happen goes
    through here, ending as soon as it has happened.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def wait_until(
    probe: Callable[[], T | None], timeout: float = 15.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` on timeout."""
    value = poll_until(probe, timeout, interval)
    if not value:
        pytest.fail(f"timed out after {timeout} s waiting for {what or probe}")
    return value


def human_pause(seconds: float) -> None:
    """The typist's own pace: a gap between keys, a moment to think.

    Part of a scenario (how fast a person types decides which requests go
    stale), never a wait for the plugin: waits use wait_until and the counters.
    """
    time.sleep(seconds)


def type_slowly(nvim: Any, text: str, gap: float = 0.03) -> None:
    """Type ``text`` one key at a time into ``nvim``, ``gap`` seconds apart, as a person does."""
    for char in text:
        nvim.input("<lt>" if char == "<" else char)
        human_pause(gap)


class LlamaServer:
    """A real llama-server process on 127.0.0.1."""

    def __init__(self, model: Path, port: int, *extra_args: str, ctx: int = 4096) -> None:
        self.model = model
        self.port = port
        self.extra_args = extra_args
        self.ctx = ctx
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"llama-server-{port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def infill_url(self) -> str:
        return self.url + "/infill"

    def start(self) -> None:
        args = [
            server_binary(),
            "-m", str(self.model),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "-np", "1",
            "-c", str(self.ctx),
            "-b", "1024",
            "-ub", "1024",
            "--cache-reuse", "256",
            "-t", "2",
            "--no-webui",
            *self.extra_args,
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._healthy, timeout=60, what=f"llama-server on port {self.port}")

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            log = self.log_path.read_text(errors="replace")[-3000:]
            pytest.fail(f"llama-server exited with {self.process.returncode}:\n{log}")
        try:
            return httpx.get(self.url + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def infill(self, **body: Any) -> dict[str, Any]:
        """A direct /infill request, for tests that check the server's side."""
        reply = httpx.post(self.infill_url, json=body, timeout=30)
        reply.raise_for_status()
        data: dict[str, Any] = reply.json()
        return data


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        path = home / var.lower()
        path.mkdir(exist_ok=True)
        env[var] = str(path)
    env["NVIM_RPLUGIN_MANIFEST"] = str(home / "rplugin.vim")
    env["NVIM_LOG_FILE"] = str(home / "nvim.log")
    env["NVIM_PYTHON_LOG_FILE"] = str(home / "python-host")
    env["NVIM_PYTHON_LOG_LEVEL"] = "WARNING"
    return env


def _base_init(home: Path) -> str:
    return "\n".join(
        [
            "set nocompatible",
            f"let g:python3_host_prog = {json.dumps(sys.executable)}",
            f"set runtimepath^={REPO}",
            "set noswapfile shortmess+=I",
        ]
    )


def register_plugin(home: Path) -> None:
    """Run :UpdateRemotePlugins the way a user does, into a private manifest."""
    init = home / "register.vim"
    init.write_text(_base_init(home) + "\n")
    subprocess.run(
        [nvim_binary(), "--headless", "-u", str(init), "-i", "NONE", "-n",
         "+UpdateRemotePlugins", "+qa!"],
        env=_env(home), check=True, timeout=60, capture_output=True,
    )  # fmt: skip
    manifest = (home / "rplugin.vim").read_text()
    assert "llama_nvim_plugin.py" in manifest, manifest


HINT_STATE = """
local marks = vim.api.nvim_buf_get_extmarks(0, ..., 0, -1, { details = true })
local shown = require('llama_nvim.hint').current()
return { marks, shown ~= nil and shown.growing == true }
"""


@dataclass
class Hint:
    """A suggestion as the screen shows it, read back from the extmarks."""

    row: int
    col: int
    inline: str
    below: list[str]
    info: str
    # The first words of an answer still coming (a slow server's), not yet all of it.
    growing: bool = False

    @property
    def text(self) -> str:
        return "\n".join([self.inline, *self.below])


class Editor:
    """A real embedded Neovim with llama.nvim, driven like a user."""

    def __init__(self, nvim: Any, home: Path) -> None:
        self.nvim = nvim
        self.home = home
        self.ns: int = nvim.api.create_namespace("llama_nvim")
        self._probes = 0

    @classmethod
    def start(cls, home: Path, workdir: Path, config: dict[str, Any], *, init: str = "") -> Editor:
        init_file = workdir / f"init-{time.monotonic_ns()}.vim"
        lines = [
            _base_init(home),
            f"let g:llama_config = json_decode({json.dumps(json.dumps(config))})",
            init,
        ]
        init_file.write_text("\n".join(lines) + "\n")
        saved = dict(os.environ)
        os.environ.update(_env(home))
        try:
            nvim = pynvim.attach(
                "child",
                argv=[nvim_binary(), "--embed", "--headless", "-u", str(init_file),
                      "-i", "NONE", "-n"],
            )  # fmt: skip
        finally:
            os.environ.clear()
            os.environ.update(saved)
        editor = cls(nvim, home)
        wait_until(editor._started, timeout=30, what="llama.nvim to start in Neovim")
        return editor

    def _started(self) -> bool:
        code = "return package.loaded['llama_nvim'] ~= nil and require('llama_nvim').is_ready()"
        return bool(self.lua(code))

    def close(self) -> None:
        # The child may already be gone: EOFError, OSError, NvimError.
        with contextlib.suppress(Exception):
            self.unblock()  # quitting from a prompt would hang
            self.nvim.command("qa!")
        self.nvim.close()

    # -- acting like a user -------------------------------------------------------

    def type(self, keys: str) -> None:
        """Type keys (Vim key notation) as if from the keyboard."""
        self.nvim.input(keys)

    def type_slowly(self, text: str, delay: float = 0.03) -> None:
        """Type one key at a time, as a person does."""
        type_slowly(self.nvim, text, delay)

    def keys_handled(self) -> None:
        """Wait until Neovim has handled every key typed so far, autocommands included.

        A <Cmd> probe typed after them sets a variable when its turn comes. It
        moves nothing and changes no text, so it sets off no autocommand of its
        own; once it has run, so have the keys before it and the autocommands
        they fired, and whatever those sent the plugin's host reaches it before
        any later request made through Neovim (one channel, in order).
        """
        self._probes += 1
        probe = self._probes

        def not_at_a_prompt() -> None:
            # A prompt would swallow the probe (and hides a bug of its own).
            if self.blocked():
                pytest.fail(self.error_report())

        not_at_a_prompt()
        self.nvim.input(f"<Cmd>let g:llama_test_probe = {probe}<CR>")

        def handled() -> bool:
            not_at_a_prompt()
            return bool(self.nvim.vars.get("llama_test_probe") == probe)

        wait_until(handled, what="Neovim to handle the typed keys")

    def lua(self, code: str, *args: Any) -> Any:
        return self.nvim.exec_lua(code, *args)

    # -- reading the screen state ---------------------------------------------------

    def hint(self) -> Hint | None:
        # One call, so that the marks and the growing flag are of the same hint.
        marks, growing = self.lua(HINT_STATE, self.ns)
        inline = None
        info = ""
        for _, row, col, details in marks:
            if details.get("virt_text_pos") == "inline":
                inline = Hint(
                    row=row,
                    col=col,
                    inline="".join(chunk[0] for chunk in details["virt_text"]),
                    below=[
                        "".join(chunk[0] for chunk in line)
                        for line in details.get("virt_lines") or []
                    ],
                    info="",
                    growing=growing,
                )
            elif details.get("virt_text_pos") == "eol":
                info = "".join(chunk[0] for chunk in details["virt_text"])
        if inline is not None:
            inline.info = info
        return inline

    def wait_hint(self, timeout: float = 15.0, *, finished: bool = True) -> Hint:
        """Wait for ghost text; ``finished``: the whole answer, not its first words.

        Under load even the tiny model's server may be measured slow, and then
        its answers are drawn as they grow.
        """

        def probe() -> Hint | None:
            hint = self.hint()
            return hint if hint is not None and not (finished and hint.growing) else None

        return wait_until(probe, timeout=timeout, what="ghost text")

    def display(self, text: str, vcol: int = 0, tabstop: int | None = None) -> str:
        """How the plugin shows ``text`` starting at screen column ``vcol``.

        The tab stop is the current buffer's unless given (filetype plugins
        change it: Python's sets 4).
        """
        if tabstop is None:
            tabstop = int(self.nvim.current.buffer.options["tabstop"])
        shown: str = self.lua("return require('llama_nvim').display(...)", text, vcol, tabstop)
        return shown

    def lines(self) -> list[str]:
        return list(self.nvim.current.buffer[:])

    def text(self) -> str:
        return "\n".join(self.lines())

    def cursor(self) -> tuple[int, int]:
        row, col = self.nvim.current.window.cursor
        return row - 1, col

    def mode(self) -> str:
        mode: str = self.nvim.api.get_mode()["mode"]
        return mode

    def messages(self) -> str:
        out: str = self.nvim.api.exec2("messages", {"output": True})["output"]
        return out

    def wait_messages(self, needle: str, timeout: float = 15.0) -> str:
        """Wait until :messages contains ``needle``; return all of it."""
        return wait_until(
            lambda: self.messages() if needle in self.messages() else None,
            timeout=timeout,
            what=f"a message with {needle!r}",
        )

    def wait_text_change(self, before: str) -> str:
        """Wait until the buffer differs from ``before``; return it."""
        return wait_until(
            lambda: self.text() if self.text() != before else None, what="the text to change"
        )

    def wait_stats(
        self, predicate: Callable[[dict[str, int]], bool], what: str, timeout: float = 15.0
    ) -> dict[str, int]:
        """Wait until the plugin's counters satisfy ``predicate``; return them."""

        def probe() -> dict[str, int] | None:
            stats = self.stats()
            return stats if predicate(stats) else None

        return wait_until(probe, timeout=timeout, what=what)

    def stats(self) -> dict[str, int]:
        stats: dict[str, int] = self.nvim.call("LlamaNvimStats")
        return stats

    def set_text(self, text: str, filetype: str = "python") -> None:
        """Fill the current buffer (setup, not typing)."""
        self.nvim.current.buffer[:] = text.split("\n")
        self.nvim.command(f"setlocal filetype={filetype}")

    # -- checks for reliability tests ------------------------------------------------

    def blocked(self) -> str:
        """The mode if Neovim waits at a prompt (hit-enter, -- More --), else ''.

        nvim_get_mode answers even then; most other requests would hang.
        """
        mode: dict[str, Any] = self.nvim.api.get_mode()
        return str(mode["mode"]) if mode.get("blocking") else ""

    def unblock(self) -> None:
        """Dismiss any prompt Neovim waits at (else quitting it would hang the test)."""
        for _ in range(20):
            stuck = self.blocked()
            if not stuck:
                return
            self.nvim.input("<Esc>" if stuck.startswith("r") else "<CR>")
            # A long message pages on in the same mode: then the next key is due.
            poll_until(lambda: self.blocked() != stuck, timeout=0.05, interval=0.005)  # noqa: B023

    def error_report(self) -> str:
        """'' if Neovim is not stuck at a prompt and :messages shows no error; else what is."""
        stuck = self.blocked()
        self.unblock()
        messages = self.messages()
        marks = [mark for mark in ERROR_MARKS if mark in messages]
        if not stuck and not marks:
            return ""
        where = f"Neovim waited at a prompt (mode {stuck!r}); " if stuck else ""
        return f"{where}errors {marks} in :messages:\n{messages}"

    def message_count(self, needle: str) -> int:
        """How many times ``needle`` occurs in :messages."""
        return self.messages().count(needle)

    def roundtrip(self) -> float:
        """Seconds one RPC request to Neovim takes (Neovim must not be blocked)."""
        start = time.monotonic()
        self.nvim.eval("1")
        return time.monotonic() - start

    def host_roundtrip(self) -> float:
        """Seconds for Neovim to ask the plugin's Python host for its stats and get them."""
        start = time.monotonic()
        self.stats()
        return time.monotonic() - start

    def key_latency(self, key: str, timeout: float = 10.0) -> float:
        """Type one printable character in insert mode; seconds until Neovim has inserted it.

        Polls the buffer's changedtick (cheap even on a huge line), then checks
        that the character landed before the cursor.
        """
        tick: int = self.nvim.api.buf_get_changedtick(0)
        start = time.monotonic()
        self.nvim.input("<lt>" if key == "<" else key)
        wait_until(
            lambda: self.nvim.api.buf_get_changedtick(0) != tick,
            timeout=timeout,
            interval=0.002,
            what=f"{key!r} to be typed",
        )
        elapsed = time.monotonic() - start
        size = len(key.encode())
        landed = self.lua(
            "local c = vim.api.nvim_win_get_cursor(0)[2]; "
            "return vim.api.nvim_get_current_line():sub(c - ... + 1, c)",
            size,
        )
        assert landed == key, (landed, key)
        return elapsed

    def all_hints(self) -> dict[int, int]:
        """Buffer number -> count of llama.nvim extmarks, over every loaded buffer."""
        code = """
            local ns = vim.api.nvim_create_namespace('llama_nvim')
            local out = {}
            for _, b in ipairs(vim.api.nvim_list_bufs()) do
              if vim.api.nvim_buf_is_loaded(b) then
                local n = #vim.api.nvim_buf_get_extmarks(b, ns, 0, -1, {})
                if n > 0 then out[tostring(b)] = n end
              end
            end
            return out
        """
        marks: dict[str, int] = self.lua(code) or {}
        return {int(buf): n for buf, n in marks.items()}

    def nvim_pid(self) -> int:
        pid: int = self.nvim.call("getpid")
        return pid

    def host_pid(self) -> int:
        """The pid of the Python remote-plugin host: the child of Neovim running python."""
        parent = self.nvim_pid()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                stat = (proc / "stat").read_text()
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            ppid = int(stat.rpartition(")")[2].split()[1])
            if ppid == parent and b"python" in cmdline:
                return int(proc.name)
        pytest.fail(f"no Python host process under Neovim (pid {parent})")

    def host_sockets(self) -> int:
        """Open sockets of the Python host process."""
        fds = Path(f"/proc/{self.host_pid()}/fd")
        count = 0
        for fd in fds.iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd).startswith("socket:"):
                    count += 1
        return count

    def host_log(self) -> str:
        """What the Python hosts wrote to their log files (NVIM_PYTHON_LOG_FILE*)."""
        return "".join(
            path.read_text(errors="replace") for path in sorted(self.home.glob("python-host*"))
        )


def settle(editor: Editor) -> dict[str, int]:
    """Wait until the plugin has no request in flight; return its counters."""
    return editor.wait_stats(lambda s: not s["in_flight"], "requests to finish")


def caught_up(editor: Editor) -> dict[str, int]:
    """Wait until every key typed so far has had its effect; return the counters.

    Neovim has handled the keys, the plugin the events they sent (it decides at
    once whether to ask the server), and any request they started has ended
    (debounce included: a debounced request counts as in flight). What has not
    happened by now will not happen because of those keys (but for the ring's
    idle-time priming: see ring_idle), so a check that something was *not*
    done needs no fixed wait.
    """
    editor.keys_handled()
    return settle(editor)


def ring_idle(editor: Editor, timeout: float = 15.0) -> dict[str, int]:
    """Like caught_up, and the ring's queue drained: every gathered chunk admitted and primed.

    Needs the editor idle (normal mode) for the ring to do its work.
    """
    editor.keys_handled()
    return editor.wait_stats(
        lambda s: not s["in_flight"] and not s["ring_queued"], "the ring's idle work", timeout
    )


def assert_no_errors(editor: Editor) -> None:
    """Neovim is at no prompt and :messages holds no error."""
    report = editor.error_report()
    assert not report, report
