"""Captures against the emulators through real pyserial on a pty: nothing lost, energy exact."""

import itertools

import numpy as np
import pytest

from power_meter.emulators import Fault
from power_meter.ppk2 import CATCH_UP, adc_to_current, encode_current
from power_meter.sample import Flag, SampleBatch
from power_meter.waveform import Waveform
from tests.power_meter.conftest import AMPLE_BUFFER, kit_samples


def distinct_steps(seconds, period=0.5):
    """A step every meter period with a distinct power, so every update is recognisable."""
    n = int(seconds / period) + 4
    t = np.arange(n) * period
    return Waveform.steps(t.tolist(), (1.0 + 0.001 * np.arange(n)).tolist(), 5.0)


def assert_no_lost_updates(emu, df):
    """Every update the meter reported is in the trace once, in order, and nothing else.

    The meter's own sequence of updates (`emu.answered`: the update each good reply
    carried) is the clock: which updates a poll caught depends on when the host polled (a
    loaded host may poll too late for one), but each one it was sent it must keep.
    """
    powers = df.loc[(df["flags"] & int(Flag.GAP | Flag.REPEAT)) == 0, "power_w"].round(3).tolist()
    seen = [k for k, _ in itertools.groupby(emu.answered)]
    # Update 0 is the reading before the first update (0 W). The last reply may have been
    # in flight when the recording stopped.
    want = [round(emu.updates[k - 1].power_w, 3) if k else 0.0 for k in seen]
    bad = next((i for i, (a, b) in enumerate(zip(powers, want, strict=False)) if a != b), None)
    assert bad is None and 0 <= len(want) - len(powers) <= 1, (
        f"lost or repeated at {bad}: {powers[bad - 2 : bad + 3] if bad else powers[-3:]} "
        f"against {want[bad - 2 : bad + 3] if bad else want[-3:]}"
    )
    missed = len(emu.updates) + 1 - len(seen)
    print(f"{len(powers)} updates recorded; {missed} passed between two polls")
    return len(powers)


def energy_error(w, df, summary):
    """Relative error of the recorded energy against the waveform's over the intervals the
    recording integrated: between samples, never across a gap (a host starved long enough
    for the recorder to call it a stall leaves one)."""
    data = df[(df["flags"] & int(Flag.GAP)) == 0]
    t = data.t_host_s.to_numpy()
    after_gap = (data["flags"].to_numpy() & int(Flag.AFTER_GAP)) != 0
    steps = zip(t[:-1], t[1:], after_gap[1:], strict=True)
    want = sum(w.energy(a, b) for a, b, cut in steps if not cut)
    return abs(summary.energy_j - want) / want


def um34c_capture(cap, emulated_s, accel):
    w = distinct_steps(emulated_s)
    emu, summary, df, meter = cap("um34c", w, emulated_s / accel + 0.05, accel=accel)
    n = assert_no_lost_updates(emu, df)
    assert meter.stats.bad_frames == 0
    assert n >= 0.5 * emulated_s / 0.5  # the host kept polling (load may cost some updates)
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


P = 1e-5  # the PPK2's sample period


def kit_current(emu, n):
    """The current the kit reported for samples `n`, exactly as the driver decodes it."""
    t0 = emu.sample_start_s(n)
    words = encode_current(emu.waveform.mean_power(t0, t0 + P) / 3.3, 0, emu.cal, 3300)
    return adc_to_current(words & 0x3FFF, (words >> 14) & 7, emu.cal, 3300)


def assert_sample_clock(rows, n, stretch):
    """Within a stretch, sample k is stamped (n_k - n_0) x 10 us after sample 0: later only
    by the driver's 200 ppm drift allowance, earlier only while a timeline that a late
    first read put ahead catches up (1 % of an interval at most, and never by more than
    that first latency, 20 ms). The counter's positions (n, when nothing is lost) are the
    clock, not the host's wall time."""
    t = rows.t_host_s.to_numpy()
    for k in np.unique(stretch):
        m = stretch == k
        off = t[m] - n[m] * P
        assert np.all(np.diff(t[m]) > 0), "a sample stamped before the one before it"
        assert np.all(np.diff(off) >= -CATCH_UP * P * np.diff(n[m]) - 1e-9), "caught up fast"
        assert off.min() >= off[0] - 0.02, "stamped before its time"
        assert off[-1] - off.min() <= 2e-4 * np.ptp(t[m]) + 1e-6, "stretched over 200 ppm"


def ppk2_stream(cap, seconds):
    """Stream `seconds` at 100 kS/s from a kit whose buffer a loaded host cannot outrun, so
    nothing may be lost: every sample the kit sent up to the last one read is in the trace,
    in order, with its value; the counter counts no drop; the timestamps follow the sample
    clock. A starved in-process emulator can fall silent long enough to end a stretch (a gap,
    as a stalled kit makes): the properties hold in every stretch, and no gap hides a sample.
    """
    # A distinct power every millisecond (100 samples): a sample out of place shows.
    k = int(seconds * 1000) + 400
    pattern = Waveform.steps((np.arange(k) * 1e-3).tolist(),
                             (0.01 + 0.37 * (np.arange(k) % 7)).tolist(), 3.3)  # fmt: skip
    emu, summary, df, meter = cap("ppk2", pattern, seconds, out_cap=AMPLE_BUFFER)
    assert emu.dropped_overflow == 0 and meter.stats.bad_frames == 0
    rows, n, stretch = kit_samples(emu, df)
    assert summary.samples == len(rows) >= 0.5 * seconds * 1e5  # the host kept reading
    assert np.all(np.diff(n) == 1), "the kit lost samples: the setup is wrong"
    np.testing.assert_array_equal(rows.current_a.to_numpy(), kit_current(emu, n))
    assert meter.stats.drops == 0 and not (rows["flags"] & int(Flag.DROP)).any()
    assert len(summary.gaps) == stretch.max(initial=0)
    assert_sample_clock(rows, n, stretch)
    # Energy: the kit's own over the intervals integrated (each sample but a stretch's first).
    first = np.r_[True, np.diff(stretch) != 0]
    starts = emu.sample_start_s(n[~first])
    want = float(pattern.mean_power(starts, starts + P).sum()) * P
    err = abs(summary.energy_j - want) / want
    assert err < 0.005
    print(f"PPK2 {seconds} s: samples={summary.samples} stretches={stretch.max(initial=0) + 1}"
          f" energy error={err:.4%}")  # fmt: skip
    return summary


