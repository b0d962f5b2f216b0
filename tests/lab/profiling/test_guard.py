"""The board's governor comes back however a run ends: SIGINT and SIGTERM in a real
subprocess, and an exception in-process."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from profiling_fakes import FakeKernel, make_cpufreq_tree, snapshot

from lab.profiling.board.cpufreq import CpufreqControl
from lab.profiling.board.guard import restoring
from lab.profiling.board.sysfs import LocalFiles

LEVELS = [500000, 1000000, 1500000]

SCRIPT = """
import sys, time
from lab.profiling.board.cpufreq import CpufreqControl
from lab.profiling.board.guard import restoring
from lab.profiling.board.sysfs import LocalFiles
c = CpufreqControl(LocalFiles(sys.argv[1]), settle_timeout_s=5)
try:
    with restoring(c):
        c.set_khz(500000)
        print("READY", flush=True)
        time.sleep(60)
except KeyboardInterrupt as exc:
    print("INTERRUPTED", type(exc).__name__, flush=True)
    sys.exit(130)
"""


def _default_signals() -> None:
    # A test runner started in the background (``cmd &``, ``nohup``) passes SIGINT or SIGHUP
    # on ignored, and Python then installs no KeyboardInterrupt handler.
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_restores_governor_in_a_subprocess(tmp_path, sig):
    d = make_cpufreq_tree(tmp_path, LEVELS, governor="powersave")
    before = snapshot(d)
    with FakeKernel(d) as kernel:
        proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=_default_signals,  # as from a terminal, whatever launched the tests
        )
        try:
            assert proc.stdout.readline().strip() == "READY"
            assert (d / "scaling_governor").read_text().strip() == "userspace"
            assert kernel.khz == 500000
            proc.send_signal(sig)
            out, _ = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
        time.sleep(0.02)
    assert proc.returncode == 130
    assert "INTERRUPTED" in out
    assert snapshot(d) == before
    assert kernel.khz == 500000  # powersave: min again


def test_exception_restores_and_propagates(tmp_path):
    d = make_cpufreq_tree(tmp_path, LEVELS, governor="performance")
    before = snapshot(d)
    c = CpufreqControl(LocalFiles(tmp_path))
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    with FakeKernel(d), pytest.raises(RuntimeError, match="boom"), restoring(c):
        c.set_khz(1000000)
        raise RuntimeError("boom")
    assert snapshot(d) == before
    assert {s: signal.getsignal(s) for s in handlers} == handlers


def test_an_ignored_hangup_stays_ignored(tmp_path):
    """Under nohup, SIGHUP is ignored on purpose: the guard must not make it fatal."""
    d = make_cpufreq_tree(tmp_path, LEVELS, governor="performance")
    before = snapshot(d)
    c = CpufreqControl(LocalFiles(tmp_path))
    prev = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    prev_term = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with FakeKernel(d), restoring(c):
            c.set_khz(1000000)
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # still caught
        assert snapshot(d) == before
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, prev)
        signal.signal(signal.SIGTERM, prev_term)
