"""User configuration: defaults, validation and merging of ``g:llama_config``.

Option names and defaults follow llama.vim where it has them, so an existing
``g:llama_config`` keeps working. A bad value never stops the plugin: it is
reported once, naming the key, and the default is used instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from . import fim_templates as fim

DEFAULT_ENDPOINT = "http://127.0.0.1:8012/infill"
DEFAULT_ENDPOINT_INST = "http://127.0.0.1:8012/v1/chat/completions"

# Other names llama.vim has used for an option, old and new, so that any of its
# configs works. When a config holds both an alias and the option's own name,
# the own name wins (with a warning if the two values differ).
ALIASES = {
    "endpoint_fim": "endpoint",
    "model": "model_fim",
    "keymap_fim_trigger": "keymap_trigger",
    "keymap_fim_accept_full": "keymap_accept_full",
    "keymap_fim_accept_line": "keymap_accept_line",
    "keymap_fim_accept_word": "keymap_accept_word",
    "keymap_debug": "keymap_debug_toggle",
}


class FiletypeRules(Mapping[str, bool]):
    """An immutable ``filetype -> enabled`` table (``"*"``: every other filetype).

    Hashable, so that a Config holding one stays hashable.
    """

    __slots__ = ("_rules",)

    def __init__(self, rules: Mapping[str, bool] | Iterable[tuple[str, bool]] = ()) -> None:
        self._rules = dict(sorted(dict(rules).items()))

    def __getitem__(self, filetype: str) -> bool:
        return self._rules[filetype]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def __hash__(self) -> int:
        return hash(tuple(self._rules.items()))

    def __repr__(self) -> str:
        return repr(self._rules)


# The default: no entry, so every filetype is enabled.
ALL_FILETYPES = FiletypeRules()


@dataclass(frozen=True)
class Config:
    """Validated settings; every field has the default a new user gets."""

    # -- llama.vim's options -------------------------------------------------
    endpoint: str = DEFAULT_ENDPOINT
    api_key: str = ""
    n_prefix: int = 256
    n_suffix: int = 64
    n_predict: int = 128
    stop_strings: tuple[str, ...] = ()
    t_max_prompt_ms: int = 500
    t_max_predict_ms: int = 1000
    show_info: int = 2
    auto_fim: bool = True
    max_line_suffix: int = 8
    max_cache_keys: int = 250
    ring_n_chunks: int = 16
    ring_chunk_size: int = 64
    ring_scope: int = 1024
    ring_update_ms: int = 1000
    keymap_trigger: str = "<C-F>"
    keymap_accept_full: str = "<Tab>"
    keymap_accept_line: str = "<S-Tab>"
    keymap_accept_word: str = "<C-B>"
    # llama.nvim's own keys (copilot.vim's defaults): other suggestions for the same place.
    keymap_next: str = "<M-]>"
    keymap_prev: str = "<M-[>"
    enable_at_startup: bool = True
    # Sent as "model" in each request when set (llama-swap, router-mode servers).
    model_fim: str = ""
    # llama.vim's key for its debug pane: here a normal-mode key for :LlamaDebugToggle.
    keymap_debug_toggle: str = "<leader>lld"
    # Instruction editing (llama.vim's names and defaults): instruct.py, instruct.lua.
    endpoint_inst: str = DEFAULT_ENDPOINT_INST
    model_inst: str = ""
    keymap_inst_trigger: str = "<leader>lli"
    keymap_inst_rerun: str = "<leader>llr"
    keymap_inst_continue: str = "<leader>llc"
    keymap_inst_accept: str = "<Tab>"
    keymap_inst_cancel: str = "<Esc>"
    # -- llama.nvim's own ------------------------------------------------------
    # Wait this long after the last keystroke before asking the server; a cache
    # hit or type-through is shown at once regardless. Short, because a request
    # made stale by the next key is cancelled (and stops the server's work).
    debounce_ms: int = 10
    # Predict-time limit of the first request at a new position: a short answer
    # now beats a long one later (the server stops at the next newline once over).
    t_max_predict_ms_first: int = 250
    # Whole-request deadline; a server that dribbles bytes cannot hold us longer.
    timeout_ms: int = 5000
    # Server slot to pin (-1: let the server pick the most similar slot).
    id_slot: int = -1
    # Filetypes for which no suggestion is ever requested and nothing is gathered.
    disabled_filetypes: tuple[str, ...] = ()
    # copilot.lua-style allow/deny table: filetype (or "*") -> enabled.
    filetypes: FiletypeRules = ALL_FILETYPES
    # Extra file globs never sent to the server (added to the built-in secrets list).
    exclude_globs: tuple[str, ...] = ()
    # Ring chunks more alike than this (word Jaccard) replace one another.
    ring_similarity: float = 0.9
    # Most server tokens of the ring's extra context; -1: as cheap (context_cost.py), 0: all.
    ring_budget_cap: int = -1
    # The server's -b/--batch-size: what it reserves of n_ctx besides the extra context.
    n_batch: int = 1024
    # Lines below the cursor sent as the FIM suffix proper. The server recomputes
    # the FIM suffix on every keystroke (it comes after the typed text), so the
    # rest of the n_suffix lines go last in the extra context, where its cache
    # keeps them. A value >= n_suffix sends them all as the FIM suffix.
    n_suffix_fim: int = 3
    # After a suggestion shows, fetch the one for after accepting it (cache only).
    speculative: bool = True
    # ... once it stayed on screen this long: while the user types on, hints
    # flash by unaccepted, and fetching their sequels would only load the server.
    speculative_delay_ms: int = 200
    # CA bundle file to verify an https endpoint's certificate with.
    ca_bundle: str = ""
    # Write a debug log (stdpath('state')/llama_nvim.log); :LlamaDebugToggle flips it.
    debug_log: bool = False
    # Raise the Python host's niceness by this much at start (0: leave it), so
    # that when host and editor both want the CPU, the editor wins.
    host_nice: int = 10
    # Byte caps on the local context sent per request (huge files, minified lines).
    max_prefix_bytes: int = 32768
    max_suffix_bytes: int = 8192
    max_line_bytes: int = 4096
    # Hide the suggestion while a completion menu (native, nvim-cmp, blink.cmp)
    # is open; show it again when the menu closes with the text unchanged.
    hide_during_completion: bool = True
    # Pace requests to the server's speed to show a suggestion this long after a pause; 0: off.
    latency_target_ms: int = 1000
    # Not an option: the options g:llama_config set (parse_config), which pacing leaves alone.
    given: ClassVar[frozenset[str]] = frozenset()
    # The endpoint's server kind, and the FIM prompt where the server takes a
    # plain one (a preset's name, or a custom table held as a FimTemplate).
    fim_api: str = "auto"
    fim_template: str | fim.FimTemplate = "auto"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the user's config, worded for the user."""

    key: str
    message: str
    is_error: bool = True


