"""Every example in docs/*.md runs (doctest, from the repository root), as simpy's do."""

import doctest
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md"))


def test_there_are_pages_for_the_api_the_sweep_file_and_the_trace_format():
    assert {p.name for p in PAGES} >= {"python-api.md", "sweep.md", "trace-format.md"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_examples_run(page, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = doctest.testfile(
        str(page),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert result.failed == 0
    assert result.attempted >= 3


def test_the_shipped_sweep_example_is_the_one_documented():
    text = (ROOT / "docs" / "sweep.md").read_text()
    assert "examples/sweep.yaml" in text
    assert (ROOT / "examples" / "sweep.yaml").is_file()
