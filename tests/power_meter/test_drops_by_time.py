"""Issue 19, defect 6: PPK2 losses the 6-bit counter cannot see (bursts of 64 wrap it, and
1000 reads as 40) are counted against the clock, as `drops_by_time`, within 5%."""

import json
import subprocess
import sys
import time

import pytest

from power_meter.emulators import Fault, PPK2Emulator
from power_meter.waveform import Waveform

METER = [sys.executable, "-m", "power_meter"]


@pytest.mark.parametrize(("burst", "times"), [(64, 20), (1000, 4)])
def test_bursts_are_counted_by_time_within_5_percent(tmp_path, burst, times):
    out = tmp_path / "ppk2.csv"
    with PPK2Emulator(Waveform.constant(0.5, 3.3)) as emu:
        proc = subprocess.Popen(
            [*METER, "record", "--driver", "ppk2", "--port", emu.port, "--out", str(out),
             "--duration", "3.0", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            end = time.monotonic() + 30
            while not out.exists() and time.monotonic() < end:  # samples are on disk
                time.sleep(0.02)
            time.sleep(0.3)  # the stream's start is established
            for _ in range(times):
                emu.inject(Fault("drop", None, n=burst))
                time.sleep(0.05)
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, stderr
    s = json.loads(stdout)
    assert emu.dropped_injected == burst * times, (emu.fault_log, s)
    assert [k for _, k in emu.fault_log].count("drop") == times
    # Losses the host could notice; the emulator also overflows while the recorder shuts
    # down, after the last sample it reads: no meter can count those.
    lost = emu.lost_before_last_sent
    assert lost >= burst * times
    if s["gap_count"]:  # the machine stalled the reader long enough to end the stretch
        pytest.skip(
            f"a stall split the stream ({s['gap_count']} gaps); drops_by_time is per stretch"
        )
    assert s["drops_by_time"] == pytest.approx(lost, rel=0.05)
    # The counter sees a burst modulo 64: 0 for 64, 40 for 1000 (plus any overflow).
    assert s["drops"] <= (burst % 64) * times + emu.dropped_overflow + 64
    print(f"burst {burst} x{times}: lost {lost}, drops {s['drops']}, by time {s['drops_by_time']}")
