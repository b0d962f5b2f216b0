"""Issue 19, defect 4 (unbounded work) and the sweep half of defect 8 (failed cells retried),
plus the sweep's share of defect 9 (YAML errors in one line naming file and line).

Every test drives the real ``rt3lab`` entry point.
"""

from __future__ import annotations

import json
import time

import pytest
import yaml
from cli_runner import rt3lab

from device_profiles import dump_profile, load_profile


@pytest.mark.parametrize("cap", ["1e300", "1e308", "inf"])
def test_simulate_refuses_unbounded_capacity_before_starting(cap, tmp_path):
    out = tmp_path / "run"
    t0 = time.process_time()  # this process's CPU time: what a shared machine cannot inflate
    r = rt3lab("simulate", "--capacity-mah", cap, "--out", str(out))
    assert r.code == 2, r
    line = r.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith("rt3lab: error: simulate rt3-paper (capacity_mah ")
    if cap == "1e300":
        # The refusal states the numbers: the inferences it would count against the bound.
        assert "inferences" in line and "2**53" in line
    else:
        assert "not a finite number" in line
    assert not out.exists()  # refused before the run: nothing of it was written
    assert time.process_time() - t0 < 10  # and no discharge was stepped


def test_a_large_battery_runs_in_fast_mode_with_an_event_based_time_series():
    # 1000x rt3-paper's capacity: the time series has a row per state change and per 1% of
    # the energy, so the run stays small (issue 20) and is not refused.
    r = rt3lab("simulate", "--capacity-mah", "3e6", "--json")
    assert r.code == 0, r


def test_a_time_grid_too_fine_for_the_discharge_is_refused_with_the_numbers():
    from simulator import check_run
    from simulator.bounds import MAX_ROWS, WorkBoundError

    with pytest.raises(WorkBoundError) as exc:
        check_run("rt3-paper", capacity_mah=3e6, sample_s=1.0)
    line = str(exc.value)
    assert "time-series rows" in line and f"{MAX_ROWS:,} rows" in line and "GB" in line


def test_exact_mode_refuses_too_many_stepped_requests():
    # 2000 mAh in exact mode: about 600k requests per mAh-hour at rt3-paper's latencies.
    from simulator.bounds import MAX_ROWS, MAX_STEPS

    r = rt3lab("simulate", "--capacity-mah", "200000", "--mode", "exact", "--governor", "max")
    assert r.code == 2, r
    assert f"the bound is {MAX_STEPS:,}" in r.stderr or f"{MAX_ROWS:,} rows" in r.stderr


def test_a_bounded_run_still_runs():
    r = rt3lab("simulate", "--capacity-mah", "1", "--json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["inferences"] == 617


def test_profile_capacity_1e308_is_refused_not_overflowed(tmp_path):
    doc = yaml.safe_load(dump_profile(load_profile("rt3-paper")))
    doc["battery"]["capacity_mah"] = 1e308
    path = tmp_path / "huge.yaml"
    path.write_text(yaml.safe_dump(doc))
    r = rt3lab("simulate", "--profile", str(path))
    assert r.code == 2
    assert f"{path}: battery.capacity_mah: must be <= 1e+06" in r.stderr
    assert "OverflowError" not in r.stderr


def test_sweep_with_an_unbounded_capacity_is_refused_before_any_cell(tmp_path):
    cfg = tmp_path / "s.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {"profiles": ["rt3-paper"], "policies": ["rt3"], "capacities_mah": [0.3, 1e300]}
        )
    )
    out = tmp_path / "o"
    t0 = time.process_time()  # CPU time (threads included): a shared machine cannot inflate it
    r = rt3lab("sweep", str(cfg), "--out", str(out), "--threads", "--workers", "1")
    assert r.code == 2, r
    assert r.stderr.strip().startswith(f"rt3lab: error: {cfg}: capacities_mah[1]: simulate")
    assert "2**53" in r.stderr and r.stderr.count("\n") == 1
    assert not (out / "cells").exists()
    assert time.process_time() - t0 < 10


