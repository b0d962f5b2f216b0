"""Data tests never write to the user's cache: a private one per session."""

import pytest


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("RT3LAB_CACHE", str(tmp_path_factory.getbasetemp() / "rt3lab-cache"))
