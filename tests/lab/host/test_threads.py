"""OpenMP workers sleep instead of spinning (set by the CLI before torch loads), unless the
user chose a policy; torch gets one thread per usable core unless OMP_NUM_THREADS says."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lab.host.threads import default_threads, usable_cores


def _policy_after_cli(env: dict[str, str]) -> str:
    code = (
        "import os, sys\n"
        "from lab.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, os.environ.get('OMP_WAIT_POLICY'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


def test_the_cli_sets_passive_before_torch_and_keeps_a_users_choice():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _policy_after_cli(env) == "False PASSIVE"
    assert _policy_after_cli({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "False ACTIVE"


def test_default_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert default_threads() == usable_cores() >= 1
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")
    assert default_threads() == usable_cores()


@pytest.mark.parametrize("bad", ["0", "-2", ""])
def test_a_bad_omp_num_threads_falls_back_to_the_cores(monkeypatch, bad):
    monkeypatch.setenv("OMP_NUM_THREADS", bad)
    assert default_threads() == usable_cores()