def test_profile_rel_ci_negative_is_refused(tmp_path):
    r = rt3lab(
        "profile",
        "--board",
        "rt3-paper",
        "--bundle",
        str(tmp_path),
        "--out",
        str(tmp_path / "p.yaml"),
        "--rel-ci",
        "-1",
        "--cpufreq-root",
        str(tmp_path),
    )
    assert r.code == 2
    assert r.stderr.strip() == "rt3lab: error: --rel-ci: must be a fraction in (0, 1), got -1.0"


def test_failed_sweep_cells_are_retried_on_rerun_and_named(tmp_path):
    trace = tmp_path / "trace.csv"
    cfg = tmp_path / "s.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "profiles": ["rt3-paper"],
                "policies": ["rt3"],
                "capacities_mah": [0.3],
                "workloads": ["continuous", f"trace:{trace}"],
            }
        )
    )
    out = tmp_path / "o"
    args = ("sweep", str(cfg), "--out", str(out), "--threads", "--workers", "1", "--json")
    first = rt3lab(*args)
    assert first.code == 0, first.stderr
    rec = json.loads(first.stdout)
    assert (rec["ran"], rec["errors"]) == (2, 1)
    assert len(rec["failed"]) == 1
    assert rec["failed"][0].startswith(f"rt3-paper/rt3/profile battery/0.3 mAh/trace:{trace}")
    assert "no such trace file" in rec["failed"][0]

    trace.write_text("time_s\n0.0\n0.5\n1.0\n")  # the cause is fixed: the rerun retries it
    second = rt3lab(*args)
    rec = json.loads(second.stdout)
    assert (rec["ran"], rec["skipped"], rec["retried"], rec["errors"]) == (1, 1, 1, 0)
    assert rec["failed"] == []

    from simulator.sweep import read_sweep

    df = read_sweep(out)
    assert len(df) == 2 and df["error"].isna().all()  # the success replaces the failure
    assert len(list((out / "cells").rglob("*.parquet"))) == 2  # the failed row is kept on disk
    from reports.sweep_summary import load_sweep

    rows, _ = load_sweep(out)  # the report counts the retried cell once, as a success
    assert len(rows) == 2 and rows["error"].isna().all()

    third = rt3lab(*args)
    assert json.loads(third.stdout)["ran"] == 0


def test_no_retry_failed_skips_failed_cells(tmp_path):
    cfg = tmp_path / "s.yaml"
    missing = tmp_path / "missing.csv"
    cfg.write_text(
        yaml.safe_dump(
            {"profiles": ["rt3-paper"], "policies": ["rt3"], "workloads": [f"trace:{missing}"]}
        )
    )
    args = ("sweep", str(cfg), "--out", str(tmp_path / "o"), "--threads", "--workers", "1")
    assert json.loads(rt3lab(*args, "--json").stdout)["errors"] == 1
    again = rt3lab(*args, "--json", "--no-retry-failed")
    assert json.loads(again.stdout)["skipped"] == 1
    plain = rt3lab(*args)
    assert "1 retried after an error" in plain.stdout
    assert f"failed: rt3-paper/rt3/profile battery/profile capacity/trace:{missing}" in plain.stdout


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("profiles: [rt3-paper\npolicies: [rt3]\n", "YAML syntax error at line 2, column 9"),
        ("profiles: [rt3-paper]\nprofiles: [pixel-3]\npolicies: [rt3]\n", "line 2"),
    ],
)
def test_sweep_yaml_errors_are_one_line_naming_file_and_line(tmp_path, text, needle):
    cfg = tmp_path / "s.yaml"
    cfg.write_text(text)
    r = rt3lab("sweep", str(cfg), "--out", str(tmp_path / "o"))
    assert r.code == 2
    assert r.stderr.count("\n") == 1 and f"{cfg}: " in r.stderr and needle in r.stderr


def test_binary_sweep_yaml_names_the_file(tmp_path):
    cfg = tmp_path / "s.yaml"
    cfg.write_bytes(b"\x89PNG\r\n\x1a\n\xff")
    r = rt3lab("sweep", str(cfg), "--out", str(tmp_path / "o"))
    assert r.code == 2
    assert (
        r.stderr.strip() == f"rt3lab: error: {cfg}: not a UTF-8 text file (byte 0x89 at offset 0)"
    )
