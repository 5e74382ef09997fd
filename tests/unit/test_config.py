"""config.parse_config: llama.vim-compatible defaults, validation, merging."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from llama_nvim.config import (
    ALIASES,
    DEFAULT_ENDPOINT,
    KEYMAP_OPTIONS,
    Config,
    FiletypeRules,
    parse_config,
)

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
        "hide_during_completion": False,
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
    assert config.hide_during_completion is False
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
        ("hide_during_completion", "no"),
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


# -- every llama.vim option name --------------------------------------------------------

# llama.vim's s:default_config today (autoload/llama.vim), every key with its default.
LLAMA_VIM_CONFIG: dict[str, Any] = {
    "endpoint_fim": "http://127.0.0.1:8012/infill",
    "endpoint_inst": "http://127.0.0.1:8012/v1/chat/completions",
    "model_fim": "",
    "model_inst": "",
    "api_key": "",
    "n_prefix": 256,
    "n_suffix": 64,
    "n_predict": 128,
    "stop_strings": [],
    "t_max_prompt_ms": 500,
    "t_max_predict_ms": 1000,
    "show_info": 2,
    "auto_fim": True,
    "max_line_suffix": 8,
    "max_cache_keys": 250,
    "ring_n_chunks": 16,
    "ring_chunk_size": 64,
    "ring_scope": 1024,
    "ring_update_ms": 1000,
    "keymap_fim_trigger": "<leader>llf",
    "keymap_fim_accept_full": "<Tab>",
    "keymap_fim_accept_line": "<S-Tab>",
    "keymap_fim_accept_word": "<leader>ll]",
    "keymap_inst_trigger": "<leader>lli",
    "keymap_inst_rerun": "<leader>llr",
    "keymap_inst_continue": "<leader>llc",
    "keymap_inst_accept": "<Tab>",
    "keymap_inst_cancel": "<Esc>",
    "keymap_debug_toggle": "<leader>lld",
    "enable_at_startup": True,
}

# Names llama.vim renamed (its s:renames), still found in older configs.
LLAMA_VIM_OLD_NAMES = {
    "endpoint": "endpoint_fim",
    "model": "model_fim",
    "keymap_trigger": "keymap_fim_trigger",
    "keymap_accept_full": "keymap_fim_accept_full",
    "keymap_accept_line": "keymap_fim_accept_line",
    "keymap_accept_word": "keymap_fim_accept_word",
    "keymap_debug": "keymap_debug_toggle",
}

# Where each llama.vim name lands here.
LLAMA_VIM_FIELD = {
    "endpoint_fim": "endpoint",
    "keymap_fim_trigger": "keymap_trigger",
    "keymap_fim_accept_full": "keymap_accept_full",
    "keymap_fim_accept_line": "keymap_accept_line",
    "keymap_fim_accept_word": "keymap_accept_word",
}


def test_a_llama_vim_config_with_every_option_name_parses_without_problems() -> None:
    config, problems = parse_config(LLAMA_VIM_CONFIG)
    assert problems == []
    assert config.keymap_trigger == "<leader>llf"
    assert config.keymap_accept_word == "<leader>ll]"
    assert config.endpoint_inst == "http://127.0.0.1:8012/v1/chat/completions"
    assert config.keymap_inst_cancel == "<Esc>"


def test_llama_vim_defaults_of_the_options_it_added_later_are_ours() -> None:
    for name, value in LLAMA_VIM_CONFIG.items():
        if name in LLAMA_VIM_FIELD or name == "stop_strings":
            continue  # our key defaults differ on purpose (<C-F>, <C-B>); () is []
        assert getattr(Config(), name) == value, name


def distinct_value(name: str, value: Any) -> Any:
    """A valid value for the option, unlike its default."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value - 1  # every llama.vim number option may be one lower
    if isinstance(value, list):
        return ["<EOT>"]
    if name.startswith("endpoint"):
        return value.replace("8012", "9123")
    return f"<C-{name[-1].upper()}>" if name.startswith("keymap") else f"value-of-{name}"


@pytest.mark.parametrize("name", sorted(LLAMA_VIM_CONFIG))
def test_each_llama_vim_option_is_honoured_under_its_llama_vim_name(name: str) -> None:
    value = distinct_value(name, LLAMA_VIM_CONFIG[name])
    config, problems = parse_config({name: value})
    assert problems == []
    expected = tuple(value) if isinstance(value, list) else value
    assert getattr(config, LLAMA_VIM_FIELD.get(name, name)) == expected
    assert getattr(config, LLAMA_VIM_FIELD.get(name, name)) != getattr(
        Config(), LLAMA_VIM_FIELD.get(name, name)
    )


