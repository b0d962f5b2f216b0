"""Helpers for capturing from emulators through real pyserial on a pty."""

from __future__ import annotations

import numpy as np
import pytest

from power_meter.drivers import make_meter
from power_meter.emulators import make_emulator
from power_meter.recorder import Recorder
from power_meter.sample import Flag
from power_meter.trace import read_trace

# A kit buffer no starved host outruns in a test (a real PPK2 overflows in about 0.16 s):
# where a test is not about overflow, the in-process emulator must not lose samples because
# a loaded machine kept the reader (or the emulator's own thread) waiting.
AMPLE_BUFFER = 256 << 20


def capture(tmp_path, driver, waveform, real_s, accel=1.0, faults=None, out="trace.csv",
            out_cap=None):  # fmt: skip
    """Record `real_s` seconds from an emulator; returns (emulator, summary, trace, meter).
    `out_cap`: bytes the emulated meter queues before it overflows (its default if None)."""
    emu = make_emulator(driver, waveform, accel=accel, faults=faults or [])
    if out_cap is not None:
        emu.out_cap = out_cap
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


def kit_samples(emu, df):
    """The trace's samples as the kit numbered them, and the stretch each one is in.

    The host reads the pty in order and keeps every sample it receives, so the trace's
    samples are the first ones the kit sent (`sent_numbers`): their numbers are the stream's
    own sample clock, which no load on the host can move. A gap row ends a stretch.
    """
    gap = ((df["flags"] & int(Flag.GAP)) != 0).to_numpy()
    rows = df[~gap]
    return rows, emu.sent_numbers(len(rows)), np.cumsum(gap)[~gap]
