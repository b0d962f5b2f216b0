"""The compression README's search figures are the recorded bench run's (docs/)."""

import json
from pathlib import Path

from lab.bench.search import markdown_table
from lab.compression.latency.check import latency_markdown
from lab.compression.rerun import reruns_markdown

ROOT = Path(__file__).resolve().parents[3]


def _readme() -> str:
    return (ROOT / "lab" / "compression" / "README.md").read_text()


def _recorded(name: str) -> dict:
    return json.loads((ROOT / "docs" / name).read_text())


def test_readme_search_tables_match_the_recorded_json():
    readme = _readme()
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
    doc = _recorded("compress-quick-evaluate.json")
    readme = _readme()
    assert latency_markdown(doc) in readme


def test_readme_bound_call_figures_are_the_recorded_evaluations():
    """The sets' serving call against the bound call in the same rounds, and the table's
    estimate against the fastest run: the prose's ranges and what it says of the checks."""
    doc = _recorded("compress-quick-evaluate.json")
    flat = " ".join(_readme().split())
    sets = [r for r in doc["sets"] if r["name"] != "dense"]
    over = [r["latency_measured_median_ms"] / r["latency_bound_median_ms"] for r in sets]
    ci = [x for r in sets for x in r["latency_over_bound_ci95"]]
    assert f"medians over it are {min(over):.2f}-{max(over):.2f}" in flat
    assert f"(95 % intervals within {min(ci):.2f}-{max(ci):.2f})" in flat
    assert doc["checks"]["latency_measured_within_3pct_of_bound_call"] is True
    est = {r["name"]: r["latency_estimate_ms"] / r["latency_measured_ms"] for r in doc["sets"]}
    dense = est.pop("dense")
    said = f"{dense:.2f} for the dense model and {min(est.values()):.2f}-{max(est.values()):.2f}"
    assert said + " for the sets against the fastest run" in flat
    passed = doc["checks"]["latency_estimate_within_10pct_median"]
    assert passed == ("`latency_estimate_within_10pct_median` passes" in flat)
    assert (not passed) == ("`latency_estimate_within_10pct_median` fails" in flat)


def test_readme_reproducibility_table_matches_the_recorded_runs():
    doc = _recorded("compress-quick-reproducible.json")
    readme = _readme()
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

    readme = _readme()
    flat = " ".join(readme.split())  # prose wraps
    for name in ("distill-ablation-quick.json", "distill-ablation-quick-scaled.json"):
        doc = _recorded(name)
        assert (doc["bench"], doc["budget"], doc["seed"]) == ("distill", "quick", 0)
        assert markdown_table(doc) in readme
        assert f"load average {doc['load_average'][0]:.2f}" in flat
        assert f"{doc['wall_s']:.0f} s wall" in flat
        gains = [s["accuracy"] - s["no_distill_accuracy"] for s in doc["same_sets"]]
        assert all(g < 0 for g in gains)  # what the README says: distillation helped no set
        assert f"{-100 * max(gains):.2f} to {-100 * min(gains):.2f} points" in flat
    quick = _recorded("distill-ablation-quick.json")
    s = quick["sparsest"]
    assert f"{s['distilled']['gap_to_dense_points']:.2f} points below dense" in flat
    assert not quick["meets_target"] and "short of the issue's 1 point" in flat
    assert f"{100 * s['end_to_end_no_distill']['accuracy']:.2f} %" in flat


def test_readme_default_distill_table_matches_the_recorded_ablation():
    """The default budget's ablation: the table, the run's time and load, and every figure
    the prose quotes, from docs/distill-ablation-default.json."""
    from lab.bench.distill import markdown_table

    readme = _readme()
    flat = " ".join(readme.split())
    doc = _recorded("distill-ablation-default.json")
    assert (doc["bench"], doc["budget"], doc["seed"]) == ("distill", "default", 0)
    assert doc["deadlines"] == "dense-top" and doc["estimator"] == "op-count"
    assert markdown_table(doc) in readme
    assert f"{doc['wall_s']:.0f} s wall, load average {doc['load_average'][0]:.2f}" in flat
    s = doc["sparsest"]
    gap = s["distilled"]["gap_to_dense_points"]
    assert not doc["meets_target"] and gap > doc["target_gap_points"] == 2.0
    assert f"{100 * s['distilled']['sparsity']:.1f} % sparse) ends {gap:.2f} points" in flat
    e2e = s["end_to_end_no_distill"]
    assert f"{100 * e2e['sparsity']:.1f} % sparse and {e2e['gap_to_dense_points']:.2f}" in flat
    assert f"ended {s['same_set_no_distill_gap_points']:.2f} points below dense" in flat
    same = {r["set"]: r for r in doc["same_sets"]}
    plain_bp = next(r for r in doc["end_to_end_no_distill"] if r["set"] == "bp")
    assert f"BP set at {100 * plain_bp['accuracy']:.2f} %" in flat
    assert f"without a teacher reaches {100 * same['bp']['no_distill_accuracy']:.2f} %" in flat
    losses = [100 * (same[n]["no_distill_accuracy"] - same[n]["accuracy"]) for n in
              ("pp-1400mhz", "pp-1000mhz", "pp-800mhz")]  # fmt: skip
    assert all(x > 0 for x in losses)  # the prose: the teacher did not help these in the end
    assert f"ended {losses[0]:.2f}, {losses[1]:.2f} and {losses[2]:.2f} points below" in flat
    bp_gain = 100 * (same["bp"]["accuracy"] - same["bp"]["no_distill_accuracy"])
    assert bp_gain > 0 and f"BP's mask {bp_gain:.2f} above" in flat
    top = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert (
        f"kept the sparsest set {gap:.2f} points below dense "
        f"({100 * s['distilled']['sparsity']:.1f} % sparse) where the run without a teacher "
        f"ended {e2e['gap_to_dense_points']:.2f} points below ({100 * e2e['sparsity']:.1f} %"
    ) in top
