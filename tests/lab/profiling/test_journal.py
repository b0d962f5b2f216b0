"""Issue 19, defect 3: SIGKILL during `rt3lab profile` leaves the board changed, but the
saved settings are in a journal on disk: `rt3lab profile restore` puts them back, and so does
the next `rt3lab profile` on that board (and says so). Real subprocesses, SIGKILL, a fake
sysfs tree with a fake kernel, and a fake adb on PATH."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import test_profile_cli
from profiling_fakes import snapshot

FAKE_ADB = test_profile_cli.FAKE_ADB
bundle = test_profile_cli.bundle  # the fixtures, shared
fake_board = test_profile_cli.fake_board


def env_for(tmp_path, **extra):
    return {**os.environ, "RT3LAB_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
            **extra}  # fmt: skip


def rt3lab(env, *args):
    return subprocess.run([sys.executable, "-m", "lab", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=180)  # fmt: skip


def kill_mid_run(env, d, *board_args, bundle_dir, emu, out):
    """Start `rt3lab profile`, SIGKILL it once it has pinned the board."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", "profile", "--bundle", str(bundle_dir), "--board",
         "odroid-xu4", *map(str, board_args), "--power", f"um34c:{emu.port}",
         "--levels", "600000,2000000", "--settle", "30", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while (d / "scaling_governor").read_text().strip() != "userspace":
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


def journals(tmp_path):
    return sorted((tmp_path / "cache" / "profiling").glob("restore-*.json"))


def test_sigkill_then_restore_and_then_the_next_run_restores_first(tmp_path, bundle, fake_board):
    root, d, emu, _ = fake_board
    before = snapshot(d)
    env = env_for(tmp_path)
    kill_mid_run(
        env, d, "--cpufreq-root", root, bundle_dir=bundle, emu=emu, out=tmp_path / "x.yaml"
    )
    assert snapshot(d) != before and (d / "scaling_governor").read_text().strip() == "userspace"
    assert len(journals(tmp_path)) == 1
    r = rt3lab(env, "profile", "restore", "--cpufreq-root", root)
    assert r.returncode == 0, r.stderr
    assert "restored" in r.stdout and "governor schedutil" in r.stdout
    assert snapshot(d) == before and journals(tmp_path) == []
    r = rt3lab(env, "profile", "restore", "--cpufreq-root", root)
    assert r.returncode == 0 and r.stdout.startswith("nothing to restore")
    # Killed again; this time the next profile run (here one that then fails) restores first.
    kill_mid_run(
        env, d, "--cpufreq-root", root, bundle_dir=bundle, emu=emu, out=tmp_path / "y.yaml"
    )
    assert snapshot(d) != before
    r = rt3lab(env, "profile", "--bundle", bundle, "--board", "odroid-xu4", "--cpufreq-root",
               root, "--power", f"um34c:{emu.port}", "--levels", "123456", "--out",
               tmp_path / "z.yaml")  # fmt: skip
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert "from the journal of an interrupted run" in lines[0] and "123456" in lines[-1]
    assert snapshot(d) == before and journals(tmp_path) == []


@pytest.mark.slow  # the cpufreq case above runs by default; this one adds the adb path
def test_sigkill_on_a_phone_then_restore_over_adb(tmp_path, bundle, fake_board):
    _, d, emu, _ = fake_board  # the phone's /sys is tmp_path/sys
    before = snapshot(d)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "adb").write_text(FAKE_ADB)
    (bin_dir / "adb").chmod(0o755)
    env = env_for(tmp_path, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_ADB_ROOT=str(tmp_path))
    # --engine torch: the journal is the point, not where the model runs (this fake phone
    # answers `uname -m` with the host's CPU, for which no phone runner is built)
    kill_mid_run(env, d, "--adb", "8A1X", "--policy", "cpu4", "--engine", "torch",
                 bundle_dir=bundle, emu=emu,
                 out=tmp_path / "phone.yaml")  # fmt: skip
    assert snapshot(d) != before and len(journals(tmp_path)) == 1
    services = tmp_path / "services.log"
    assert services.read_text().split() == ["stop", "thermal-engine", "stop", "perfd"]
    r = rt3lab(env, "profile", "restore", "--adb", "8A1X")
    assert r.returncode == 0, r.stderr
    assert "restarted" in r.stdout
    assert snapshot(d) == before and journals(tmp_path) == []
    assert sorted(services.read_text().splitlines()[2:]) == ["start perfd", "start thermal-engine"]
