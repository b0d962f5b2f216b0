"""The README's demo headline is exactly what the recorded demo JSON under docs/ says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.demo.docs import (
    BEGIN,
    END,
    HeadlineError,
    headline_markdown,
    load_headline,
    main,
    readme_block,
)

ROOT = Path(__file__).resolve().parents[1]


def test_readme_matches_the_recorded_demo_json():
    data = load_headline(ROOT / "docs" / "demo-headline.json")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_block(readme) == headline_markdown(data)
    assert (ROOT / "docs" / "demo-battery-life.png").stat().st_size > 1000
    rows = {r["policy"]: r for r in data["policies"]}
    for pol in ("rt3", "dense-max", "dvfs-only:bp"):
        for key in ("on_time_inferences", "missed_inferences", "battery_life_h", "mean_accuracy"):
            assert key in rows[pol]
    bundles = (data.get("intervals") or {}).get("bundles")  # recorded since bundle replicas
    if bundles is not None and bundles > 1:
        assert f"of {bundles} bundles of this commit" in readme_block(readme)
        assert len(data["intervals"]["members"]) == bundles


def test_the_block_says_how_many_bundles_the_intervals_cover():
    """Intervals pooled over the demo's bundle and its replicas (issue 29): the block names
    the bundles; a pool of one reads as before."""
    from dataclasses import replace

    from device_profiles import load_profile
    from lab.demo.docs import headline
    from lab.study.intervals import demo_member, pooled_intervals
    from simulator import headline_workload, simulate

    p = load_profile("rt3-paper")
    runs = {"bp": {800000: [190.0, 200.0, 210.0]}}
    own = demo_member("the demo's bundle", p, None, None, runs)
    slower = replace(own, name="replica 1", latency={"bp": {800000: [230.0, 240.0, 250.0]}})
    workload = headline_workload(p, "periodic")
    results = [simulate(p, policy=x, workload=workload) for x in ("rt3", "dvfs-only:bp")]
    pols = [r.policy for r in results]
    two = headline(results, "rt3-paper", workload, 1.0, pooled_intervals([own, slower], pols, 40))
    one = headline(results, "rt3-paper", workload, 1.0, pooled_intervals([own], pols, 40))
    assert two["intervals"]["bundles"] == 2
    assert [m["name"] for m in two["intervals"]["members"]] == ["the demo's bundle", "replica 1"]
    assert "95% intervals over 40 bootstrap resamples of 2 bundles of this commit" in (
        headline_markdown(two)
    )
    assert "40 bootstrap resamples of the timed runs and the test sequences" in (
        headline_markdown(one)
    )


def test_update_rewrites_only_the_block_and_a_bad_json_is_named(tmp_path, capsys):
    data = load_headline(ROOT / "docs" / "demo-headline.json")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{BEGIN}\nstale\n{END}\nafter\n", encoding="utf-8")
    src = tmp_path / "h.json"
    src.write_text(json.dumps(data))
    assert main([str(src), str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n") and text.endswith(f"{END}\nafter\n")
    assert readme_block(text) == headline_markdown(data)
    assert main([str(src), str(readme)]) == 0 and "already matches" in capsys.readouterr().out
    src.write_text("{}")
    with pytest.raises(HeadlineError, match="format: expected 'rt3lab-demo-headline'"):
        load_headline(src)
    assert main([str(src), str(readme)]) == 2


def _example_with_intervals():
    """A headline with the intervals of ``demo_intervals`` on the published rt3-paper
    profile (two pattern sets added, runs of the first around its latency at 0.8 GHz)."""
    from device_profiles import load_profile
    from device_profiles.schema import Published, Variant
    from lab.demo.docs import headline
    from lab.demo.intervals import demo_intervals
    from simulator import headline_workload, simulate

    p = load_profile("rt3-paper")
    src = Published(kind="published", source="example")
    accs = zip(p.variants, (0.31, 0.305), strict=True)
    scored = [v.model_copy(update={"accuracy": a}) for v, a in accs]
    variants = [
        *scored,
        Variant(name="pp-1", accuracy=0.302, sparsity=0.85, nonzero_mults=6e6,
                nonzero_adds=6e6, provenance=src),
        Variant(name="pp-2", accuracy=0.29, sparsity=0.92, nonzero_mults=3e6,
                nonzero_adds=3e6, provenance=src),
    ]  # fmt: skip
    ms = p.latency_model.latency_ms(6e6, 6e6, 800000)  # pp-1's, by the op-count model
    runs = {"pp-1": {800000: [ms * f for f in (0.9, 0.97, 1.0, 1.02, 1.2)]}}
    workload = headline_workload(p, "periodic")
    pols = ["rt3", "dense-max", "dvfs-only:bp", "dvfs-only:dense", "static-sparse", "oracle"]
    results = [simulate(p, policy=x, variants=variants, workload=workload) for x in pols]
    intervals = demo_intervals(p, variants, None, runs, pols, workload, n=40)
    return headline(results, "rt3-paper", workload, 1.0, intervals), intervals


def test_block_shows_the_intervals_and_where_a_gain_straddles_one():
    data, intervals = _example_with_intervals()
    json.dumps(data)
    assert data["intervals"]["warnings"] == [] and data["intervals"]["resamples"] == 40
    rows = {r["policy"]: r for r in data["policies"]}
    spread = {p["policy"]: p for p in intervals["policies"]}
    for pol, row in rows.items():
        for key in ("battery_life_h_ci95", "on_time_inferences_ci95", "mean_accuracy_ci95"):
            assert row[key] == spread[pol][key], (pol, key)
        assert "life_within_dense_h" in row
    assert rows["rt3"]["variant_share"] == spread["rt3"]["variant_share"]
    assert rows["rt3"]["battery_life_h_ci95"][0] < rows["rt3"]["battery_life_h_ci95"][1]
    for g in data["gains"]:
        assert {"hours_ci95", "hours_straddles_one", "on_time_ci95"} <= set(g)
    md = headline_markdown(data)
    assert "| life within 1 pt of dense (h) |" in md
    lo, hi = rows["rt3"]["battery_life_h_ci95"]
    assert f"| rt3 | {rows['rt3']['battery_life_h']:.3f} [{lo:.3f}, {hi:.3f}] |" in md
    assert "95% intervals over 40 bootstrap resamples" in md
    assert "rt3's set per level across resamples: 1400 MHz" in md
    lines = {ln.split(": ")[0]: ln for ln in md.splitlines() if ln.startswith("- rt3 against")}
    assert len(lines) == len(data["gains"])
    for g in data["gains"]:
        line = lines[f"- rt3 against {g['baseline']}"]
        flagged = g["hours_straddles_one"] or g["on_time_straddles_one"]
        assert ("straddles 1.0x: no gain shown" in line) == bool(flagged), line
    # a gain whose interval holds 1.0x is said so, in words
    first = data["gains"][0]
    first["hours_straddles_one"], first["hours_ci95"] = True, [0.97, 1.3]
    line = next(ln for ln in headline_markdown(data).splitlines() if ln.startswith("- rt3 against"))
    assert line.endswith("; the hours interval straddles 1.0x: no gain shown"), line
    assert "[0.97x, 1.30x] the hours" in line
    first["on_time_straddles_one"] = True
    line = next(ln for ln in headline_markdown(data).splitlines() if ln.startswith("- rt3 against"))
    assert line.endswith("the hours and on-time inferences intervals straddle 1.0x: no gain shown")


def test_a_headline_recorded_without_intervals_gives_the_block_it_always_gave():
    data = load_headline(ROOT / "docs" / "demo-headline.json")
    old = {k: v for k, v in data.items() if k not in ("intervals", "life_within_dense")}
    old.pop("deadline_map", None)  # and before the deadline map
    for r in old["policies"]:
        for key in ("battery_life_h_ci95", "variant_share", "life_within_dense_h"):
            r.pop(key, None)
    md = headline_markdown(old)
    assert "95% intervals" not in md and "life within 1 pt" not in md
    assert "| policy | battery life (h) | on-time inferences | missed | accuracy |\n" in md


def test_readme_demo_time_is_the_recorded_cold_run():
    """The time `make demo` takes, in the README, is the recorded run's (docs/)."""
    data = json.loads((ROOT / "docs" / "demo-headline.json").read_text(encoding="utf-8"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"({round(data['elapsed_s'])} s cold on 2 cores" in readme
    assert f"at load {data['load_average'][0]:.1f}: docs/demo-headline.json" in readme
