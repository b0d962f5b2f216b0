"""A sweep's report, end to end through the console script: figures (battery life by axis,
accuracy against on-time inferences), counts as integers."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from reports.sweep_summary import on_time_inferences

ROOT = Path(__file__).resolve().parents[2]
RT3LAB = shutil.which("rt3lab") or str(Path(sys.executable).with_name("rt3lab"))


def run(*args: str) -> str:
    out = subprocess.run([RT3LAB, *args], capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """The shipped example's axes on a profile whose variants state their accuracy."""
    tmp = tmp_path_factory.mktemp("sweep")
    prof = yaml.safe_load((ROOT / "device_profiles" / "boards" / "odroid-xu4.yaml").read_text())
    prof["name"] = "odroid-acc"
    for v, acc in zip(prof["variants"], (0.30, 0.27), strict=True):
        v["accuracy"] = acc
    (tmp / "odroid-acc.yaml").write_text(yaml.safe_dump(prof))
    cfg = yaml.safe_load((ROOT / "examples" / "sweep.yaml").read_text())
    cfg["profiles"] = [str(tmp / "odroid-acc.yaml")]
    (tmp / "s.yaml").write_text(yaml.safe_dump(cfg))
    run("sweep", str(tmp / "s.yaml"), "--out", str(tmp / "out"), "--threads", "--workers", "1")
    run("report", str(tmp / "out"))
    return tmp / "out"


def _int(text: str) -> int:
    """A count as the report prints it, thousands separated."""
    return int(text.replace(",", ""))


def test_sweep_report_has_both_figures(sweep_dir):
    figures = sweep_dir / "report" / "figures"
    assert {p.name for p in figures.glob("*.png")} == {
        "sweep_life_by_axis.png",
        "sweep_pareto.png",
    }
    md = (sweep_dir / "report" / "report.md").read_text()
    assert "Battery life by sweep axis" in md and "Accuracy against on-time inferences" in md


def test_sweep_report_counts_are_integers_and_on_time_is_derived_honestly(sweep_dir):
    md = (sweep_dir / "report" / "report.md").read_text()
    lines = md.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("| profile | battery model"))
    cols = [c.strip() for c in lines[at].strip("|").split("|")]
    body = []
    for ln in lines[at + 2 :]:
        if not ln.startswith("|"):
            break
        body.append(ln)
    rows = [
        dict(zip(cols, (c.strip() for c in ln.strip().strip("|").split("|")), strict=True))
        for ln in body
    ]
    assert len(rows) == 8  # 2 battery models x 2 workloads x 2 policies
    df = pd.read_parquet(sweep_dir / "cells")
    for r in rows:
        for col in ("cells", "inferences", "deadline misses"):
            assert re.fullmatch(r"\d{1,3}(,\d{3})*", r[col]), (col, r[col])
        cells = df[(df.battery_model == r["battery model"]) & (df.workload == r["workload"])
                   & (df.policy == r["policy"])]  # fmt: skip
        if "on_time_inferences" in df.columns:  # the sweep records on-time counts itself
            want = cells.on_time_inferences.mean()
            assert _int(r["on-time inferences"]) == pytest.approx(want, abs=0.5)
        elif r["workload"] == "continuous":  # nothing is dropped: misses are late inferences
            want = (cells.inferences - cells.deadline_misses).mean()
            assert _int(r["on-time inferences"]) == pytest.approx(want, abs=0.5)
        else:  # misses also count dropped requests, which such a dataset does not record
            assert r["on-time inferences"] == "n/a"


def test_an_explicit_on_time_column_wins_over_the_derivation():
    cells = pd.DataFrame(
        {"inferences": [10, 9], "deadline_misses": [12, 1], "workload": ["periodic:5"] * 2,
         "on_time_inferences": [4, 8]}
    )  # fmt: skip
    assert on_time_inferences(cells).tolist() == [4.0, 8.0]


def test_manifest_and_summary_agree_on_cell_count(sweep_dir):
    assert json.loads((sweep_dir / "sweep.json").read_text())["cells"] == 16


def test_a_gain_over_zero_on_time_inferences_is_na_with_the_reason(tmp_path):
    """Issue 33: on rt3-paper's shipped variants both policies meet no deadline; their
    inferences differ (about 3.4x) but a gain over zero on-time inferences is no gain."""
    cfg = {"profiles": ["rt3-paper"], "policies": ["rt3", "dense-max"],
           "battery_models": ["ideal"], "capacities_mah": [20, 40],
           "workloads": ["continuous"]}  # fmt: skip
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(cfg))
    run("sweep", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out"), "--workers", "1")
    df = pd.read_parquet(tmp_path / "out" / "cells")
    by = df.groupby("policy")["inferences"].sum()
    assert by["rt3"] / by["dense-max"] > 3  # the old table's "3.40x"
    run("report", str(tmp_path / "out"))
    md = (tmp_path / "out" / "report" / "report.md").read_text()
    start = "| rt3-paper | ideal | continuous | n/a"
    row = next(ln for ln in md.splitlines() if ln.startswith(start))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3:6] == ["n/a"] * 3
    assert cells[6] == "2 of 2: neither meets a deadline"
    assert "3.4" not in row
