"""The generated test models: deterministic files of the documented shape."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from tests.fixtures.tiny_fim_model import SLOW, build_model


def test_slow_model_is_byte_identical_across_generations(tmp_path: Path) -> None:
    first = build_model(tmp_path / "a" / "slow.gguf", shape=SLOW)
    second = build_model(tmp_path / "b" / "slow.gguf", shape=SLOW)
    assert first.read_bytes() == second.read_bytes()


def test_slow_model_has_the_documented_shape_in_f16(tmp_path: Path) -> None:
    reader = gguf.GGUFReader(build_model(tmp_path / "slow.gguf", shape=SLOW))
    tensors = {t.name: t for t in reader.tensors}
    assert sum(int(t.n_elements) for t in tensors.values()) == 18_675_712
    assert sum(1 for name in tensors if name.endswith("attn_q.weight")) == SLOW.n_layer
    assert list(tensors["blk.0.ffn_up.weight"].shape) == [SLOW.n_embd, SLOW.n_ff]
    # Matrices are F16 to halve the file; norms and biases stay F32.
    kinds = {t.name: t.tensor_type for t in tensors.values()}
    assert kinds["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.F16
    assert kinds["output.weight"] == gguf.GGMLQuantizationType.F16
    assert kinds["blk.0.attn_norm.weight"] == gguf.GGMLQuantizationType.F32
    assert np.all(np.isfinite(tensors["output.weight"].data))
