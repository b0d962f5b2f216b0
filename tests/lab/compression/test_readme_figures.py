"""The compression README's search figures are the recorded bench run's (docs/)."""

import json
from pathlib import Path

from lab.bench.search import markdown_table
from lab.compression.latency.check import latency_markdown
from lab.compression.rerun import reruns_markdown

ROOT = Path(__file__).resolve().parents[3]


def test_readme_search_tables_match_the_recorded_json():
    readme = (ROOT / "lab" / "compression" / "README.md").read_text()
    for budget in ("quick", "default"):
        folder = ROOT / "docs" / ("archive" if budget == "default" else "")
        doc = json.loads((folder / f"search-bench-{budget}.json").read_text())
        assert doc["budget"] == budget
        assert markdown_table(doc) in readme
        assert f"load average {doc['load_average'][0]:.2f}" in readme
        assert f"{doc['wall_s']:.0f} s wall" in readme
        for m in ("rl", "random"):
            assert f"{doc['methods'][m]['best_reward']:.3f}" in readme


def test_readme_latency_table_matches_the_recorded_evaluation():
    doc = json.loads((ROOT / "docs" / "compress-quick-evaluate.json").read_text())
    readme = (ROOT / "lab" / "compression" / "README.md").read_text()
    assert latency_markdown(doc) in readme


def test_readme_reproducibility_table_matches_the_recorded_runs():
    doc = json.loads((ROOT / "docs" / "compress-quick-reproducible.json").read_text())
    readme = (ROOT / "lab" / "compression" / "README.md").read_text()
    assert reruns_markdown(doc) in readme
    runs = doc["runs"]
    # what the README says of them
    assert {r["dense"] for r in runs.values()} == {runs["A"]["dense"]}
    assert {r["bp_mask"] for r in runs.values()} == {runs["A"]["bp_mask"]}
    assert runs["A"]["backbone"] != runs["B"]["backbone"]
    for a, b in (("A", "C"), ("op-count-1", "op-count-2")):
        same = ("backbone", "search_log", "set_accuracy", "bp_on_backbone", "deadline_ms")
        assert all(runs[a][k] == runs[b][k] for k in same), (a, b)
    assert runs["C"]["latency_source"].startswith("given:")


def test_readme_distill_table_matches_the_recorded_ablation():
    from lab.bench.distill import markdown_table

    readme = (ROOT / "lab" / "compression" / "README.md").read_text()
    flat = " ".join(readme.split())  # prose wraps
    for name in ("distill-ablation-quick.json", "distill-ablation-quick-scaled.json"):
        doc = json.loads((ROOT / "docs" / name).read_text())
        assert (doc["bench"], doc["budget"], doc["seed"]) == ("distill", "quick", 0)
        assert markdown_table(doc) in readme
        assert f"load average {doc['load_average'][0]:.2f}" in flat
        assert f"{doc['wall_s']:.0f} s wall" in flat
        gains = [s["accuracy"] - s["no_distill_accuracy"] for s in doc["same_sets"]]
        assert all(g < 0 for g in gains)  # what the README says: distillation helped no set
        assert f"{-100 * max(gains):.2f} to {-100 * min(gains):.2f} points" in flat
    quick = json.loads((ROOT / "docs" / "distill-ablation-quick.json").read_text())
    s = quick["sparsest"]
    assert f"{s['distilled']['gap_to_dense_points']:.2f} points below dense" in flat
    assert not quick["meets_target"] and "short of the issue's 1 point" in flat
    assert f"{100 * s['end_to_end_no_distill']['accuracy']:.2f} %" in flat
