"""Issue 19, defect 11: two demos on one cache take turns instead of colliding on
``bundle.partial`` (OSError: Directory not empty). Real processes, a real OS file lock."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

RT3LAB = str(Path(sys.executable).with_name("rt3lab"))
HOLD = """
import sys, time
from pathlib import Path
from lab.demo.run import cache_lock, plan
with cache_lock(plan(Path(sys.argv[1]), "rt3-paper", True).cache):
    print("held", flush=True)
    sys.stdin.readline()
"""


def env(tmp_path):
    return {**os.environ, "RT3LAB_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}


def test_a_second_demo_waits_for_the_first(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "a")], env=env(tmp_path),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    demo = None
    try:
        assert holder.stdout.readline().strip() == "held"
        demo = subprocess.Popen([RT3LAB, "demo", "--reduced", "--out", str(tmp_path / "b")],
                                env=env(tmp_path), stdout=subprocess.PIPE, text=True)  # fmt: skip
        line = demo.stdout.readline()
        assert line.startswith("waiting for another demo using "), line
        time.sleep(1.0)
        assert demo.poll() is None  # still waiting, and it touched nothing in the cache
        (key,) = (tmp_path / "cache" / "demo").iterdir()
        assert [p.name for p in key.iterdir()] == ["demo.lock"]
    finally:
        if demo is not None:
            demo.kill()
            demo.wait(timeout=30)
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=30)
    assert holder.returncode == 0


@pytest.mark.slow
@pytest.mark.timeout(3200)
def test_two_demos_at_once_both_finish(tmp_path):
    """About the reduced demo's time and a little more on 2 cores: the second run finds the
    cache. Each demo writes to files, not pipes: the test used to drain the first demo's
    pipes to the end before the second's, so a second demo that took the lock first could
    block on a full pipe (64 KiB; a cold reduced demo writes tens of KiB of progress on a
    loaded machine) while holding the lock, and both would hang until the timeout."""
    procs, logs = [], []
    try:
        for name in ("one", "two"):
            out = open(tmp_path / f"{name}.out", "w+")  # noqa: SIM115 (closed below)
            err = open(tmp_path / f"{name}.err", "w+")  # noqa: SIM115
            logs.append((out, err))
            procs.append(subprocess.Popen(
                [RT3LAB, "demo", "--reduced", "--out", str(tmp_path / name)],
                env=env(tmp_path), stdout=out, stderr=err, text=True,
            ))  # fmt: skip
        for p in procs:
            p.wait(timeout=1500)
    finally:
        for p in procs:  # never leave a demo running behind a failed test
            if p.poll() is None:
                p.kill()
                p.wait()
        for out, err in logs:
            out.close()
            err.close()
    outs = [((tmp_path / f"{n}.out").read_text(), (tmp_path / f"{n}.err").read_text())
            for n in ("one", "two")]  # fmt: skip
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
    assert sum("waiting for another demo" in out for out, _ in outs) == 1
    assert all((tmp_path / n / "report" / "report.html").is_file() for n in ("one", "two"))
