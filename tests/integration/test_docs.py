"""The documentation matches the code: options, defaults, commands, and a working :help.

doc/llama_nvim.txt is read as text and checked against llama_nvim.config.Config
and the commands registered in llama_nvim/plugin.py; a real Neovim opens the
help and regenerates doc/tags to prove the shipped tags file is current.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llama_nvim.config import Config, FiletypeRules

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent.parent
DOC = REPO / "doc" / "llama_nvim.txt"
TAGS = REPO / "doc" / "tags"
PLUGIN = REPO / "llama_nvim" / "plugin.py"
LUA = REPO / "llama_nvim" / "lua" / "llama_nvim" / "init.lua"
README = REPO / "README.md"

OPTION_TAG = "*g:llama_config.{}*"
VIM_TYPES = {
    bool: "boolean",
    int: "number",
    float: "float",
    str: "string",
    tuple: "list",
    FiletypeRules: "dict",
}


def nvim_binary() -> str:
    """Neovim from $LLAMA_NVIM_NVIM, the test venv or PATH; fail (never skip) if absent."""
    explicit = os.environ.get("LLAMA_NVIM_NVIM")
    if explicit:
        return explicit
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("nvim", path=search)
    if found is None:
        pytest.fail("nvim not found; run .ci/run to install it or set LLAMA_NVIM_NVIM")
    return found


def run_nvim(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """A headless Neovim with no user config, no shada and no swap files."""
    return subprocess.run(
        [nvim_binary(), "--headless", "-u", "NONE", "-i", "NONE", "-n", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


def doc_text() -> str:
    return DOC.read_text("utf-8")


def vim_literal(value: object) -> str:
    """A default as the help file writes it: Vim's own notation."""
    if isinstance(value, bool):
        return "v:true" if value else "v:false"
    if isinstance(value, tuple):
        return json.dumps(list(value))
    if isinstance(value, FiletypeRules):
        return json.dumps(dict(value))
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def option_entry(text: str, name: str) -> str:
    """The help entry of one option: from its tag to the next option tag or section."""
    start = text.find(OPTION_TAG.format(name))
    assert start >= 0, f"option {name!r} has no {OPTION_TAG.format(name)} tag in {DOC.name}"
    rest = text[start + len(OPTION_TAG.format(name)) :]
    end = re.search(r"\*g:llama_config\.\w+\*|^[-=]{20,}$", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def registered_commands() -> list[str]:
    """The commands plugin.py registers, and those the Lua half creates when set up."""
    commands = re.findall(r'@pynvim\.command\(\s*"(\w+)"', PLUGIN.read_text("utf-8"))
    for path in sorted(LUA.parent.glob("*.lua")):
        commands += re.findall(r"nvim_create_user_command\('(\w+)'", path.read_text("utf-8"))
    return commands


def registered_functions() -> list[str]:
    return re.findall(r'@pynvim\.function\(\s*"(\w+)"', PLUGIN.read_text("utf-8"))


FIELDS = dataclasses.fields(Config)


@pytest.mark.parametrize("field", FIELDS, ids=[f.name for f in FIELDS])
def test_every_option_is_documented_with_its_type_and_default(
    field: dataclasses.Field[object],
) -> None:
    default = getattr(Config(), field.name)
    entry = option_entry(doc_text(), field.name)
    header = entry.strip().splitlines()[0]
    expected_type = VIM_TYPES[type(default)]
    literal = re.escape(vim_literal(default))
    pattern = rf"{re.escape(field.name)}\s+{expected_type}\s+Default: {literal}"
    assert re.fullmatch(pattern, header), (
        f"entry of {field.name} should start with '{field.name}  {expected_type}  "
        f"Default: {vim_literal(default)}', found {header!r}"
    )
    # The entry says what the option does, not only its default.
    assert len(entry.split()) > 8, f"entry of {field.name} has no explanation"


def test_own_options_are_marked_and_llama_vim_ones_are_not() -> None:
    text = doc_text()
    own_start = text.index("*llama_nvim-options-own*")
    for field in FIELDS:
        entry = option_entry(text, field.name)
        own = text.index(OPTION_TAG.format(field.name)) > own_start
        assert ("llama.nvim only" in entry) == own, field.name


def test_no_option_is_documented_that_does_not_exist() -> None:
    names = {f.name for f in FIELDS} | {"endpoint_fim"}  # llama.vim's alias, accepted
    mentioned = set(re.findall(r"g:llama_config\.(\w+)", doc_text()))
    if README.exists():
        mentioned |= set(re.findall(r"g:llama_config\.(\w+)", README.read_text("utf-8")))
    assert mentioned <= names, f"documented but not in Config: {sorted(mentioned - names)}"


def test_every_command_and_function_has_a_help_tag() -> None:
    commands = registered_commands()
    assert "LlamaEnable" in commands  # the pattern still finds the decorators
    text = doc_text()
    missing = [c for c in commands if f"*:{c}*" not in text]
    missing += [f for f in registered_functions() if f"*{f}()*" not in text]
    assert not missing, f"no help tag for {missing}"


def test_documented_commands_exist() -> None:
    commands = set(registered_commands())
    for path in (DOC, README):
        if path.exists():
            mentioned = set(re.findall(r":(Llama\w+)", path.read_text("utf-8")))
            assert mentioned <= commands, f"{path.name} names {sorted(mentioned - commands)}"


def test_documented_highlight_groups_and_lua_functions_exist() -> None:
    lua = LUA.read_text("utf-8")
    text = doc_text()
    # Groups are defined where they are drawn (init.lua, instruct_view.lua).
    all_lua = "".join(path.read_text("utf-8") for path in LUA.parent.glob("*.lua"))
    for group in re.findall(r"\*hl-(\w+)\*", text):
        assert f"'{group}'" in all_lua, f"highlight group {group} is not defined by the plugin"
    for name in re.findall(r"\*llama_nvim\.(\w+)\(\)\*", text):
        assert f"function M.{name}(" in lua, f"require('llama_nvim').{name}() does not exist"


def test_help_file_has_the_header_and_modeline_of_a_vim_help_file() -> None:
    lines = doc_text().splitlines()
    assert lines[0].startswith("*llama_nvim.txt*")
    assert lines[-1].strip() == "vim:tw=78:ts=8:ft=help:norl:"
    assert "*llama_nvim*" in doc_text()


@pytest.mark.parametrize(
    "subject",
    ["llama_nvim", "g:llama_config", "g:llama_config.endpoint", ":LlamaStatus", "hl-LlamaNvimHint"],
)
def test_help_opens_at_the_tag_in_a_real_neovim(subject: str) -> None:
    probe = (
        "lua io.stdout:write(vim.json.encode({ft = vim.bo.filetype, bt = vim.bo.buftype, "
        "name = vim.api.nvim_buf_get_name(0), line = vim.api.nvim_get_current_line()}))"
    )
    # -u NONE leaves filetype detection off; a user's Neovim has it on.
    result = run_nvim(
        "--cmd", "filetype on", "--cmd", f"set rtp^={REPO}",
        "-c", f"help {subject}", "-c", probe, "-c", "qa!",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["ft"], shown["bt"]) == ("help", "help")
    assert Path(shown["name"]).resolve() == DOC.resolve()
    assert f"*{subject}*" in shown["line"]


def outside_examples(text: str) -> str:
    """The help text without its example blocks (from a line ending in ">" to "<"),
    where Vim makes no links: model tokens such as <|file_sep|> are shown there."""
    kept: list[str] = []
    in_example = False
    for line in text.splitlines():
        if in_example and (line.startswith("<") or (line and not line[0].isspace())):
            in_example = False
            line = line[1:] if line.startswith("<") else line
        if not in_example:
            kept.append(line)
            in_example = re.search(r"(^|\s)>[a-z]*$", line) is not None
    return "\n".join(kept)


def test_every_link_in_the_help_leads_somewhere(tmp_path: Path) -> None:
    links = sorted(set(re.findall(r"\|([^|\s]+)\|", outside_examples(doc_text()))))
    assert "g:llama_config" in links
    probe = tmp_path / "links.lua"
    probe.write_text(
        f"local links = vim.json.decode({json.dumps(json.dumps(links))})\n"
        "local bad = {}\n"
        "for _, link in ipairs(links) do\n"
        "  if not pcall(vim.cmd.help, link) then bad[#bad + 1] = link end\n"
        "end\n"
        "io.stdout:write(vim.json.encode(bad))\n",
        "utf-8",
    )
    result = run_nvim("--cmd", f"set rtp^={REPO}", "-c", f"luafile {probe}", "-c", "qa!")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [], "links to no help tag"


def test_shipped_tags_file_is_up_to_date(tmp_path: Path) -> None:
    assert TAGS.exists(), "doc/tags is missing: run nvim --headless -u NONE -c 'helptags doc' -c q"
    copy = tmp_path / "doc"
    copy.mkdir()
    shutil.copy(DOC, copy / DOC.name)
    result = run_nvim("-c", "helptags doc", "-c", "qa!", cwd=tmp_path)
    # helptags reports duplicate tags as errors.
    assert result.returncode == 0, result.stderr
    assert not result.stderr.strip(), result.stderr
    assert (copy / "tags").read_text("utf-8") == TAGS.read_text("utf-8"), (
        "doc/tags is stale: run nvim --headless -u NONE -c 'helptags doc' -c q"
    )


def test_tags_file_is_not_ignored_by_git() -> None:
    ignored = (REPO / ".gitignore").read_text("utf-8").splitlines()
    assert "doc/tags" not in [line.strip() for line in ignored]
