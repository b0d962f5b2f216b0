"""Energy windows over the live stream: nesting, exact energy, unreliable short windows."""

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from power_meter.drivers import make_meter
from power_meter.emulators import PPK2Emulator, UMEmulator
from power_meter.sample import Flag, MeterError, SampleBatch
from power_meter.waveform import Waveform
from power_meter.windows import EnergyMonitor, window_energy


def batch(t, p, flags=None):
    n = len(t)
    f = np.zeros(n, dtype=np.int64) if flags is None else np.asarray(flags)
    return SampleBatch(np.asarray(t, float), np.ones(n), np.ones(n), np.asarray(p, float), f)


@given(st.floats(0, 10), st.floats(0, 10), st.floats(0, 10))
def test_window_energy_is_additive(a, b, c):
    t = np.linspace(0, 10, 41)
    b_ = batch(t, np.sin(t) + 2)
    lo, mid, hi = sorted([a, b, c])
    whole = window_energy(b_, lo, hi)[0]
    parts = window_energy(b_, lo, mid)[0] + window_energy(b_, mid, hi)[0]
    assert whole == pytest.approx(parts, abs=1e-9)


def test_window_touching_a_gap_is_flagged_and_not_filled():
    b = batch([0, 1, 1, 4, 5], [2, 2, np.nan, 2, 2], [0, 0, Flag.GAP, Flag.AFTER_GAP, 0])
    e, _, touches = window_energy(b, 0, 5)
    assert e == 4.0 and touches
    assert window_energy(b, 4, 5) == (2.0, 2, False)


def test_nested_windows_on_a_ppk2_stream():
    w = Waveform.steps([0, 0.3, 0.6], [0.1, 0.9, 0.3], 3.3)
    with PPK2Emulator(w) as emu:
        meter = make_meter("ppk2", emu.port, clock=emu.clock)
        meter.open()
        try:
            with EnergyMonitor(meter) as mon:
                time.sleep(0.1)
                c = [emu.clock()]
                mon.begin_window("outer")
                c.append(emu.clock())
                time.sleep(0.2)
                c.append(emu.clock())
                mon.begin_window("inner")
                c.append(emu.clock())
                time.sleep(0.5)
                c.append(emu.clock())
                inner = mon.end_window("inner")
                c.append(emu.clock())
                time.sleep(0.1)
                c.append(emu.clock())
                outer = mon.end_window("outer")
                c.append(emu.clock())
                with pytest.raises(MeterError, match="inner"):
                    mon.end_window("inner")
        finally:
            meter.close()
    assert inner.reliable and outer.reliable
    assert outer.duration_s > inner.duration_s > 0.45
    # Each window edge lies between the clock readings around the call that set it.
    for r, (b0, b1, e0, e1) in ((inner, c[2:6]), (outer, (c[0], c[1], c[6], c[7]))):
        assert b0 <= r.duration_s and e0 - b1 <= r.duration_s <= e1 - b0
        assert w.energy(b1, e0) * 0.995 <= r.energy_j <= w.energy(b0, e1) * 1.005
    assert inner.samples > 45_000
    assert outer.mean_power_w == pytest.approx(outer.energy_j / outer.duration_s)


def test_window_shorter_than_the_update_period_is_unreliable():
    with UMEmulator(Waveform.constant(2.0, 5.0), accel=10) as emu:
        meter = make_meter("um34c", emu.port, clock=emu.clock, poll_interval_s=0.0125)
        meter.open()
        try:
            with EnergyMonitor(meter) as mon:
                time.sleep(0.15)
                mon.begin_window("short")
                time.sleep(0.01)  # 0.1 emulated s, under the meter's 0.5 s
                short = mon.end_window("short")
                mon.begin_window("long")
                time.sleep(0.3)
                long = mon.end_window("long")
        finally:
            meter.close()
    assert not short.reliable
    assert long.reliable and long.mean_power_w == pytest.approx(2.0, rel=1e-3)
