"""Captures against the emulators through real pyserial on a pty: nothing lost, energy exact."""

import numpy as np
import pytest

from power_meter.emulators import Fault
from power_meter.sample import Flag
from power_meter.waveform import Waveform


def distinct_steps(seconds, period=0.5):
    """A step every meter period with a distinct power, so every update is recognisable."""
    n = int(seconds / period) + 4
    t = np.arange(n) * period
    return Waveform.steps(t.tolist(), (1.0 + 0.001 * np.arange(n)).tolist(), 5.0)


def assert_no_lost_updates(emu, df):
    powers = df.loc[(df["flags"] & int(Flag.GAP | Flag.REPEAT)) == 0, "power_w"].round(3).tolist()
    powers = [p for p in powers if p > 0]  # the reading before the meter's first update
    updates = [round(u.power_w, 3) for u in emu.updates]
    i0 = updates.index(powers[0])
    assert powers == updates[i0 : i0 + len(powers)], "an update was lost or repeated"
    assert i0 <= 1
    assert len(updates) - (i0 + len(powers)) <= 1  # at most the update after the last poll
    return len(powers)


def energy_error(w, df, summary):
    t = df.t_host_s.to_numpy()
    # The first sample's interval is not integrated: compare from the first sample on.
    want = w.energy(t[0], t[-1])
    return abs(summary.energy_j - want) / want


def um34c_capture(cap, emulated_s, accel):
    w = distinct_steps(emulated_s)
    emu, summary, df, meter = cap("um34c", w, emulated_s / accel + 0.05, accel=accel)
    n = assert_no_lost_updates(emu, df)
    assert summary.gaps == [] and meter.stats.bad_frames == 0
    assert n >= emulated_s / 0.5 - 2
    err = energy_error(w, df, summary)
    assert err < 0.005
    print(f"UM34C {emulated_s} s: updates={len(emu.updates)} samples={n} energy error={err:.4%}")
    return summary


def test_um34c_accelerated_capture_loses_no_frame(cap):
    um34c_capture(cap, emulated_s=15, accel=5)


@pytest.mark.slow
def test_um34c_ten_minute_capture_loses_no_frame(cap):
    s = um34c_capture(cap, emulated_s=600, accel=5)
    print(f"UM34C 600 s: samples={s.samples} repeats={s.repeats} energy={s.energy_j:.3f} J")


@pytest.mark.parametrize("driver", ["um24c", "um25c", "tc66c"])
def test_other_poll_meters_lose_no_frame(cap, driver):
    w = distinct_steps(5)
    emu, summary, df, _ = cap(driver, w, 1.05, accel=5)
    assert_no_lost_updates(emu, df)
    assert energy_error(w, df, summary) < 0.005


def ppk2_stream(cap, seconds):
    w = Waveform.steps([0, 0.25, 0.5, 0.75], [0.002, 0.5, 0.04, 1.2], 3.3)
    pattern = Waveform.steps(
        (np.arange(int(seconds * 4) + 8) * 0.25).tolist(),
        np.resize(w.power_w, int(seconds * 4) + 8).tolist(),
        3.3,
    )
    emu, summary, df, meter = cap("ppk2", pattern, seconds)
    assert meter.stats.drops == 0 and meter.stats.bad_frames == 0
    assert emu.dropped_overflow == 0
    assert summary.gaps == []
    # The stream kept up: nearly all of the capture's 100 kS/s arrived and was written.
    assert summary.samples >= 0.95 * seconds * 1e5
    assert summary.samples == len(df)
    idx = np.round((df.t_host_s.to_numpy() - df.t_host_s.iloc[0]) * 1e5)
    assert np.all(np.diff(idx) == 1), "timestamps follow the 100 kS/s sample clock"
    err = energy_error(pattern, df, summary)
    assert err < 0.005
    print(f"PPK2 {seconds} s: samples={summary.samples} drops=0 energy error={err:.4%}")
    return summary


def test_ppk2_stream_has_no_drops(cap):
    ppk2_stream(cap, 2.0)


@pytest.mark.slow
def test_ppk2_stream_60_s_has_no_drops(cap):
    s = ppk2_stream(cap, 60.0)
    print(f"PPK2 60 s: samples={s.samples} energy={s.energy_j:.4f} J")


def test_ppk2_injected_drops_are_counted_exactly(cap):
    faults = [Fault("drop", 0.3, n=5), Fault("drop", 0.6, n=63), Fault("drop", 0.9, n=1)]
    emu, summary, df, _ = cap("ppk2", Waveform.constant(0.05, 3.3), 1.3, faults=faults)
    assert emu.dropped_injected == 69
    assert summary.drops == 69
    assert int(((df["flags"] & int(Flag.DROP)) != 0).sum()) == 3
    assert summary.gaps == []
