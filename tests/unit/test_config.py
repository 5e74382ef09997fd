"""config.parse_config: llama.vim-compatible defaults, validation, merging."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from llama_nvim.config import DEFAULT_ENDPOINT, KEYMAP_OPTIONS, Config, parse_config

# llama.vim's g:llama_config defaults (autoload/llama.vim, s:default_config).
LLAMA_VIM_DEFAULTS: list[tuple[str, Any]] = [
    ("endpoint", "http://127.0.0.1:8012/infill"),
    ("api_key", ""),
    ("n_prefix", 256),
    ("n_suffix", 64),
    ("n_predict", 128),
    ("stop_strings", ()),
    ("t_max_prompt_ms", 500),
    ("t_max_predict_ms", 1000),
    ("show_info", 2),
    ("auto_fim", True),
    ("max_line_suffix", 8),
    ("max_cache_keys", 250),
    ("ring_n_chunks", 16),
    ("ring_chunk_size", 64),
    ("ring_scope", 1024),
    ("ring_update_ms", 1000),
    ("keymap_trigger", "<C-F>"),
    ("keymap_accept_full", "<Tab>"),
    ("keymap_accept_line", "<S-Tab>"),
    ("keymap_accept_word", "<C-B>"),
    ("enable_at_startup", True),
]


@pytest.mark.parametrize(("key", "expected"), LLAMA_VIM_DEFAULTS)
def test_defaults_match_llama_vim(key: str, expected: Any) -> None:
    assert getattr(Config(), key) == expected


def test_default_endpoint_constant_is_the_config_default() -> None:
    assert Config().endpoint == DEFAULT_ENDPOINT


@pytest.mark.parametrize("raw", [None, {}, []])
def test_missing_or_empty_config_gives_defaults_without_problems(raw: Any) -> None:
    config, problems = parse_config(raw)
    assert config == Config()
    assert problems == []


def test_valid_values_override_defaults_without_problems() -> None:
    raw = {
        "endpoint": "https://example.org:9000/infill",
        "api_key": "secret",
        "n_prefix": 10,
        "n_suffix": 0,
        "n_predict": 4096,
        "stop_strings": ["\n\n", "</s>"],
        "show_info": 0,
        "auto_fim": False,
        "keymap_trigger": "<C-G>",
        "enable_at_startup": False,
        "debounce_ms": 0,
        "timeout_ms": 100,
        "id_slot": -1,
        "disabled_filetypes": ("markdown", "text"),
        "max_line_bytes": 16,
    }
    config, problems = parse_config(raw)
    assert problems == []
    assert config.endpoint == "https://example.org:9000/infill"
    assert config.api_key == "secret"
    assert config.n_prefix == 10
    assert config.n_suffix == 0
    assert config.n_predict == 4096
    assert config.stop_strings == ("\n\n", "</s>")
    assert config.show_info == 0
    assert config.auto_fim is False
    assert config.keymap_trigger == "<C-G>"
    assert config.enable_at_startup is False
    assert config.debounce_ms == 0
    assert config.timeout_ms == 100
    assert config.disabled_filetypes == ("markdown", "text")
    assert config.max_line_bytes == 16
    # Untouched keys keep their defaults.
    assert config.ring_scope == Config().ring_scope


def test_list_options_become_tuples() -> None:
    config, _ = parse_config({"stop_strings": ["a"], "disabled_filetypes": ["b"]})
    assert config.stop_strings == ("a",)
    assert config.disabled_filetypes == ("b",)
    # Frozen config: hashable, so no mutable list may hide inside.
    hash(config)


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        # integers: wrong type, float, bool, out of range
        ("n_prefix", "256"),
        ("n_prefix", 1.5),
        ("n_prefix", True),
        ("n_prefix", -1),
        ("n_prefix", 100_001),
        ("n_suffix", None),
        ("n_predict", 0),
        ("n_predict", 4097),
        ("t_max_prompt_ms", -5),
        ("show_info", 3),
        ("show_info", -1),
        ("ring_chunk_size", 2),
        ("ring_update_ms", 9),
        ("debounce_ms", 5001),
        ("timeout_ms", 99),
        ("id_slot", -2),
        ("max_line_bytes", 15),
        # booleans
        ("auto_fim", 2),
        ("auto_fim", "yes"),
        ("enable_at_startup", None),
        ("enable_at_startup", -1),
        # strings
        ("api_key", 123),
        ("keymap_trigger", None),
        ("keymap_accept_full", ["<Tab>"]),
        # lists of strings
        ("stop_strings", "\n"),
        ("stop_strings", ["ok", 1]),
        ("disabled_filetypes", {"markdown": 1}),
        # numbers
        ("ring_similarity", 1.5),
        ("ring_similarity", "0.5"),
        ("ring_similarity", True),
        # URLs
        ("endpoint", "127.0.0.1:8012/infill"),
        ("endpoint", "ftp://127.0.0.1/infill"),
        ("endpoint", ""),
        ("endpoint", 8012),
    ],
)
def test_bad_value_gives_one_problem_naming_key_and_keeps_default(key: str, bad: Any) -> None:
    config, problems = parse_config({key: bad})
    assert config == Config()
    assert len(problems) == 1
    problem = problems[0]
    assert problem.key == key
    assert problem.is_error
    assert f"g:llama_config.{key}" in problem.message
    assert repr(getattr(Config(), key)) in problem.message


def test_bad_value_message_says_what_was_expected_and_got() -> None:
    _, problems = parse_config({"n_predict": 0})
    assert problems[0].message == (
        "g:llama_config.n_predict must be an integer 1..4096, got 0; using the default 128"
    )


def test_bad_value_does_not_discard_other_good_values() -> None:
    config, problems = parse_config({"n_prefix": "lots", "n_suffix": 7, "auto_fim": 0})
    assert [p.key for p in problems] == ["n_prefix"]
    assert config.n_prefix == 256
    assert config.n_suffix == 7
    assert config.auto_fim is False


def test_each_bad_key_gives_its_own_problem() -> None:
    _, problems = parse_config({"n_prefix": "x", "show_info": 9, "bogus": 1})
    assert sorted(p.key for p in problems) == ["bogus", "n_prefix", "show_info"]


def test_long_bad_value_is_abbreviated_in_the_message() -> None:
    _, problems = parse_config({"n_prefix": "x" * 500})
    message = problems[0].message
    assert "x" * 60 not in message
    assert "..." in message
    assert len(message) < 200


@pytest.mark.parametrize("key", ["auto_fim", "enable_at_startup"])
@pytest.mark.parametrize(
    ("value", "expected"), [(1, True), (0, False), (True, True), (False, False)]
)
def test_one_and_zero_accepted_as_booleans(key: str, value: Any, expected: bool) -> None:
    config, problems = parse_config({key: value})
    assert problems == []
    assert getattr(config, key) is expected


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("show_info", 0),
        ("show_info", 2),
        ("n_predict", 1),
        ("n_predict", 4096),
        ("id_slot", -1),
        ("id_slot", 3),
        ("timeout_ms", 100),
        ("timeout_ms", 600_000),
        ("ring_chunk_size", 3),
        ("debounce_ms", 0),
        ("debounce_ms", 5000),
    ],
)
def test_range_bounds_are_inclusive(key: str, value: int) -> None:
    config, problems = parse_config({key: value})
    assert problems == []
    assert getattr(config, key) == value


def test_unknown_key_warns_and_keeps_defaults() -> None:
    config, problems = parse_config({"n_prefx": 10})
    assert config == Config()
    assert len(problems) == 1
    assert problems[0].key == "n_prefx"
    assert not problems[0].is_error
    assert "unknown option g:llama_config.n_prefx" in problems[0].message


def test_endpoint_fim_alias_sets_endpoint() -> None:
    config, problems = parse_config({"endpoint_fim": "http://10.0.0.2:8080/infill"})
    assert problems == []
    assert config.endpoint == "http://10.0.0.2:8080/infill"


def test_bad_endpoint_fim_is_reported_under_the_name_the_user_wrote() -> None:
    config, problems = parse_config({"endpoint_fim": "localhost:8012"})
    assert config.endpoint == DEFAULT_ENDPOINT
    assert len(problems) == 1
    assert problems[0].key == "endpoint"
    assert "g:llama_config.endpoint_fim" in problems[0].message


def test_endpoint_trailing_slash_is_removed() -> None:
    config, _ = parse_config({"endpoint": "http://127.0.0.1:8012/infill/"})
    assert config.endpoint == "http://127.0.0.1:8012/infill"


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://",  # no host at all (becomes "http:")
        "http://[::1/infill",  # unbalanced IPv6 bracket: InfillClient() raises ValueError
        "http://127.0.0.1:80a/infill",  # port typo: httpx.InvalidURL on every request
        "http://127.0.0.1:99999/infill",  # port out of range
    ],
)
def test_malformed_endpoint_url_is_reported_and_default_kept(endpoint: str) -> None:
    config, problems = parse_config({"endpoint": endpoint})
    assert config.endpoint == DEFAULT_ENDPOINT
    assert [p.key for p in problems] == ["endpoint"]


@pytest.mark.parametrize("raw", ["{'n_prefix': 1}", 1, ["n_prefix"], True])
def test_non_dict_config_gives_one_problem_and_defaults(raw: Any) -> None:
    config, problems = parse_config(raw)
    assert config == Config()
    assert len(problems) == 1
    assert problems[0].key == "g:llama_config"
    assert "must be a dictionary" in problems[0].message


def test_every_option_can_be_set_to_its_own_default() -> None:
    defaults = Config()
    raw = {f.name: getattr(defaults, f.name) for f in dataclasses.fields(Config)}
    config, problems = parse_config(raw)
    assert problems == []
    assert config == defaults


def test_keymap_options_name_config_fields() -> None:
    names = {f.name for f in dataclasses.fields(Config)}
    assert set(KEYMAP_OPTIONS) <= names
    assert all(name.startswith("keymap_") for name in KEYMAP_OPTIONS)
