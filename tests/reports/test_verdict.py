"""The verdict counts on-time inferences only and names every baseline present."""

from __future__ import annotations

import json
import math

import pytest

from reports.verdict import gains, verdict_paragraph


def rec(policy, inferences, misses, hours, acc, dropped=0):
    return {"policy": policy, "inferences": inferences, "deadline_misses": misses,
            "dropped": dropped, "battery_life_s": hours * 3600, "mean_accuracy": acc}  # fmt: skip


def test_gains_use_on_time_inferences_and_hours():
    records = [
        rec("rt3", 200, 120, 10.0, 0.20),  # 80 on time
        rec("dense-max", 160, 0, 8.0, 0.22),
        rec("dvfs-only:bp", 190, 190, 10.0, 0.21),  # never on time
        rec("dvfs-only:pp-1", 10, 0, 1.0, 0.1),  # not a baseline: not in the verdict
    ]
    g = {x.baseline: x for x in gains(records)}
    assert list(g) == ["dense-max", "dvfs-only:bp"]
    assert g["dense-max"].on_time_ratio == 0.5  # 80 / 160, not 200 / 160
    assert g["dense-max"].hours_ratio == 1.25
    assert math.isclose(g["dense-max"].accuracy_points, 2.0)
    assert g["dvfs-only:bp"].on_time_ratio is None
    assert (
        g["dvfs-only:bp"].sentence().startswith("against dvfs-only:bp: 80 on-time inferences where")
    )
    text = verdict_paragraph(records, "periodic", "Measured: latency.")
    assert text.startswith("Workload: periodic.")
    assert "rt3 completed 80 inferences on time and missed 120 (60.0 % of requests)" in text
    assert (
        "against dense-max: 1.25x the hours (10.0 h against 8.0 h) and 0.50x the on-time "
        "inferences (80 against 160), 2.0 points less accurate" in text
    )
    assert text.endswith("Measured: latency.")


def test_the_verdict_takes_its_policies_from_the_rows_in_the_baselines_order():
    """A policy the reports have never heard of (a registered one) is compared after the
    baselines; the baselines come in ``BASELINES`` order whatever the rows' order."""
    records = [
        rec("toy", 100, 0, 5.0, None),
        rec("oracle", 120, 0, 6.0, None),
        rec("rt3", 150, 0, 7.5, None),
        rec("dense-max", 100, 0, 4.0, None),
    ]
    assert [g.baseline for g in gains(records)] == ["dense-max", "oracle", "toy"]
    assert "against toy: 1.50x the hours (7.5 h against 5.0 h) and 1.50x the on-time" in (
        verdict_paragraph(records)
    )


def test_intervals_are_stated_with_whether_they_straddle_one():
    """Where the results carry 95 % intervals (the simulator's bootstrap), each gain says
    its interval and whether it holds 1; without them the verdict says none was measured."""
    from reports.intervals import read_intervals
    from reports.verdict import build_verdict

    records = [rec("rt3", 300, 0, 12.0, 0.29), rec("dense-max", 100, 0, 5.0, 0.30),
               rec("oracle", 280, 0, 11.5, 0.29)]  # fmt: skip
    bare = build_verdict(records)
    assert "No interval was measured" in bare.text()
    records[0]["gains"] = [
        {"baseline": "dense-max", "hours": {"point": 2.4, "ci95": [2.31, 2.6],
         "straddles_one": False}, "on_time": {"point": 3.0, "ci95": [2.8, 3.2]}},
        {"baseline": "oracle", "hours": {"point": 1.04, "ci95": [0.97, 1.1],
         "straddles_one": True}},
    ]  # fmt: skip
    v = build_verdict(records, intervals=read_intervals(records))
    dense, oracle = v.gains
    assert "2.40x the hours (12.0 h against 5.0 h; 95 % interval 2.31x-2.60x, above 1)" in dense
    assert "3.00x the on-time inferences (300 against 100; 95 % interval 2.80x-3.20x" in dense
    assert "95 % interval 0.97x-1.10x, which straddles 1: the gain may be none" in oracle
    assert "No interval was measured" not in v.text()


@pytest.mark.parametrize("name", ["uncertainty.json", "intervals.json"])  # the demo's name
def test_an_uncertainty_file_in_the_run_gives_the_intervals(tmp_path, name):
    from fake_run import write_fake_run
    from report_html import parse_report

    from reports import build_report

    root = tmp_path / "run"
    write_fake_run(root, with_extras=False)
    (root / name).write_text(json.dumps({
        "policies": [{"policy": "rt3", "battery_life_h_ci95": [70.0, 80.0]}],
        "gains": [{"baseline": "dense-max", "hours": {"ci95": [1.5, 1.7]},
                   "on_time": {"ci95": [5.5, 6.1], "straddles_one": False}}],
    }))  # fmt: skip
    verdict = parse_report(build_report(root, tmp_path / "r").html).verdict
    assert "95 % interval 1.50x-1.70x, above 1" in verdict
    assert "95 % interval 5.50x-6.10x, above 1" in verdict


def test_a_run_whose_rt3_only_misses_says_so():
    from reports.verdict import build_verdict

    text = build_verdict([rec("rt3", 50, 50, 3.0, None), rec("dense-max", 20, 20, 2.0, None)])
    assert "rt3 met no deadline: all 50 requests missed" in text.text()
    assert "rt3lab profile --bundle" in text.text()
