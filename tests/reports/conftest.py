"""Fixtures for the report tests; puts this folder's helper modules on sys.path (pytest runs
in importlib mode, which does not)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_run import write_fake_run


@pytest.fixture
def fake_run(tmp_path) -> tuple[Path, list[dict]]:
    root = tmp_path / "run"
    return root, write_fake_run(root)
