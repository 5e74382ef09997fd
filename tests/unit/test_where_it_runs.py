"""Where suggestions run: the filetypes table, disabled_filetypes, the buffer's
own switch, secret files and .llamaignore, decided by privacy.may_read."""

from __future__ import annotations

from pathlib import Path

import pytest

from llama_nvim.config import Config, FiletypeRules, parse_config
from llama_nvim.llamaignore import IGNORE_FILE, LlamaIgnore
from llama_nvim.privacy import Privacy, filetype_enabled, may_read

ALL_BUT_MARKDOWN = {"*": True, "markdown": False}
ONLY_PYTHON = {"*": False, "python": True}


@pytest.mark.parametrize(
    ("filetype", "filetypes", "disabled", "enabled"),
    [
        # no rules: everything on
        ("python", {}, (), True),
        ("", {}, (), True),
        # the filetype's own entry, then "*"
        ("markdown", ALL_BUT_MARKDOWN, (), False),
        ("python", ALL_BUT_MARKDOWN, (), True),
        ("python", ONLY_PYTHON, (), True),
        ("lua", ONLY_PYTHON, (), False),
        ("", ONLY_PYTHON, (), False),
        # an own entry beats "*" whichever way
        ("markdown", {"*": False, "markdown": True}, (), True),
        # no "*": filetypes without an entry stay on
        ("lua", {"markdown": False}, (), True),
        # disabled_filetypes always disables, even against an explicit true
        ("python", {}, ("python",), False),
        ("python", {"python": True}, ("python",), False),
        ("python", {"*": True}, ("python",), False),
        ("lua", {}, ("python",), True),
    ],
)
def test_filetype_precedence(
    filetype: str, filetypes: dict[str, bool], disabled: tuple[str, ...], enabled: bool
) -> None:
    assert filetype_enabled(filetype, filetypes, disabled) is enabled


@pytest.mark.parametrize(
    ("filetypes", "disabled", "buffer_enabled", "enabled"),
    [
        ({}, (), False, False),
        ({}, (), True, True),
        ({"python": False}, (), True, True),
        ({"*": False}, (), True, True),
        ({"python": True}, (), False, False),
        ({}, ("python",), True, False),
        ({"python": False}, (), None, False),
    ],
)
def test_the_buffer_switch_beats_the_table_but_not_disabled_filetypes(
    filetypes: dict[str, bool], disabled: tuple[str, ...], buffer_enabled: bool, enabled: bool
) -> None:
    assert filetype_enabled("python", filetypes, disabled, buffer_enabled) is enabled


def privacy_for(raw: dict[str, object]) -> Privacy:
    config, problems = parse_config(raw)
    assert problems == []
    return Privacy.from_config(config)


def test_privacy_from_config_applies_the_filetypes_table() -> None:
    privacy = privacy_for({"filetypes": ALL_BUT_MARKDOWN})
    assert privacy.excluded("/p/notes.md", "markdown")
    assert not privacy.excluded("/p/main.py", "python")
    assert not may_read("/p/notes.md", "markdown", project="/p", privacy=privacy)
    assert may_read("/p/main.py", "python", project="/p", privacy=privacy)


def test_privacy_from_config_applies_disabled_filetypes_and_exclude_globs() -> None:
    privacy = privacy_for({"disabled_filetypes": ["text"], "exclude_globs": ["*.secret"]})
    assert privacy.excluded("/p/a.txt", "text")
    assert privacy.excluded("/p/deploy.secret", "yaml")
    assert not privacy.excluded("/p/a.py", "python")


@pytest.mark.parametrize("buffer_enabled", [None, True])
def test_secret_files_stay_private_whatever_the_switches_say(
    buffer_enabled: bool | None,
) -> None:
    privacy = privacy_for({"filetypes": {"*": True, "sh": True}})
    for name in ("/p/.env", "/home/u/.ssh/config", "/p/key.pem"):
        assert not may_read(
            name, "sh", project="/p", privacy=privacy, buffer_enabled=buffer_enabled
        )


def test_default_config_reads_ordinary_files_of_any_filetype() -> None:
    privacy = Privacy.from_config(Config())
    for filetype in ("python", "markdown", "gitcommit", ""):
        assert may_read("/p/x", filetype, project="/p", privacy=privacy)


def test_llamaignore_files_are_treated_like_secret_files(tmp_path: Path) -> None:
    (tmp_path / IGNORE_FILE).write_text("/private/\n*.sql\n", "utf-8")
    privacy = Privacy.from_config(Config())
    root = str(tmp_path)
    assert privacy.secret(f"{root}/private/notes.py", root)
    assert privacy.excluded(f"{root}/db/dump.sql", "sql", root)
    assert not may_read(
        f"{root}/db/dump.sql", "sql", project=root, privacy=privacy, buffer_enabled=True
    )
    assert may_read(f"{root}/src/main.py", "python", project=root, privacy=privacy)


def test_llamaignore_is_only_read_when_the_project_is_known(tmp_path: Path) -> None:
    (tmp_path / IGNORE_FILE).write_text("*\n", "utf-8")
    privacy = Privacy.from_config(Config())
    assert not privacy.excluded(f"{tmp_path}/main.py", "python")
    assert privacy.excluded(f"{tmp_path}/main.py", "python", str(tmp_path))


def test_a_changed_llamaignore_changes_the_answer(tmp_path: Path) -> None:
    ignore_file = tmp_path / IGNORE_FILE
    ignore_file.write_text("*.sql\n", "utf-8")
    privacy = Privacy(llamaignore=LlamaIgnore())
    root = str(tmp_path)
    assert privacy.excluded(f"{root}/a.sql", "sql", root)
    ignore_file.write_text("# nothing private any more\n", "utf-8")
    assert not privacy.excluded(f"{root}/a.sql", "sql", root)


def test_privacy_without_llamaignore_reads_no_file(tmp_path: Path) -> None:
    (tmp_path / IGNORE_FILE).write_text("*\n", "utf-8")
    privacy = Privacy()
    assert privacy.llamaignore is None
    assert not privacy.excluded(f"{tmp_path}/main.py", "python", str(tmp_path))


def test_filetype_rules_from_the_config_reach_the_decision() -> None:
    config = Config(filetypes=FiletypeRules(ONLY_PYTHON))
    privacy = Privacy.from_config(config)
    assert privacy.filetype_enabled("python")
    assert not privacy.filetype_enabled("lua")
    assert privacy.filetype_enabled("lua", buffer_enabled=True)


def test_excluded_takes_the_buffer_switch_too() -> None:
    privacy = Privacy(filetypes={"*": False})
    assert privacy.excluded("/p/a.py", "python")
    assert not privacy.excluded("/p/a.py", "python", "/p", buffer_enabled=True)
    assert privacy.excluded("/p/.env", "sh", "/p", buffer_enabled=True)
