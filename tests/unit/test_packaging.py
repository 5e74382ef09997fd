"""A pip-installed copy ships the Lua half: pyproject's package-data covers every Lua file."""

from __future__ import annotations

import json
import re
from pathlib import Path

from llama_nvim.plugin import LUA_SOURCE, RUNTIME_DIR

REPO = Path(__file__).resolve().parent.parent.parent


def test_the_runtime_folder_is_found_from_the_package_itself() -> None:
    import llama_nvim

    assert Path(llama_nvim.__file__).parent == RUNTIME_DIR
    assert (LUA_SOURCE / "init.lua").is_file()
    assert (LUA_SOURCE / "health.lua").is_file()


def test_package_data_ships_every_lua_file() -> None:
    # Read by hand: tomllib is not in Python 3.10, which the plugin supports.
    pyproject = (REPO / "pyproject.toml").read_text("utf-8")
    section = pyproject.split("[tool.setuptools.package-data]", 1)[1]
    match = re.search(r"^llama_nvim = (\[.*\])$", section, re.MULTILINE)
    assert match, "no package-data for llama_nvim"
    patterns = json.loads(match.group(1))
    # setuptools globs package-data patterns relative to the package folder.
    shipped = {path for pattern in patterns for path in RUNTIME_DIR.glob(pattern)}
    lua_files = set(RUNTIME_DIR.rglob("*.lua"))
    assert RUNTIME_DIR / "lua" / "llama_nvim" / "init.lua" in lua_files
    unshipped = sorted(str(path.relative_to(RUNTIME_DIR)) for path in lua_files - shipped)
    assert not unshipped, f"not in package-data: {unshipped}"
