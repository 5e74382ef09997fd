"""The CPU-bound benchmark model is served by a real llama-server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.tiny_fim_model import SLOW, build_model
from tests.harness import LlamaServer, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    model = build_model(tmp_path_factory.mktemp("slow") / "slow-fim.gguf", shape=SLOW)
    server = LlamaServer(model, free_port(), "-fa", "off")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_slow_model_answers_infill_with_ascii_code(slow_server: LlamaServer) -> None:
    reply = slow_server.infill(
        input_prefix="def add(a, b):\n    ",
        input_suffix="\n",
        n_predict=16,
        samplers=["top_k", "top_p", "infill"],
        seed=1,
        response_fields=["content"],
    )
    content = reply["content"]
    assert content.strip(), reply
    # Non-ASCII bytes are suppressed: a stray one made the server answer 500.
    assert content.isascii(), content