def test_ppk2_stream_has_no_drops(cap):
    ppk2_stream(cap, 2.0)


@pytest.mark.slow
def test_ppk2_stream_60_s_has_no_drops(cap):
    ppk2_stream(cap, 60.0)


def test_ppk2_kit_overflow_is_counted_where_it_happened(tmp_path):
    """A host that stops reading for 0.4 s makes the kit (0.16 s of buffer) lose samples:
    each loss is counted by the 6-bit counter exactly modulo 64 (the clock may add whole
    cycles) and flagged on the first sample after it; every other sample is kept in place."""
    import time

    from power_meter.emulators import PPK2Emulator
    from power_meter.ppk2 import PPK2Meter

    batches = []
    with PPK2Emulator(Waveform.constant(0.2, 3.3)) as emu:
        meter = PPK2Meter(emu.port, clock=emu.clock)
        meter.open()
        try:
            for pause in (0.0, 0.4, 0.0):
                time.sleep(pause)
                end = time.monotonic() + 0.3
                while time.monotonic() < end:
                    batches.append(meter.read_batch())
        finally:
            meter.close()
    b = SampleBatch.concat(batches)
    n = emu.sent_numbers(len(b))
    lost = np.diff(n) - 1  # before each sample but the first
    assert lost.sum() > 64 and emu.dropped_overflow > 0  # the pause did overflow the kit
    assert (meter.stats.drops - lost.sum()) % 64 == 0
    flagged = (b.flags[1:] & int(Flag.DROP)) != 0
    assert np.all(flagged[lost % 64 != 0]), "a loss the counter sees is not flagged"
    # A loss of whole cycles is inferred from the clock, flagged on a batch's first sample.
    batch_start = np.zeros(len(b), dtype=bool)
    batch_start[np.cumsum([0] + [len(x) for x in batches if len(x)])[:-1]] = True
    assert not np.any(flagged & (lost == 0) & ~batch_start[1:]), "a flag without a loss"
    np.testing.assert_allclose(b.power_w, 0.2, rtol=2e-3)


def test_ppk2_injected_drops_are_counted_exactly(cap):
    """5, 63 and 1 samples lost by the kit: the counter counts each exactly and flags the
    sample after it. A loss that a silence of the starved emulator put at a gap is a gap's."""
    faults = [Fault("drop", 0.3, n=5), Fault("drop", 0.6, n=63), Fault("drop", 0.9, n=1)]
    emu, summary, df, _ = cap("ppk2", Waveform.constant(0.05, 3.3), 1.3, faults=faults,
                              out_cap=AMPLE_BUFFER)  # fmt: skip
    assert emu.dropped_injected == 69 and emu.dropped_overflow == 0
    rows, n, stretch = kit_samples(emu, df)
    lost = np.diff(n) - 1
    inside = lost[np.diff(stretch) == 0]
    assert sorted(lost[lost > 0].tolist()) == [1, 5, 63]  # all three before the last sample
    assert summary.drops == inside.sum()
    flagged = (rows["flags"].to_numpy()[1:] & int(Flag.DROP)) != 0
    assert np.array_equal(flagged, (lost > 0) & (np.diff(stretch) == 0))


def test_ppk2_loss_of_whole_counter_cycles_is_seen_by_time(cap):
    """6400 lost samples wrap the 6-bit counter exactly: the sample clock still shows them.

    The counter sees 10 of the 6410; `drops_by_time` (the stream against the host clock)
    sees them all, and never counts low (latency only delays). When the driver also infers
    the whole cycles as drops (a lag that holds steady for 0.25 s) it adds them to within
    one cycle and its timeline skips them (the recorder writes a silence over 50 ms as a gap:
    never integrated across); a loaded host whose lag does not hold steady leaves them to
    `drops_by_time`, and its timeline joins the two sides.
    """
    faults = [Fault("drop", 0.5, n=6400), Fault("drop", 1.2, n=10)]
    emu, summary, df, _ = cap("ppk2", Waveform.constant(0.05, 3.3), 2.0, faults=faults,
                              out_cap=AMPLE_BUFFER)  # fmt: skip
    assert emu.dropped_injected == 6410
    rows, n, _ = kit_samples(emu, df)
    assert int((np.diff(n) - 1).sum()) == 6410  # both losses came before the last sample
    assert summary.drops_by_time >= 0.95 * 6410
    added = summary.drops - 10  # the counter's 6400 % 64 + 10, and whole cycles inferred
    assert added % 64 == 0 and (added == 0 or abs(added - 6400) <= 64)
    # The timeline makes room for every sample and drop counted, less the lead it may have
    # kept from its first reads (it never stamps a sample before one already stamped, so a
    # late first read leaves it ahead of the kit's clock: up to 20 ms, 2000 samples, on a
    # loaded host). Inferred cycles are skipped (a silence over 50 ms is written as a gap).
    t = rows.t_host_s.to_numpy()
    assert np.ptp(t) / 1e-5 - (len(t) - 1) >= summary.drops - 2000
