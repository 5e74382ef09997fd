"""Fixtures shared by the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def projects(tmp_path: Path) -> tuple[Path, Path]:
    """Two git projects, a and b."""
    roots = (tmp_path / "a", tmp_path / "b")
    for root in roots:
        (root / ".git").mkdir(parents=True)
    return roots
