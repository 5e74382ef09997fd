"""The CPU-bound benchmark model is served by a real llama-server."""

from __future__ import annotations

import pytest

from tests.harness import LlamaServer

pytestmark = pytest.mark.integration


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
