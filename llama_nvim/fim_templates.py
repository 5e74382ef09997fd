"""FIM prompts for servers that take a plain prompt (/v1/completions, Ollama's raw mode).

Also the check of the two options that choose them (config.py imports this
module, so it imports nothing of the plugin's at run time).

llama-server's /infill builds the prompt itself from the model's FIM tokens;
other servers need the prompt spelled out in the model's own special tokens.
A template names those tokens. Where the model was trained on repository-level
context (Qwen2.5-Coder, StarCoder2: a repository name and a separator before
each file), the ring's chunks go first, each as a file of the repository, then
the current file with the hole: the chunks change least, so a server that
caches prompts (llama-server behind /v1/completions) reuses them.

Tokens as each model's tokenizer defines them: Qwen2.5-Coder
``<|fim_prefix|>``, ``<|fim_suffix|>``, ``<|fim_middle|>``, ``<|repo_name|>``,
``<|file_sep|>``; StarCoder2 ``<fim_prefix>``, ``<fim_suffix>``,
``<fim_middle>``, ``<repo_name>``, ``<file_sep>`` (the current file's path
after ``<fim_prefix>``); CodeLlama ``<PRE>``, `` <SUF>``, `` <MID>`` (ends
with ``<EOT>``); DeepSeek-Coder ``<|fim_begin|>``, ``<|fim_hole|>``,
``<|fim_end|>`` spelled with full-width bars (U+FF5C) and U+2581 for the
underscore; Codestral
suffix first: ``[SUFFIX]``, ``[PREFIX]`` and no middle token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .protocol import ExtraChunk


@dataclass(frozen=True)
class FimTemplate:
    """A model's FIM tokens and how its prompt is laid out."""

    name: str
    prefix: str
    suffix: str
    middle: str
    # Repository-level context: the token before each file's path (none: the
    # ring's chunks are not sent) and the one before the repository's name.
    file_sep: str = ""
    repo_name: str = ""
    # What follows the repository's name (Qwen2.5-Coder: a newline).
    repo_end: str = "\n"
    # Suffix before prefix (Codestral).
    suffix_first: bool = False
    # The current file's path goes after the prefix token (StarCoder2).
    path_in_prefix: bool = False
    # Strings that end a suggestion, for servers that print special tokens.
    stop: tuple[str, ...] = ()

    def prompt(
        self, prefix: str, suffix: str, chunks: Sequence[ExtraChunk], path: str, repo: str
    ) -> str:
        """The whole prompt: repository context (if the model has it), then the hole."""
        if self.suffix_first:
            hole = f"{self.suffix}{suffix}{self.prefix}{prefix}{self.middle}"
        else:
            hole = f"{self.prefix}{prefix}{self.suffix}{suffix}{self.middle}"
        if not self.file_sep or not chunks:
            return hole
        parts = [f"{self.repo_name}{repo}{self.repo_end}"] if self.repo_name else []
        for chunk in chunks:
            text = chunk.text if chunk.text.endswith("\n") else chunk.text + "\n"
            parts.append(f"{self.file_sep}{chunk.filename}\n{text}")
        if self.path_in_prefix:
            # <file_sep><fim_prefix>path\nprefix<fim_suffix>suffix<fim_middle>
            parts.append(f"{self.file_sep}{self.prefix}{path}\n{prefix}")
            parts.append(f"{self.suffix}{suffix}{self.middle}")
        else:
            parts.append(f"{self.file_sep}{path}\n{hole}")
        return "".join(parts)

    @property
    def stop_strings(self) -> tuple[str, ...]:
        """Stop strings: the template's own, then its tokens that must not be generated."""
        tokens = (self.prefix, self.suffix, self.middle, self.file_sep, self.repo_name)
        extra = tuple(t.strip() for t in tokens if t.strip() and t.strip() not in self.stop)
        return self.stop + extra


def _deepseek(name: str) -> str:
    """A DeepSeek-Coder special token: full-width bars, U+2581 where "_" is written."""
    return "<\uff5c" + name.replace("_", "\u2581") + "\uff5c>"


PRESETS: dict[str, FimTemplate] = {
    t.name: t
    for t in (
        FimTemplate(
            "qwen2.5-coder",
            "<|fim_prefix|>",
            "<|fim_suffix|>",
            "<|fim_middle|>",
            file_sep="<|file_sep|>",
            repo_name="<|repo_name|>",
            stop=("<|endoftext|>", "<|fim_pad|>"),
        ),
        FimTemplate(
            "starcoder2",
            "<fim_prefix>",
            "<fim_suffix>",
            "<fim_middle>",
            file_sep="<file_sep>",
            repo_name="<repo_name>",
            repo_end="",
            path_in_prefix=True,
            stop=("<|endoftext|>", "<fim_pad>"),
        ),
        FimTemplate("codellama", "<PRE> ", " <SUF>", " <MID>", stop=("<EOT>",)),
        FimTemplate(
            "deepseek-coder",
            _deepseek("fim_begin"),
            _deepseek("fim_hole"),
            _deepseek("fim_end"),
            stop=("<|EOT|>", _deepseek("end_of_sentence")),
        ),
        FimTemplate("codestral", "[PREFIX] ", "[SUFFIX]", "", suffix_first=True, stop=("</s>",)),
    )
}

DEFAULT_TEMPLATE = "qwen2.5-coder"

# The keys of a custom template table; the first three are required.
CUSTOM_KEYS = ("prefix", "suffix", "middle", "file_sep", "repo_name", "stop", "suffix_first")


class TemplateError(ValueError):
    """A fim_template value that is neither a preset's name nor a valid table (or a bad fim_api)."""


# The server kinds g:llama_config.fim_api may name (backends.py).
FIM_APIS = ("auto", "infill", "completions", "ollama")
API_EXPECTED = "one of " + ", ".join(repr(name) for name in FIM_APIS)
TEMPLATE_EXPECTED = (
    "'auto', a preset's name (" + ", ".join(repr(name) for name in PRESETS) + ") "
    "or a table with at least 'prefix' and 'suffix' strings"
)


def parse_fim_api(value: Any) -> str:
    """A valid fim_api value, or TemplateError."""
    if value not in FIM_APIS:
        raise TemplateError(value)
    return str(value)


def parse_template(value: Any) -> str | FimTemplate:
    """A preset's name (or "auto"), or a custom table turned into a FimTemplate."""
    if isinstance(value, str):
        if value == "auto" or value in PRESETS:
            return value
        raise TemplateError(value)
    if not isinstance(value, Mapping) or not set(value) <= set(CUSTOM_KEYS):
        raise TemplateError(value)
    strings = {k: value.get(k, "") for k in CUSTOM_KEYS[:5]}
    if not all(isinstance(v, str) for v in strings.values()):
        raise TemplateError(value)
    if not (strings["prefix"] and strings["suffix"]):
        raise TemplateError(value)
    stop = value.get("stop", [])
    suffix_first = value.get("suffix_first", False)
    if not isinstance(stop, list | tuple) or not all(isinstance(s, str) for s in stop):
        raise TemplateError(value)
    if suffix_first not in (True, False, 0, 1):
        raise TemplateError(value)
    return FimTemplate(
        "custom",
        **strings,
        stop=tuple(stop),
        suffix_first=bool(suffix_first),
    )


def resolve(setting: str | FimTemplate) -> FimTemplate:
    """The template a setting names ("auto": Qwen2.5-Coder's, llama.vim's default model)."""
    if isinstance(setting, FimTemplate):
        return setting
    return PRESETS.get(setting, PRESETS[DEFAULT_TEMPLATE])