@pytest.mark.parametrize(("old", "new"), sorted(LLAMA_VIM_OLD_NAMES.items()))
def test_llama_vim_old_names_set_the_same_option_as_its_new_names(old: str, new: str) -> None:
    value = distinct_value(new, LLAMA_VIM_CONFIG[new])
    from_old, problems_old = parse_config({old: value})
    from_new, problems_new = parse_config({new: value})
    assert problems_old == problems_new == []
    assert from_old == from_new != Config()


@pytest.mark.parametrize(
    ("alias", "own"),
    [
        ("endpoint_fim", "endpoint"),
        ("model", "model_fim"),
        ("keymap_fim_trigger", "keymap_trigger"),
        ("keymap_fim_accept_full", "keymap_accept_full"),
        ("keymap_fim_accept_line", "keymap_accept_line"),
        ("keymap_fim_accept_word", "keymap_accept_word"),
        ("keymap_debug", "keymap_debug_toggle"),
    ],
)
def test_when_alias_and_own_name_differ_the_own_name_wins_with_a_warning(
    alias: str, own: str
) -> None:
    own_value = "http://10.0.0.1:1/infill" if own == "endpoint" else "<C-Y>"
    alias_value = "http://10.0.0.2:2/infill" if own == "endpoint" else "<C-Z>"
    for raw in ({alias: alias_value, own: own_value}, {own: own_value, alias: alias_value}):
        config, problems = parse_config(raw)
        assert getattr(config, own) == own_value
        assert len(problems) == 1
        assert not problems[0].is_error
        assert problems[0].key == own
        assert f"g:llama_config.{alias} and g:llama_config.{own} are both set" in (
            problems[0].message
        )


def test_alias_and_own_name_with_the_same_value_give_no_warning() -> None:
    config, problems = parse_config({"keymap_trigger": "<C-G>", "keymap_fim_trigger": "<C-G>"})
    assert problems == []
    assert config.keymap_trigger == "<C-G>"


def test_a_bad_own_value_keeps_the_default_even_beside_a_good_alias() -> None:
    config, problems = parse_config({"endpoint": "nope", "endpoint_fim": "http://h:1/infill"})
    assert config.endpoint == DEFAULT_ENDPOINT
    assert sorted((p.key, p.is_error) for p in problems) == [
        ("endpoint", False),
        ("endpoint", True),
    ]


def test_aliases_name_existing_options_and_are_not_options_themselves() -> None:
    names = {f.name for f in dataclasses.fields(Config)}
    assert set(ALIASES.values()) <= names
    assert not set(ALIASES) & names


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("endpoint_inst", "localhost:8012/v1/chat/completions"),
        ("model_fim", 3),
        ("model_inst", ["qwen"]),
        ("keymap_inst_trigger", None),
        ("keymap_debug_toggle", 1),
    ],
)
def test_new_llama_vim_options_are_validated(key: str, bad: Any) -> None:
    config, problems = parse_config({key: bad})
    assert config == Config()
    assert [(p.key, p.is_error) for p in problems] == [(key, True)]


# -- the filetypes table -------------------------------------------------------------------


def test_filetypes_table_is_kept_as_given() -> None:
    config, problems = parse_config({"filetypes": {"*": False, "python": True, "lua": 1}})
    assert problems == []
    assert dict(config.filetypes) == {"*": False, "python": True, "lua": True}
    hash(config)


@pytest.mark.parametrize("empty", [{}, []])
def test_empty_filetypes_table_means_every_filetype(empty: Any) -> None:
    config, problems = parse_config({"filetypes": empty})
    assert problems == []
    assert config.filetypes == Config().filetypes == {}


@pytest.mark.parametrize(
    "bad",
    [["markdown"], {"markdown": "no"}, {"markdown": 2}, {"": True}, {1: True}, "markdown"],
)
def test_bad_filetypes_table_keeps_the_default(bad: Any) -> None:
    config, problems = parse_config({"filetypes": bad})
    assert config.filetypes == {}
    assert [p.key for p in problems] == ["filetypes"]
    assert "dictionary of filetype names" in problems[0].message


def test_filetype_rules_compare_and_hash_by_content() -> None:
    a = FiletypeRules({"b": True, "a": False})
    b = FiletypeRules([("a", False), ("b", True)])
    assert a == b == {"a": False, "b": True}
    assert hash(a) == hash(b)
    assert list(a) == ["a", "b"]
    assert a != FiletypeRules({"a": True, "b": True})
