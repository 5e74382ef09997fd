"""FIM prompts built from templates: each preset, custom tables, repository-level context."""

from __future__ import annotations

from typing import Any

import pytest

from llama_nvim.config import Config, parse_config
from llama_nvim.fim_templates import PRESETS, FimTemplate, TemplateError, parse_template, resolve
from llama_nvim.protocol import ExtraChunk

PREFIX = "def add(a, b):\n    return "
SUFFIX = "\n\nprint(add(1, 2))\n"
CHUNKS = [ExtraChunk("util.py", "def sub(a, b):\n    return a - b\n"), ExtraChunk("m.py", "X = 1")]
DEEPSEEK = (
    "<\uff5cfim\u2581begin\uff5c>",
    "<\uff5cfim\u2581hole\uff5c>",
    "<\uff5cfim\u2581end\uff5c>",
)


def prompt(name: str, chunks: list[ExtraChunk] | None = None) -> str:
    return PRESETS[name].prompt(PREFIX, SUFFIX, chunks or [], "src/calc.py", "calc")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("qwen2.5-coder", f"<|fim_prefix|>{PREFIX}<|fim_suffix|>{SUFFIX}<|fim_middle|>"),
        ("starcoder2", f"<fim_prefix>{PREFIX}<fim_suffix>{SUFFIX}<fim_middle>"),
        ("codellama", f"<PRE> {PREFIX} <SUF>{SUFFIX} <MID>"),
        ("deepseek-coder", f"{DEEPSEEK[0]}{PREFIX}{DEEPSEEK[1]}{SUFFIX}{DEEPSEEK[2]}"),
        ("codestral", f"[SUFFIX]{SUFFIX}[PREFIX] {PREFIX}"),
    ],
)
def test_each_preset_spells_the_hole_in_its_models_tokens(name: str, expected: str) -> None:
    assert prompt(name) == expected


def test_qwen_folds_the_chunks_in_as_files_of_the_repository_before_the_current_file() -> None:
    assert prompt("qwen2.5-coder", CHUNKS) == (
        "<|repo_name|>calc\n"
        "<|file_sep|>util.py\ndef sub(a, b):\n    return a - b\n"
        "<|file_sep|>m.py\nX = 1\n"
        f"<|file_sep|>src/calc.py\n<|fim_prefix|>{PREFIX}<|fim_suffix|>{SUFFIX}<|fim_middle|>"
    )


def test_starcoder2_puts_the_current_files_path_after_the_prefix_token() -> None:
    assert prompt("starcoder2", CHUNKS) == (
        "<repo_name>calc"
        "<file_sep>util.py\ndef sub(a, b):\n    return a - b\n"
        "<file_sep>m.py\nX = 1\n"
        f"<file_sep><fim_prefix>src/calc.py\n{PREFIX}<fim_suffix>{SUFFIX}<fim_middle>"
    )


@pytest.mark.parametrize("name", ["codellama", "deepseek-coder", "codestral"])
def test_a_template_without_a_file_separator_leaves_the_chunks_out(name: str) -> None:
    assert prompt(name, CHUNKS) == prompt(name)


def test_the_chunks_come_first_so_the_prompt_start_stays_put_as_the_user_types() -> None:
    before = prompt("qwen2.5-coder", CHUNKS)
    after = PRESETS["qwen2.5-coder"].prompt(PREFIX + "a", SUFFIX, CHUNKS, "src/calc.py", "calc")
    stable = before.index("<|fim_prefix|>") + len("<|fim_prefix|>") + len(PREFIX)
    assert after[:stable] == before[:stable]


def test_stop_strings_hold_the_end_tokens_and_the_templates_own_tokens() -> None:
    stops = PRESETS["qwen2.5-coder"].stop_strings
    assert stops[:2] == ("<|endoftext|>", "<|fim_pad|>")
    assert {"<|fim_prefix|>", "<|fim_suffix|>", "<|file_sep|>", "<|repo_name|>"} <= set(stops)
    assert PRESETS["codellama"].stop_strings == ("<EOT>", "<PRE>", "<SUF>", "<MID>")
    assert "" not in PRESETS["codestral"].stop_strings


def test_a_custom_table_becomes_a_template_with_a_file_separator() -> None:
    table = {"prefix": "<P>", "suffix": "<S>", "middle": "<M>", "file_sep": "<F>", "stop": ["<E>"]}
    template = parse_template(table)
    assert isinstance(template, FimTemplate)
    assert (
        template.prompt("a", "b", CHUNKS[1:], "x.py", "r") == "<F>m.py\nX = 1\n<F>x.py\n<P>a<S>b<M>"
    )
    assert template.prompt("a", "b", [], "x.py", "r") == "<P>a<S>b<M>"
    assert template.stop_strings == ("<E>", "<P>", "<S>", "<M>", "<F>")


def test_a_custom_table_with_a_repository_token_and_suffix_first() -> None:
    table = {"prefix": "<P>", "suffix": "<S>", "middle": "", "file_sep": "<F>", "repo_name": "<R>"}
    template = parse_template({**table, "suffix_first": True})
    assert isinstance(template, FimTemplate)
    assert (
        template.prompt("a", "b", CHUNKS[1:], "x.py", "r")
        == "<R>r\n<F>m.py\nX = 1\n<F>x.py\n<S>b<P>a"
    )


@pytest.mark.parametrize(
    "value",
    [
        "qwen",
        "",
        {"prefix": "<P>"},
        {"prefix": "<P>", "suffix": "<S>", "colour": "red"},
        {"prefix": "<P>", "suffix": 3},
        {"prefix": "<P>", "suffix": "<S>", "stop": "<E>"},
        {"prefix": "<P>", "suffix": "<S>", "suffix_first": "yes"},
        ["<P>", "<S>"],
    ],
)
def test_a_bad_template_value_is_refused(value: Any) -> None:
    with pytest.raises(TemplateError):
        parse_template(value)


def test_names_are_kept_and_auto_resolves_to_qwen() -> None:
    assert parse_template("starcoder2") == "starcoder2"
    assert resolve("auto") is PRESETS["qwen2.5-coder"]
    assert resolve("codestral") is PRESETS["codestral"]


def test_config_takes_a_custom_table_and_stays_hashable() -> None:
    config, problems = parse_config({"fim_template": {"prefix": "<P>", "suffix": "<S>"}})
    assert problems == []
    assert isinstance(config.fim_template, FimTemplate)
    assert hash(config) == hash(
        parse_config({"fim_template": {"prefix": "<P>", "suffix": "<S>"}})[0]
    )


def test_config_reports_a_bad_template_and_a_bad_api_and_keeps_the_defaults() -> None:
    config, problems = parse_config({"fim_template": "gpt", "fim_api": "grpc"})
    assert (config.fim_template, config.fim_api) == (Config().fim_template, "auto")
    assert {p.key for p in problems} == {"fim_template", "fim_api"}
    assert all(p.is_error for p in problems)
    assert "'qwen2.5-coder'" in next(p.message for p in problems if p.key == "fim_template")
