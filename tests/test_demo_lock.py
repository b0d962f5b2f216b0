"""Issue 19, defect 11: two demos on one cache take turns instead of colliding on
``bundle.partial`` (OSError: Directory not empty). Real processes, a real OS file lock.
Two whole demos at once on one cache: tests/test_demo.py (it copies that module's cold
demo's cache)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

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
