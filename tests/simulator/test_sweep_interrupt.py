"""Ctrl-C during ``rt3lab sweep``: one line, exit 130 (issue 31).

A terminal's Ctrl-C sends SIGINT to every process of the foreground group: the client and
its local dask workers. The workers each printed a traceback (62 lines for two); now only
the client sees the signal, cancels the sweep, closes the cluster and says so in one line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ctrl_c_to_the_process_group_is_one_line_and_exit_130(tmp_path):
    config = tmp_path / "s.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "profiles": ["rt3-paper"],
                "policies": ["rt3", "dvfs-only"],
                "battery_models": ["ideal", "kibam"],
                "capacities_mah": [round(0.2 + 0.02 * i, 2) for i in range(10)],
                "seeds": list(range(50)),
            }
        )
    )
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "lab", "sweep", str(config), "--out", str(out)]
    cmd += ["--write-every", "0", "--batch-size", "5", "--json"]
    from foreground import foreground  # Ctrl-C reaches it as in a terminal

    proc = subprocess.Popen(
        foreground(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.rglob("part-*.parquet")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # as the terminal does: the whole group
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert stderr.decode() == "rt3lab: interrupted\n" and stdout == b""
