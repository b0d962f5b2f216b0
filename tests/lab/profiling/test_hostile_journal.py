"""Issue 31: a restore journal is input, and may be hostile (planted, damaged, not a file).

`rt3lab profile restore` reads a journal left in the cache and writes what it holds to
sysfs and to `adb shell`. Every test plants a journal, runs the real CLI in a subprocess
(with tests/lab/profiling/fake_adb.py as `adb` on PATH where a phone is involved) and checks
that nothing outside the journal's meaning happens: one line, exit 2, the board untouched.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from profiling_fakes import FakeKernel, make_cpufreq_tree, snapshot
from test_profile_cli import install_fake_adb

from lab.profiling.board.journal import Journal

LEVELS = [600000, 1000000, 2000000]
POLICY = "/devices/system/cpu/cpufreq/policy4"


def journal(**changes):
    good = {
        "board": "adb:S",
        "policy_dir": POLICY,
        "where": f"adb:S:/sys{POLICY}",
        "state": {"governor": "schedutil", "min_khz": 600000, "max_khz": 2000000,
                  "setspeed_khz": None},
        "daemons": ["thermal-engine", "perfd"],
        "pid": 2**31 - 2,  # no such process: the run that wrote it is gone
        "written": "2024-01-01T00:00:00Z",
    }  # fmt: skip
    state = changes.pop("state", {})
    return {**good, **changes, "state": {**good["state"], **state}}


@pytest.fixture
def phone(tmp_path, monkeypatch):
    """A fake phone (its /sys under tmp_path) behind the fake adb, and a private cache."""
    monkeypatch.setenv("RT3LAB_CACHE", str(tmp_path / "cache"))
    install_fake_adb(tmp_path, monkeypatch)
    d = make_cpufreq_tree(tmp_path / "sys", LEVELS, cpus=(4, 5))
    (d / "scaling_governor").write_text("userspace\n")  # as a killed run left it
    return d, Journal.for_board(adb="S")


def plant(j: Journal, content) -> None:
    j.path.parent.mkdir(parents=True, exist_ok=True)
    j.path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())


def restore(*board, timeout=60):
    argv = [sys.executable, "-m", "lab", "profile", "restore", *map(str, board)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=os.environ.copy())  # fmt: skip


def refused(r, needle):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    line = r.stderr.strip()
    assert "\n" not in line and "Traceback" not in line and needle in line, line
    return line


def test_a_planted_journal_restores_the_phone(phone):
    d, j = phone
    plant(j, journal())
    r = restore("--adb", "S")
    assert r.returncode == 0, r.stderr
    assert (d / "scaling_governor").read_text().strip() == "schedutil"
    assert not j.path.exists()


def test_a_daemon_name_cannot_run_a_command_on_the_device(phone, tmp_path):
    """`start {d}` went unquoted to `adb shell`: the journal ran `touch` on the device."""
    d, j = phone
    pwned = tmp_path / "PWNED"
    plant(j, journal(daemons=[f"perfd; touch {pwned}"]))
    before = snapshot(d)
    refused(restore("--adb", "S"), "field daemons.0")
    assert not pwned.exists() and snapshot(d) == before
    assert j.path.exists()  # kept for the user to look at


def test_a_policy_directory_cannot_leave_the_sysfs_root(tmp_path, monkeypatch):
    """`policy_dir: /../../outside` made `restore --cpufreq-root R` write outside R."""
    monkeypatch.setenv("RT3LAB_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "board" / "sys"
    make_cpufreq_tree(root, LEVELS)
    outside = make_cpufreq_tree(tmp_path / "victim", LEVELS)  # a cpufreq-like tree elsewhere
    before = snapshot(outside)
    rel = os.path.relpath(outside, root)  # ../../victim/devices/...
    j = Journal.for_board(root)
    plant(j, journal(board=j.board, policy_dir="/" + rel, daemons=[]))
    refused(restore("--cpufreq-root", root), "field policy_dir")
    assert snapshot(outside) == before


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"state": {"min_khz": True}}, "field state.min_khz"),
        ({"state": {"min_khz": -5}}, "field state.min_khz"),
        ({"state": {"max_khz": 1e30}}, "field state.max_khz"),
        ({"state": {"min_khz": 2000000, "max_khz": 600000}}, "min_khz 2000000 is above"),
        ({"state": {"governor": "performance\nschedutil"}}, "field state.governor"),
        ({"extra": 1}, "field extra"),
        ({"daemons": "perfd"}, "field daemons"),
        ({"pid": "1"}, "field pid"),
    ],
)
def test_journal_values_are_checked_before_they_reach_sysfs(phone, changes, needle):
    d, j = phone
    plant(j, journal(**changes))
    before = snapshot(d)
    refused(restore("--adb", "S"), needle)
    assert snapshot(d) == before


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b'{"board": "' + b"x" * (20 << 20) + b'"}', "more than the 65536 a journal may have"),
        (b"\x00\xff\xfe binary", "byte 0xff at offset 1 is not UTF-8"),
        (b"[1, 2", "not JSON"),
        (b"[]", "field (top level)"),
    ],
)
def test_a_journal_that_is_not_one_is_named(phone, content, needle):
    _, j = phone
    plant(j, content)
    refused(restore("--adb", "S"), needle)


def test_a_journal_that_is_a_fifo_does_not_hang(phone):
    _, j = phone
    j.path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(j.path)
    refused(restore("--adb", "S", timeout=60), "not a regular file (a FIFO)")


def test_adb_started_while_restoring_can_be_interrupted(phone, tmp_path, monkeypatch):
    """The guard ignores SIGINT, SIGTERM and SIGHUP while it restores; the adb it starts
    then must not inherit that (an ignored signal stays ignored across exec)."""
    from lab.profiling.board.adb import AndroidControl
    from lab.profiling.board.guard import restoring

    d, _ = phone
    log = tmp_path / "sigign.log"
    wrapper = tmp_path / "bin" / "adb"
    # Log the ignored-signal mask of every adb process before running the fake one.
    wrapper.write_text(
        f"#!/bin/sh\ngrep SigIgn /proc/$$/status >> {log}\n" + wrapper.read_text().split("\n", 1)[1]
    )
    (d / "scaling_governor").write_text("schedutil\n")
    with FakeKernel(d), restoring(AndroidControl(serial="S", policy="4")) as control:
        control.set_khz(1000000)
        log.write_text("")  # from here on: the restore's adb calls
    masks = [int(line.split()[1], 16) for line in log.read_text().splitlines()]
    assert masks, "the restore ran no adb"
    held = (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGHUP - 1))
    assert all(m & held == 0 for m in masks), [hex(m) for m in masks]
