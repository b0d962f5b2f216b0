"""``rt3lab sweep --scheduler ADDRESS`` on a real dask.distributed cluster: a scheduler and
two workers started with the ``dask scheduler`` / ``dask worker`` commands as separate
processes on localhost; one worker is killed mid-sweep and the dataset still matches a
serial run cell for cell."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from simulator.sweep import cells, load_sweep_config, read_sweep, run_cell

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CONFIG = {
    "profiles": ["rt3-paper"],
    "policies": ["rt3", "dvfs-only", "static-sparse"],
    "battery_models": ["ideal", "kibam", "thevenin"],
    # exact mode on small batteries: each cell a few thousand requests, tens of ms
    "capacities_mah": [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5],
    "workloads": ["continuous", "periodic:5"],
    "seeds": [0],
    "mode": "exact",
}
KEEP = ["battery_life_s", "inferences", "deadline_misses", "energy_j", "switches"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask(*args: str, env: dict[str, str]) -> subprocess.Popen:
    exe = BIN / "dask"
    cmd = (
        [str(exe), *args]
        if exe.exists()
        else [sys.executable, "-m", "distributed.cli.dask_" + args[0], *args[1:]]
    )
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
    )


@pytest.fixture
def cluster():
    """(address, [worker processes]) of a scheduler and two single-threaded workers."""
    from dask.distributed import Client

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    address = f"tcp://127.0.0.1:{_free_port()}"
    port = address.rsplit(":", 1)[1]
    procs = [_dask("scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard", env=env)]
    try:
        workers = [
            _dask(
                "worker",
                address,
                "--nthreads",
                "1",
                "--no-nanny",  # one process per worker: killing it kills the worker
                "--no-dashboard",
                "--name",
                f"w{i}",
                env=env,
            )
            for i in range(2)
        ]
        procs += workers
        with Client(address, timeout="60s") as c:
            c.wait_for_workers(2, timeout=60)
        yield address, workers
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.mark.slow
def test_sweep_on_a_dask_cluster_survives_a_killed_worker_and_matches_serial(cluster, tmp_path):
    address, workers = cluster
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    out = tmp_path / "o"
    cmd = [
        str(BIN / "rt3lab"),
        "sweep",
        str(path),
        "--scheduler",
        address,
        "--out",
        str(out),
        "--batch-size",
        "4",
        "--json",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    sweep = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    total = len(cells(load_sweep_config(path)))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.rglob("part-*.parquet"))) < 3:
        time.sleep(0.02)
    written_at_kill = len(list(out.rglob("part-*.parquet")))
    workers[0].send_signal(signal.SIGKILL)
    stdout, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, err.decode()
    assert workers[0].wait(timeout=10) == -signal.SIGKILL
    assert 0 < written_at_kill < total / 4, "the worker was not killed mid-sweep"
    record = json.loads(stdout)
    assert record["ran"] == record["cells"] == total and record["errors"] == 0

    df = read_sweep(out).sort_values("cell_id").reset_index(drop=True)
    assert df["cell_id"].is_unique and len(df) == total and df["error"].isna().all()
    serial = [run_cell(c) for c in cells(load_sweep_config(path))]
    import pandas as pd

    ref = pd.DataFrame(serial).sort_values("cell_id").reset_index(drop=True)
    assert list(df["cell_id"]) == list(ref["cell_id"])
    pd.testing.assert_frame_equal(df[KEEP], ref[KEEP], check_dtype=False)
