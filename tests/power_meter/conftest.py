"""Helpers for capturing from emulators through real pyserial on a pty."""

from __future__ import annotations

import pytest

from power_meter.drivers import make_meter
from power_meter.emulators import make_emulator
from power_meter.recorder import Recorder
from power_meter.trace import read_trace


def capture(tmp_path, driver, waveform, real_s, accel=1.0, faults=None, out="trace.csv"):
    """Record `real_s` seconds from an emulator; returns (emulator, summary, trace, meter)."""
    emu = make_emulator(driver, waveform, accel=accel, faults=faults or [])
    with emu:
        poll = 0.125 / accel if driver != "ppk2" else None
        timeout = min(1.0, 2.0 / accel) if driver != "ppk2" else None
        meter = make_meter(driver, emu.port, clock=emu.clock, poll_interval_s=poll,
                           response_timeout_s=timeout)  # fmt: skip
        rec = Recorder(meter, tmp_path / out, driver, backoff_initial_s=0.02, backoff_max_s=0.2)
        summary = rec.run(real_s)
    return emu, summary, read_trace(tmp_path / out), meter


@pytest.fixture
def cap(tmp_path):
    """`capture` bound to this test's temporary directory."""
    return lambda *a, **k: capture(tmp_path, *a, **k)
