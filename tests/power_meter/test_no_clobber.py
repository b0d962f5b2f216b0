"""Issue 19, defect 1: an existing trace is never destroyed by `record` or `emulate --link`."""

import os
import subprocess
import sys

import pytest

from power_meter.emulators import UMEmulator
from power_meter.trace import read_trace
from power_meter.waveform import Waveform

METER = [sys.executable, "-m", "power_meter"]
RT3LAB = [os.path.join(os.path.dirname(sys.executable), "rt3lab")]


def meter(*args, timeout=60):
    return subprocess.run([*METER, *args], capture_output=True, text=True, timeout=timeout)


def record(port, out, *extra, duration="1.0"):
    return meter("record", "--driver", "um34c", "--port", str(port), "--out", str(out),
                 "--duration", duration, "--poll-interval", "0.0125", *extra)  # fmt: skip


KEEP = "t_host_s,voltage_v,current_a,power_w,flags\n" + "".join(
    f"{i}.0,5.0,0.2,1.0,0\n" for i in range(1, 200)
)


@pytest.mark.parametrize("extra", [[], ["--overwrite"], ["--append"]])
def test_record_that_fails_leaves_an_existing_trace_untouched(tmp_path, extra):
    keep = tmp_path / "keep.csv"
    keep.write_text(KEEP)
    r = record("/dev/null", keep, *extra, duration="0.5")
    assert r.returncode == 2, r.stderr
    assert keep.read_text() == KEEP
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.csv"]
    if not extra:
        assert "keep.csv: already exists; pass --append" in r.stderr.strip().splitlines()[-1]


def test_record_append_adds_after_a_gap_and_overwrite_replaces(tmp_path):
    keep = tmp_path / "keep.csv"
    keep.write_text(KEEP + "200.0,5.0")  # the cut line of a killed recorder
    with UMEmulator(Waveform.constant(1.5, 5.0), accel=10) as emu:
        r = record(emu.port, keep, "--append")
        assert r.returncode == 0, r.stderr
        df = read_trace(keep)
        assert df.t_host_s.iloc[:199].tolist() == [float(i) for i in range(1, 200)]
        assert df["flags"].iloc[199] == 8 and df["flags"].iloc[200] == 2  # GAP row, then AFTER_GAP
        assert (df.power_w.iloc[200:] == 1.5).all()
        r = record(emu.port, keep, "--overwrite")
        assert r.returncode == 0, r.stderr
    df = read_trace(keep)
    assert len(df) > 3 and (df.power_w == 1.5).all()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_record_refuses_a_missing_directory(tmp_path):
    r = record("/dev/null", tmp_path / "no" / "such" / "x.csv", duration="0.2")
    assert r.returncode == 2
    assert f"directory {tmp_path / 'no' / 'such'} does not exist" in r.stderr
    assert not (tmp_path / "no").exists()


def test_emulate_link_refuses_a_file_and_replaces_only_a_stale_port_link(tmp_path):
    keep = tmp_path / "keep2.csv"
    keep.write_text(KEEP)
    r = subprocess.run([*RT3LAB, "meter", "emulate", "--link", str(keep), "--duration", "0.5"],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "not an emulator's port link" in r.stderr and keep.read_text() == KEEP
    stale = tmp_path / "ttyStale"
    os.symlink("/dev/pts/4093", stale)  # left by a killed emulator
    r = meter("emulate", "--link", str(stale), "--duration", "0.3")
    assert r.returncode == 0, r.stderr
    assert not os.path.lexists(stale)
    r = meter("emulate", "--link", str(tmp_path / "nodir" / "tty"), "--duration", "0.3")
    assert r.returncode == 2 and "nodir does not exist" in r.stderr
