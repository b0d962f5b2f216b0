"""The compression README's search figures are the recorded bench run's (docs/)."""

import json
from pathlib import Path

from lab.compression.latency_table import latency_markdown
from lab.compression.search_bench import markdown_table

ROOT = Path(__file__).resolve().parents[3]


def test_readme_search_table_matches_the_recorded_json():
    doc = json.loads((ROOT / "docs" / "search-bench-quick.json").read_text())
    readme = (ROOT / "lab" / "compression" / "README.md").read_text()
    assert markdown_table(doc) in readme
    assert f"load average {doc['load_average'][0]:.2f}" in readme
    assert f"{doc['wall_s']:.0f} s" in readme


def test_readme_latency_table_matches_the_recorded_evaluation():
    doc = json.loads((ROOT / "docs" / "compress-quick-evaluate.json").read_text())
    readme = (ROOT / "lab" / "compression" / "README.md").read_text()
    assert latency_markdown(doc) in readme
