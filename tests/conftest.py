"""Shared fixtures: a real llama-server on a generated tiny model, and real embedded Neovims."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.tiny_fim_model import SLOW, build_model
from tests.harness import (
    REPO,
    Editor,
    LlamaServer,
    free_port,
    register_plugin,
)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def fim_model(model_dir: Path) -> Path:
    return build_model(model_dir / "tiny-fim.gguf")


@pytest.fixture(scope="session")
def no_fim_model(model_dir: Path) -> Path:
    return build_model(model_dir / "tiny-no-fim.gguf", fim=False)


@pytest.fixture(scope="session")
def llama_server(fim_model: Path) -> Iterator[LlamaServer]:
    """One real llama-server for the session (one slot, so cache behaviour is deterministic)."""
    server = LlamaServer(fim_model, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def slow_server(model_dir: Path) -> Iterator[LlamaServer]:
    """A llama-server slower than a typist: the CPU-bound benchmark model (SLOW's shape).

    A fixed sampling seed: the same prompt gets the same answer each time it is asked.
    """
    server = LlamaServer(build_model(model_dir / "slow-fim.gguf", shape=SLOW), free_port(),
                         "-fa", "off", "--metrics", "--seed", "42")  # fmt: skip
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_server(fim_model: Path) -> Iterator[LlamaServer]:
    """A server a test may stop and restart at will."""
    server = LlamaServer(fim_model, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def plugin_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Private XDG dirs with the plugin registered through :UpdateRemotePlugins."""
    home = tmp_path_factory.mktemp("nvim-home")
    register_plugin(home)
    return home


@pytest.fixture
def make_editor(plugin_home: Path, tmp_path: Path) -> Iterator[Callable[..., Editor]]:
    """Start embedded Neovims with the plugin; all are closed after the test."""
    editors: list[Editor] = []

    def make(config: dict[str, object] | None = None, *, init: str = "") -> Editor:
        editor = Editor.start(plugin_home, tmp_path, config or {}, init=init)
        editors.append(editor)
        return editor

    yield make
    for editor in editors:
        editor.close()


@pytest.fixture
def editor(make_editor: Callable[..., Editor], llama_server: LlamaServer) -> Editor:
    """An editor talking to the session's llama-server with default settings."""
    return make_editor({"endpoint": llama_server.infill_url})


def pytest_report_header() -> list[str]:
    return [f"llama.nvim repo: {REPO}", f"nvim: {os.environ.get('LLAMA_NVIM_NVIM', 'auto')}"]
