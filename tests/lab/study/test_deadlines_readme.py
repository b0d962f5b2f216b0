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


def test_readme_reading_under_the_map_quotes_the_json():
    """The prose under the table: where rt3 misses many requests, how few elsewhere, and
    its hours against the sparsest set held fixed, all from the recorded points."""
    doc = json.loads((ROOT / "docs" / "deadlines-quick.json").read_text(encoding="utf-8"))
    readme = (ROOT / "lab" / "study" / "README.md").read_text(encoding="utf-8")
    start = readme.index("Each point's sets are searched again")
    text = " ".join(readme[start : readme.index("\n\n", start)].split())
    rt3 = [(p["top_deadline_ms"], p["policies"]["rt3"]) for p in doc["points"]]
    many = [(top, r["miss_rate"]) for top, r in rt3 if r["miss_rate"] > 0.01]
    few = [r["missed_inferences"] for top, r in rt3 if r["miss_rate"] <= 0.01]
    if len(many) == 1:
        ((top, rate),) = many
        assert f"At one point ({top:.3f} ms)" in text
        assert f"({100 * rate:.0f} % of them)" in text
    else:
        tops = f"({min(t for t, _ in many):.3f} to {max(t for t, _ in many):.3f} ms)"
        rates = f"({100 * min(r for _, r in many):.0f} % to {100 * max(r for _, r in many):.0f} %"
        assert tops in text and rates in text
    assert f"at the others rt3 misses at most {max(few)} requests" in text
    hours = [p["gains"]["static-sparse"]["hours"]["point"] for p in doc["points"]]
    assert all(p["gains"]["static-sparse"]["hours"]["ci95"][1] < 1.0 for p in doc["points"])
    assert f"({min(hours):.2f}x to {max(hours):.2f}x its hours)" in text
