"""Sweeps on a dask.distributed LocalCluster: >= 1000 cells, interrupted and resumed with no
cell run twice; bad configurations; the report's sweep summary."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.cli import main
from simulator import POLICIES
from simulator.sweep import (
    MAX_BATCH,
    MIN_BATCH,
    Cell,
    SweepConfig,
    SweepConfigError,
    cells,
    finished_cell_ids,
    load_sweep_config,
    plan_batches,
    read_sweep,
    run_sweep,
    start_client,
    validate_config,
)

sys.path.insert(0, str(Path(__file__).parents[1] / "reports"))  # the report's HTML reader

BIG = {
    "profiles": ["rt3-paper"],
    "policies": list(POLICIES),
    "battery_models": ["ideal", "peukert", "kibam", "thevenin"],
    # Tiny batteries keep each cell to a few hundred inferences in fast mode.
    "capacities_mah": [round(0.2 + 0.02 * i, 2) for i in range(13)],
    "workloads": ["continuous", "periodic:5"],
    "seeds": [0, 1],
}


def write_config(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def client():
    c = start_client("local", workers=2, processes=False)
    yield c
    cluster = c.cluster
    c.close()
    cluster.close()


class Interrupt(Exception):
    """Stands for Ctrl-C arriving mid-sweep."""


def test_thousand_cells_interrupted_then_resumed_without_rerunning_a_cell(client, tmp_path):
    cfg = validate_config(BIG)
    every = cells(cfg)
    assert len(every) >= 1000
    out = tmp_path / "sweep"
    seen_batches = []

    def stop_after_three(done, pending):
        seen_batches.append(done)
        if len(seen_batches) == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_sweep(cfg, out, client, batch_size=40, on_batch=stop_after_three)
    first = finished_cell_ids(out)
    assert len(first) == seen_batches[-1] == 120
    summary = run_sweep(cfg, out, client, batch_size=40)
    assert summary.skipped == len(first)
    assert summary.ran == len(every) - len(first)
    df = read_sweep(out)
    counts = Counter(df["cell_id"])
    assert len(df) == len(every) and max(counts.values()) == 1
    assert set(counts) == {c.cell_id for c in every}
    assert summary.errors == 0 and df["error"].isna().all()
    assert (df["inferences"] > 0).all()
    # A third run finds nothing to do.
    again = run_sweep(cfg, out, client)
    assert again.ran == 0 and again.skipped == len(every)


def test_cell_results_match_a_direct_simulation(client, tmp_path):
    from simulator import simulate

    cfg = validate_config({**BIG, "capacities_mah": [0.3], "seeds": [3]})
    run_sweep(cfg, tmp_path, client)
    df = read_sweep(tmp_path).set_index("cell_id")
    for c in cells(cfg)[:6]:
        res = simulate(
            c.profile,
            policy=c.policy,
            battery_model=c.battery_model,
            workload=c.workload,
            mode=c.mode,
            seed=c.seed,
            capacity_mah=c.capacity_mah,
        )
        row = df.loc[c.cell_id]
        assert row["inferences"] == res.inferences
        assert row["battery_life_s"] == pytest.approx(res.battery_life_s, rel=1e-12)
        assert row["policy"] == c.policy


def test_cell_ids_are_stable_and_distinct():
    a = Cell("rt3-paper", None, 10.0, "continuous", "rt3", 0, "fast")
    assert a.cell_id == Cell("rt3-paper", None, 10.0, "continuous", "rt3", 0, "fast").cell_id
    ids = {c.cell_id for c in cells(validate_config(BIG))}
    assert len(ids) == len(cells(validate_config(BIG)))


@settings(max_examples=40, deadline=None)
@given(
    policies=st.lists(st.sampled_from(POLICIES), min_size=1, max_size=5, unique=True),
    n_caps=st.integers(1, 12),
    size=st.integers(1, 30),
)
def test_batches_cover_every_cell_once_within_one_policy(policies, n_caps, size):
    cfg = validate_config(
        {
            "profiles": ["rt3-paper"],
            "policies": policies,
            "capacities_mah": list(range(1, n_caps + 1)),
        }
    )
    batches = plan_batches(cells(cfg), size)
    flat = [c.cell_id for b in batches for c in b]
    assert sorted(flat) == sorted(c.cell_id for c in cells(cfg))
    assert all(0 < len(b) <= size and len({c.policy for c in b}) == 1 for b in batches)


@settings(max_examples=60, deadline=None)
@given(
    policies=st.lists(st.sampled_from(POLICIES), min_size=1, max_size=5, unique=True),
    n_caps=st.integers(1, 400),
    workers=st.integers(1, 8),
)
def test_guided_batches_cover_every_cell_once_and_end_small(policies, n_caps, workers):
    cfg = SweepConfig(profiles=["rt3-paper"], policies=policies, capacities_mah=[*range(n_caps)])
    every = cells(cfg)
    batches = plan_batches(every, workers=workers)
    flat = [c.cell_id for b in batches for c in b]
    assert sorted(flat) == sorted(c.cell_id for c in every)
    assert all(0 < len(b) <= MAX_BATCH and len({c.policy for c in b}) == 1 for b in batches)
    # the tail is short: the last task of each worker is a small one
    assert all(len(b) <= MIN_BATCH for b in batches[-workers:])
    # and a small sweep still gives every worker several tasks
    assert len(batches) >= min(len(every), 4 * workers)


def test_batches_are_written_as_they_arrive_and_all_at_the_end(client, tmp_path, monkeypatch):
    import simulator.sweep as sweep

    cfg = validate_config({**BIG, "capacities_mah": [0.3], "seeds": [0, 1, 2]})
    on_disk = []
    monkeypatch.setattr(sweep, "WRITE_EVERY_S", 0.0)
    run_sweep(
        cfg,
        tmp_path / "now",
        client,
        batch_size=10,
        on_batch=lambda d, _p: on_disk.append((d, len(finished_cell_ids(tmp_path / "now")))),
    )
    assert on_disk and all(done == written for done, written in on_disk)
    monkeypatch.setattr(sweep, "WRITE_EVERY_S", 3600.0)
    on_disk.clear()
    summary = run_sweep(
        cfg,
        tmp_path / "later",
        client,
        batch_size=10,
        on_batch=lambda d, _p: on_disk.append(len(finished_cell_ids(tmp_path / "later"))),
    )
    assert on_disk and set(on_disk) == {0}  # held on the client until the run ends
    assert len(finished_cell_ids(tmp_path / "later")) == summary.ran == len(cells(cfg))


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"profiles": ["no-such-board"], "policies": ["rt3"]}, "profiles[0]: unknown profile"),
        (
            {"profiles": ["rt3-paper"], "policies": ["greedy"]},
            "policies[0]: unknown policy 'greedy'",
        ),
        (
            {"profiles": ["rt3-paper"], "policies": []},
            "policies: an empty list makes an empty sweep",
        ),
        ({"profiles": [], "policies": ["rt3"]}, "profiles: an empty list"),
        ({"profiles": ["rt3-paper"], "policies": ["rt3"], "seeds": []}, "seeds: an empty list"),
        (
            {"profiles": ["rt3-paper"], "policies": ["rt3"], "battery_models": ["lead"]},
            "unknown battery model",
        ),
        ({"profiles": ["rt3-paper"], "policies": ["rt3"], "capacities_mah": [0]}, "must be > 0"),
        ({"profiles": ["rt3-paper"], "policies": ["rt3"], "colour": "red"}, "colour"),
        (
            {"profiles": ["rt3-paper"], "policies": ["rt3"], "mode": "quick"},
            "mode: expected 'fast', 'exact' or 'mean', got 'quick'",
        ),
        ({"policies": ["rt3"]}, "profiles"),
    ],
)
def test_bad_configs_name_the_field(tmp_path, data, needle):
    path = write_config(tmp_path / "bad.yaml", data)
    with pytest.raises(SweepConfigError) as exc:
        load_sweep_config(path)
    assert needle in str(exc.value) and str(path) in str(exc.value)


def test_cli_bad_config_exits_2_with_one_line(tmp_path, capsys):
    path = write_config(tmp_path / "s.yaml", {"profiles": ["rt3-paper"], "policies": ["nope"]})
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(path), "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown policy 'nope'" in err


@pytest.mark.parametrize("value", ["-1", "nan"])
def test_cli_bad_write_interval_exits_2_with_one_line(tmp_path, capsys, value):
    path = write_config(tmp_path / "s.yaml", BIG)
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(path), "--out", str(tmp_path / "o"), "--write-every", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--write-every: expected seconds >= 0" in err
    assert not (tmp_path / "o").exists()


def test_cli_runs_on_an_existing_scheduler_address(client, tmp_path, capsys):
    import json

    data = {**BIG, "capacities_mah": [0.3], "seeds": [0], "workloads": ["continuous"]}
    path = write_config(tmp_path / "s.yaml", data)
    address = client.scheduler.address
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(path), "--scheduler", address, "--out", str(out), "--json"])
    assert exc.value.code in (0, None)
    record = json.loads(capsys.readouterr().out)
    assert record["ran"] == 4 * len(POLICIES)
    assert client.status == "running"  # the sweep closed its own client, not the cluster


def test_cli_sweep_then_report_summarises_it(tmp_path, capsys):
    import json

    from report_html import parse_report, png_payloads

    data = {**BIG, "capacities_mah": [0.3, 0.5], "seeds": [0], "workloads": ["continuous"]}
    path = write_config(tmp_path / "s.yaml", data)
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(path), "--out", str(out), "--threads", "--workers", "1", "--json"])
    assert exc.value.code in (0, None)
    record = json.loads(capsys.readouterr().out)
    assert record["ran"] == record["cells"] == 2 * 4 * len(POLICIES)
    with pytest.raises(SystemExit) as exc:
        main(["report", str(out), "--out", str(tmp_path / "rep")])
    parsed = parse_report(tmp_path / "rep" / "report.html")
    rows = parsed.tables["sweep"][1:]
    assert sum(int(r[4]) for r in rows) == record["cells"]
    assert "gain" in parsed.tables and len(png_payloads(parsed)) == 1


@pytest.mark.slow
def test_ctrl_c_on_the_cli_then_resume_runs_each_cell_once(tmp_path):
    """A real SIGINT to `rt3lab sweep` mid-run: exit 130, whole files only, then resume."""
    import json
    import signal
    import subprocess
    import time

    path = write_config(tmp_path / "s.yaml", {**BIG, "capacities_mah": BIG["capacities_mah"][:6]})
    out = tmp_path / "o"
    exe = str(Path(sys.executable).with_name("rt3lab"))
    # a file per task (--write-every 0), so that files appearing mean mid-run
    cmd = [exe, "sweep", str(path), "--out", str(out), "--threads", "--batch-size", "20"]
    from foreground import foreground  # Ctrl-C reaches it as in a terminal

    proc = subprocess.Popen(
        foreground([*cmd, "--write-every", "0"]), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(out.rglob("part-*.parquet"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert not list(out.rglob("*.tmp"))
    done = finished_cell_ids(out)
    total = len(cells(load_sweep_config(path)))
    assert 0 < len(done) < total
    res = subprocess.run([*cmd, "--json"], capture_output=True, timeout=120, check=True)
    record = json.loads(res.stdout)
    assert record["skipped"] == len(done) and record["ran"] == total - len(done)
    df = read_sweep(out)
    assert len(df) == total and df["cell_id"].is_unique


def test_local_workers_run_without_dask_profiler_sampling(client):
    # the profiler samples each running task's stack every 10 ms: CPU a sweep does not need
    def callbacks(dask_worker):
        return sorted(dask_worker.periodic_callbacks)

    for names in client.run(callbacks).values():
        assert "profile" not in names and "heartbeat" in names
