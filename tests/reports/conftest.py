"""Fixtures for the report tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_run import write_fake_run


@pytest.fixture
def fake_run(tmp_path) -> tuple[Path, list[dict]]:
    root = tmp_path / "run"
    return root, write_fake_run(root)
