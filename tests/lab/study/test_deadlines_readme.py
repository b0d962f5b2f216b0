"""The study README's recorded deadline map is what ``docs/deadlines-quick.json`` says."""

from __future__ import annotations

import json
from pathlib import Path

from reports.deadline_map import map_rows

ROOT = Path(__file__).resolve().parents[3]


def recorded_lines(doc: dict) -> list[str]:
    """The README's lines for the recorded study: its scope, a row per point, its sentences."""
    tops = [p["top_deadline_ms"] for p in doc["points"]]
    head = (
        f"Recorded (`docs/deadlines-quick.json`, the demo's quick bundle, {len(tops)} points "
        f"from {min(tops):.3g} to {max(tops):.3g} ms, {doc['wall_s']:.0f} s wall on a quiet "
        "machine):"
    )
    header, rows = map_rows(doc)
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    table += ["| " + " | ".join(r) + " |" for r in rows]
    return [head, "", *table, "", *doc["summary"]["sentences"]]


def test_readme_recorded_map_matches_the_json():
    doc = json.loads((ROOT / "docs" / "deadlines-quick.json").read_text(encoding="utf-8"))
    readme = (ROOT / "lab" / "study" / "README.md").read_text(encoding="utf-8")
    assert "\n".join(recorded_lines(doc)) in readme
    for fig in ("deadline-gains.png", "deadline-accuracy.png"):
        assert (ROOT / "docs" / "deadlines" / fig).stat().st_size > 1000
