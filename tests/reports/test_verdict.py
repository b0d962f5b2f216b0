"""The verdict counts on-time inferences only and names every baseline present."""

from __future__ import annotations

import math

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
    assert text.startswith("Workload: periodic. rt3 completed 80 inferences on time and missed 120")
    assert (
        "against dense-max: 0.50x the on-time inferences, 1.25x the hours, 2.0 points less" in text
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
    assert "against toy: 1.50x the on-time inferences, 1.50x the hours" in verdict_paragraph(
        records
    )