@dataclass(frozen=True)
class _Rule:
    check: Callable[[Any], Any]
    expected: str


class _Invalid(Exception):
    pass


def _int(minimum: int, maximum: int | None = None) -> _Rule:
    def check(value: Any) -> int:
        # Vimscript has no separate bool type in old configs; reject only real bools.
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid
        if value < minimum or (maximum is not None and value > maximum):
            raise _Invalid
        return value

    bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
    return _Rule(check, f"an integer {bound}")


def _bool() -> _Rule:
    def check(value: Any) -> bool:
        # v:true/v:false arrive as bool; classic Vim configs use 1 and 0.
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise _Invalid

    return _Rule(check, "a boolean (v:true/v:false or 1/0)")


def _str(*, non_empty: bool = False) -> _Rule:
    def check(value: Any) -> str:
        if not isinstance(value, str) or (non_empty and not value):
            raise _Invalid
        return value

    return _Rule(check, "a non-empty string" if non_empty else "a string")


def _str_list() -> _Rule:
    def check(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise _Invalid
        return tuple(value)

    return _Rule(check, "a list of strings")


def _filetype_rules() -> _Rule:
    def check(value: Any) -> FiletypeRules:
        # An empty Lua table arrives as an empty list.
        if isinstance(value, list | tuple) and not value:
            return FiletypeRules()
        if not isinstance(value, Mapping):
            raise _Invalid
        rules: dict[str, bool] = {}
        for filetype, enabled in value.items():
            if not isinstance(filetype, str) or not filetype:
                raise _Invalid
            if isinstance(enabled, bool):
                rules[filetype] = enabled
            elif isinstance(enabled, int) and enabled in (0, 1):
                rules[filetype] = bool(enabled)
            else:
                raise _Invalid
        return FiletypeRules(rules)

    return _Rule(check, "a dictionary of filetype names (or '*') to booleans")


def _float(minimum: float, maximum: float) -> _Rule:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Invalid
        if not minimum <= value <= maximum:
            raise _Invalid
        return float(value)

    return _Rule(check, f"a number {minimum:g}..{maximum:g}")


def _url() -> _Rule:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _Invalid
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise _Invalid from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _Invalid
        return value.rstrip("/")

    return _Rule(check, "an http:// or https:// URL")


_RULES: dict[str, _Rule] = {
    "endpoint": _url(),
    "api_key": _str(),
    "n_prefix": _int(0, 100_000),
    "n_suffix": _int(0, 100_000),
    "n_predict": _int(1, 4096),
    "stop_strings": _str_list(),
    "t_max_prompt_ms": _int(0),
    "t_max_predict_ms": _int(0),
    "show_info": _int(0, 2),
    "auto_fim": _bool(),
    "max_line_suffix": _int(0),
    "max_cache_keys": _int(0, 100_000),
    "ring_n_chunks": _int(0, 1024),
    "ring_chunk_size": _int(3, 10_000),
    "ring_scope": _int(0),
    "ring_update_ms": _int(10),
    "keymap_trigger": _str(),
    "keymap_accept_full": _str(),
    "keymap_accept_line": _str(),
    "keymap_accept_word": _str(),
    "keymap_next": _str(),
    "keymap_prev": _str(),
    "enable_at_startup": _bool(),
    "model_fim": _str(),
    "keymap_debug_toggle": _str(),
    "endpoint_inst": _url(),
    "model_inst": _str(),
    "keymap_inst_trigger": _str(),
    "keymap_inst_rerun": _str(),
    "keymap_inst_continue": _str(),
    "keymap_inst_accept": _str(),
    "keymap_inst_cancel": _str(),
    "debounce_ms": _int(0, 5000),
    "t_max_predict_ms_first": _int(0),
    "timeout_ms": _int(100, 600_000),
    "id_slot": _int(-1),
    "disabled_filetypes": _str_list(),
    "filetypes": _filetype_rules(),
    "exclude_globs": _str_list(),
    "ring_similarity": _float(0.0, 1.0),
    "ring_budget_cap": _int(-1),
    "n_batch": _int(16),
    "n_suffix_fim": _int(0, 100_000),
    "speculative": _bool(),
    "speculative_delay_ms": _int(0, 10_000),
    "ca_bundle": _str(),
    "debug_log": _bool(),
    "host_nice": _int(0, 19),
    "max_prefix_bytes": _int(0),
    "max_suffix_bytes": _int(0),
    "max_line_bytes": _int(16),
    "hide_during_completion": _bool(),
    "latency_target_ms": _int(0, 60_000),
    "fim_api": _Rule(fim.parse_fim_api, fim.API_EXPECTED),  # (they raise TemplateError)
    "fim_template": _Rule(fim.parse_template, fim.TEMPLATE_EXPECTED),
}

assert set(_RULES) == {f.name for f in dataclasses.fields(Config)}, "every option needs a rule"

KEYMAP_OPTIONS = tuple(
    f"keymap_{name}"
    for name in ("trigger", "accept_full", "accept_line", "accept_word", "next", "prev")
)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_config(raw: Any) -> tuple[Config, list[Problem]]:
    """Merge the user's ``g:llama_config`` over the defaults.

    Returns the config to use and the problems to report; a key with a bad
    value keeps its default, an unknown key is ignored with a warning.
    """
    if raw is None or raw == {} or raw == []:
        return Config(), []
    if not isinstance(raw, Mapping):
        problem = Problem("g:llama_config", "g:llama_config must be a dictionary; using defaults")
        return Config(), [problem]

    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for raw_key, value in _resolve_aliases(raw, problems).items():
        key = ALIASES.get(raw_key, raw_key)
        rule = _RULES.get(key)
        if rule is None:
            problems.append(
                Problem(key, f"unknown option g:llama_config.{raw_key} (ignored)", is_error=False)
            )
            continue
        try:
            values[key] = rule.check(value)
        except (_Invalid, fim.TemplateError):
            default = getattr(Config(), key)
            problems.append(
                Problem(
                    key,
                    f"g:llama_config.{raw_key} must be {rule.expected}, got {_describe(value)}; "
                    f"using the default {_describe(default)}",
                )
            )
    config = dataclasses.replace(Config(), **values)
    object.__setattr__(config, "given", frozenset(values))  # frozen, and not a field
    return config, problems


def _resolve_aliases(raw: Mapping[Any, Any], problems: list[Problem]) -> dict[str, Any]:
    """The user's keys with, per option, one of its names: its own name over an alias."""
    given = {str(key): value for key, value in raw.items()}
    for alias, own in ALIASES.items():
        if alias not in given or own not in given:
            continue
        if given[alias] != given[own]:
            problems.append(
                Problem(
                    own,
                    f"g:llama_config.{alias} and g:llama_config.{own} are both set; using {own}",
                    is_error=False,
                )
            )
        del given[alias]
    return given
