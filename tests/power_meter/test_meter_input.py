"""Issue 19, defects 8 and 9 (meter part): `meter summary` and `meter emulate` refuse what
they cannot use, in one line naming the file and line; a UM drop fault loses real answers."""

import json

import numpy as np
import pytest

from lab.cli import main
from power_meter.emulators import Fault
from power_meter.waveform import Waveform
from tests.power_meter.conftest import capture

HEADER = "t_host_s,voltage_v,current_a,power_w,flags\n"


def rt3lab(capsys, *args):
    capsys.readouterr()
    try:
        main(["meter", *args])
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, *capsys.readouterr()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("1.0,5,0.2,1.0,0\n0.5,5,0.2,1.0,0\n", "line 3: t_host_s 0.5 is before"),
        ("1.0,5,0.2,1.0,0\n2.0,5,0.2,nan,0\n", "line 3: power_w is nan, expected a finite"),
        ("1.0,5,0.2,1.0,0\n2.0,5,0.2,abc,0\n", "line 3: power_w is 'abc', expected a number"),
        ("1.0,5,0.2,1.0,0\n2.0,5,0.2,1.0,0,7\n", "line 3: 6 fields, expected 5"),
    ],
)
def test_summary_refuses_a_bad_trace_naming_file_and_line(tmp_path, capsys, body, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + body)
    code, out, err = rt3lab(capsys, "summary", str(bad), "--json")
    assert code == 2 and out == ""
    assert err.startswith(f"rt3lab: error: {bad}: {message}")
    assert len(err.strip().splitlines()) == 1


def test_summary_of_a_directory_is_one_line(tmp_path, capsys):
    code, _, err = rt3lab(capsys, "summary", str(tmp_path))
    assert code == 2
    assert err.strip() == f"rt3lab: error: {tmp_path}: is a directory, expected a trace file"


def test_summary_accepts_gap_rows_without_values(tmp_path, capsys):
    ok = tmp_path / "ok.csv"
    ok.write_text(HEADER + "0.0,5,0.2,1.0,0\n1.0,5,0.2,1.0,0\n1.0,,,,8\n3.0,5,0.2,1.0,2\n")
    code, out, err = rt3lab(capsys, "summary", str(ok), "--json")
    assert code == 0, err
    assert json.loads(out)["energy_j"] == 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--waveform", "constant:nan"], "waveform 'constant:nan': times, power and voltage"),
        (["--waveform", "constant:1@inf"], "must be finite"),
        (["--fault", "stall@-1:-5"], "fault 'stall@-1:-5': expected a time >= 0 s"),
        (["--fault", "stall@1:-5"], "duration -5.0: expected 0 < s"),
        (["--fault", "drop@1:0"], "count 0: expected 1 to"),
        (["--accel", "nan"], "accel nan: expected a finite number > 0"),
    ],
)
def test_emulate_refuses_bad_options(tmp_path, capsys, args, message):
    code, _, err = rt3lab(capsys, "emulate", *args, "--link", str(tmp_path / "tty"),
                          "--duration", "0.2")  # fmt: skip
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "tty").exists()


@pytest.mark.parametrize("driver", ["um34c", "tc66c"])
def test_a_drop_fault_on_a_polled_meter_loses_answers(tmp_path, driver):
    w = Waveform.constant(1.0, 5.0)
    faults = [Fault.parse("drop@1.0:3")]
    emu, _, df, meter = capture(tmp_path, driver, w, 3.0, accel=4, faults=faults)
    assert emu.polls_dropped == 3
    assert [k for _, k in emu.fault_log] == ["drop"]
    assert meter.stats.timeouts >= 3  # each lost answer is a poll that timed out
    assert np.isfinite(df.power_w).any()
