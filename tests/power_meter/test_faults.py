"""Every injected fault is survived: the recording continues and gaps are reported as gaps."""

import numpy as np
import pytest

from power_meter.emulators import Fault
from power_meter.sample import Flag
from power_meter.waveform import Waveform
from tests.power_meter.conftest import AMPLE_BUFFER

W = Waveform.steps([0, 2, 4], [1.0, 3.0, 2.0], 5.0)


def check_gap_covers(summary, t_fault, duration, slack=0.05):
    """A gap spans the fault's silence (within `slack` s of timestamp error)."""
    hits = [
        g
        for g in summary.gaps
        if g.start_s <= t_fault + slack and g.end_s >= t_fault + duration - slack
    ]
    assert hits, f"no gap covering {t_fault}..{t_fault + duration}: {summary.gaps}"


@pytest.mark.parametrize("driver", ["um34c", "um24c", "tc66c"])
def test_poll_meter_survives_every_fault(cap, driver):
    accel = 10
    faults = [
        Fault("garbage", 2.0, n=40),
        Fault("truncate", 4.0),
        Fault("bad_checksum", 6.0),
        Fault("stall", 8.0, duration_s=3.0),
        Fault("disconnect", 14.0, duration_s=3.0),
    ]
    emu, s, df, _ = cap(driver, W, 2.3, accel=accel, faults=faults)
    kinds = sorted(k for _, k in emu.fault_log)  # each once; a starved emulator may reorder
    assert kinds == sorted(["garbage", "truncate", "bad_checksum", "stall", "disconnect"])
    assert s.garbage_bytes >= 40
    assert s.bad_frames >= 1
    assert s.timeouts >= 1  # the truncated reply never completed
    assert s.reconnects == 1
    t_stall = dict((k, t) for t, k in emu.fault_log)
    check_gap_covers(s, t_stall["stall"], 3.0)
    check_gap_covers(s, t_stall["disconnect"], 3.0)
    gap_rows = df[(df["flags"] & int(Flag.GAP)) != 0]
    assert len(gap_rows) == len(s.gaps) and gap_rows.power_w.isna().all()
    # Recording went on after the disconnect, with correct values.
    after = df[df.t_host_s > t_stall["disconnect"] + 3.0]
    assert len(after) >= 3
    assert set(after.power_w.round(3)) <= {2.0}


def test_ppk2_survives_every_fault(cap):
    faults = [
        Fault("garbage", 0.2, n=3),
        Fault("truncate", 0.4),
        Fault("bad_checksum", 0.6),
        Fault("drop", 0.7, n=5),
        Fault("stall", 0.8, duration_s=0.3),
        Fault("disconnect", 1.3, duration_s=0.3),
    ]
    w = Waveform.constant(0.33, 3.3)
    # A kit buffer a loaded host cannot outrun: the losses are the injected ones.
    emu, s, df, _ = cap("ppk2", w, 2.2, faults=faults, out_cap=AMPLE_BUFFER)
    # Each fault once (a starved emulator may reach two in one tick, in another order).
    assert sorted(k for _, k in emu.fault_log) == sorted(f.kind for f in faults)
    assert emu.dropped_overflow == 0
    # 5 injected, plus the sample cut in half, plus the one with an impossible range.
    assert s.drops == 7
    assert s.bad_frames >= 1 and s.garbage_bytes >= 3
    assert s.reconnects == 1
    t = dict((k, t) for t, k in emu.fault_log)
    # After a stall the stream is re-anchored to host arrival times, which on a loaded
    # machine lag the (in-process) emulator until a prompt read comes: a gap can only end
    # late, so it covers the silence.
    check_gap_covers(s, t["stall"], 0.3, slack=0.15)
    check_gap_covers(s, t["disconnect"], 0.3, slack=0.15)
    # The recording went on after the reconnect, every sample of it in place: the stretch
    # after the last gap spans as many sample periods as it has samples (no loss), less
    # what the timeline gives back of a late first read (20 ms), plus 200 ppm of drift.
    gap = (df["flags"] & int(Flag.GAP)) != 0
    after = df[gap.cumsum() == gap.sum()].iloc[1:]
    assert len(after) > 1000
    span = (after.t_host_s.iloc[-1] - after.t_host_s.iloc[0]) / 1e-5
    assert len(after) - 1 - 2000 <= span <= (len(after) - 1) * (1 + 2e-4) + 1
    # Every sample is the kit's: no garbage word decoded as one (it read 0.0127 W once).
    np.testing.assert_allclose(df[~gap].power_w, 0.33, rtol=2e-3)


def test_meter_unplugged_between_write_and_drain_is_a_disconnect():
    """pyserial's flush() drains with tcdrain, which raises termios.error (not an OSError)
    when the far end vanishes after the bytes left: it must surface as MeterDisconnected so
    the recorder reconnects instead of dying (seen once in CI on the TC66C fault run)."""
    import os
    import pty

    import serial

    from power_meter.port import write
    from power_meter.sample import MeterDisconnected

    master, slave = pty.openpty()

    class UnpluggedAfterWrite(serial.Serial):
        def write(self, data):
            n = super().write(data)
            os.close(master)  # the meter goes away before the drain
            return n

    port = UnpluggedAfterWrite(os.ttyname(slave), 115200, timeout=0.02)
    try:
        with pytest.raises(MeterDisconnected, match="write failed"):
            write(port, b"getva")
    finally:
        port.close()
        os.close(slave)
