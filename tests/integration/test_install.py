"""The install path the README gives, followed literally in a fresh Neovim home.

A plain package under ``pack/*/start`` (what every plugin manager ends up
with), Neovim's own default manifest location, :UpdateRemotePlugins, a
restart: then typing must bring ghost text from the server. The package is
not pip-installed: the entry finds it next to itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pynvim
import pytest

from tests.harness import REPO, LlamaServer, nvim_binary, type_slowly, wait_until

pytestmark = pytest.mark.integration


def test_a_plain_package_install_works_as_the_readme_says(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[var] = str(tmp_path / var.lower())
        Path(env[var]).mkdir()
    env.pop("NVIM_RPLUGIN_MANIFEST", None)  # Neovim's own default location
    start = Path(env["XDG_DATA_HOME"]) / "nvim" / "site" / "pack" / "llama" / "start"
    start.mkdir(parents=True)
    (start / "llama.nvim").symlink_to(REPO)
    config = Path(env["XDG_CONFIG_HOME"]) / "nvim"
    config.mkdir()
    (config / "init.lua").write_text(
        f"vim.g.python3_host_prog = {json.dumps(sys.executable)}\n"
        f"vim.g.llama_config = {{ endpoint = {json.dumps(llama_server.infill_url)} }}\n"
        "vim.o.swapfile = false\n"
    )
    subprocess.run(
        [nvim_binary(), "--headless", "+UpdateRemotePlugins", "+qa!"],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
    )
    manifest = Path(env["XDG_DATA_HOME"]) / "nvim" / "rplugin.vim"
    assert "llama_nvim_plugin.py" in manifest.read_text()

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        nvim = pynvim.attach("child", argv=[nvim_binary(), "--embed", "--headless", "-i", "NONE"])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        ready = "return package.loaded['llama_nvim'] ~= nil and require('llama_nvim').is_ready()"
        wait_until(lambda: nvim.exec_lua(ready), timeout=30, what="the plugin to start")
        nvim.command("setlocal filetype=python")
        nvim.input("idef add(a, b):<CR>")
        type_slowly(nvim, "return ")
        ns = nvim.api.create_namespace("llama_nvim")
        wait_until(
            lambda: nvim.api.buf_get_extmarks(0, ns, 0, -1, {}), what="ghost text from the server"
        )
    finally:
        with contextlib.suppress(Exception):  # the child is gone once it quits
            nvim.command("qa!")
        nvim.close()
