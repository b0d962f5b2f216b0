"""The recorder and the CLI: fsync'd batches, SIGKILL, Parquet, summaries, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from lab.cli import main
from power_meter.emulators import PPK2Emulator, UMEmulator
from power_meter.recorder import TraceWriter
from power_meter.sample import COLUMNS, Flag, SampleBatch
from power_meter.trace import TraceError, journal_path, read_trace, summarize_trace
from power_meter.waveform import Waveform

METER = [sys.executable, "-m", "power_meter"]


def test_writer_flushes_and_reader_ignores_a_cut_line(tmp_path):
    out = tmp_path / "t.csv"
    w = TraceWriter(out)
    b = SampleBatch(np.array([1.0, 2.0]), np.full(2, 5.0), np.full(2, 0.2), np.full(2, 1.0),
                    np.zeros(2, dtype=np.int64))  # fmt: skip
    w.append(b)
    assert read_trace(out).empty  # nothing is written before a flush
    w.flush()
    w.close()
    with out.open("ab") as f:
        f.write(b"3.0,5.0,0.2")  # a line cut by a crash
    df = read_trace(out)
    assert df.t_host_s.tolist() == [1.0, 2.0]


def test_bad_trace_files_are_named(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(TraceError, match=r"x\.csv.*header"):
        read_trace(p)
    with pytest.raises(FileNotFoundError):
        read_trace(tmp_path / "missing.csv")


def test_summary_never_interpolates_a_gap():
    df = pd.DataFrame(
        {"t_host_s": [0.0, 1.0, 1.0, 5.0, 6.0], "voltage_v": [5, 5, np.nan, 5, 5],
         "current_a": [1, 1, np.nan, 1, 1], "power_w": [5.0, 5.0, np.nan, 5.0, 5.0],
         "flags": [0, 0, int(Flag.GAP), int(Flag.AFTER_GAP), 0]}
    )  # fmt: skip
    s = summarize_trace(df)
    assert (s.samples, s.gaps, s.gap_s, s.energy_j, s.mean_power_w) == (4, 1, 4.0, 10.0, 5.0)


def wait_for_rows(path, rows, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.stat().st_size > 40 * rows:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not grow")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_sigkill_loses_at_most_the_last_second(tmp_path, suffix):
    out = tmp_path / f"trace{suffix}"
    with PPK2Emulator(Waveform.constant(0.5, 3.3)) as emu:
        proc = subprocess.Popen(
            [*METER, "record", "--driver", "ppk2", "--port", emu.port, "--out", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            wait_for_rows(out if suffix == ".csv" else journal_path(out), 1000)
            time.sleep(1.5)
            t_kill = time.time()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
    df = read_trace(out)  # the Parquet recording falls back to its journal
    assert len(df) > 100_000
    assert t_kill - df.t_host_s.iloc[-1] <= 1.0 + 0.25  # flush period + read and write time
    # Samples in time order; a gap row (a stall on a loaded host) repeats the time before it.
    samples = df[(df["flags"] & int(Flag.GAP)) == 0]
    assert np.all(np.diff(samples.t_host_s) > 0) and np.all(np.diff(df.t_host_s) >= 0)
    assert not out.with_suffix(suffix + ".summary.json").exists()


def test_ctrl_c_ends_with_a_summary(tmp_path):
    out = tmp_path / "t.csv"
    with UMEmulator(Waveform.constant(1.25, 5.0), accel=10) as emu:
        proc = subprocess.Popen(
            [*METER, "record", "--driver", "um34c", "--port", emu.port, "--out", str(out),
             "--poll-interval", "0.0125", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            wait_for_rows(out, 3)
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, stderr
    s = json.loads(stdout)
    assert s["samples"] == len(read_trace(out)) and s["peak_power_w"] == 1.25


def rt3lab(capsys, *args):
    """Run `rt3lab meter ARGS` in-process through the root CLI; returns (code, out, err)."""
    capsys.readouterr()
    try:
        main(["meter", *args])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_record_parquet_and_summary_cli(tmp_path, capsys):
    out = tmp_path / "cap.parquet"
    with UMEmulator(Waveform.constant(2.0, 5.0), accel=10) as emu:
        code, stdout, err = rt3lab(
            capsys, "record", "--driver", "um34c", "--port", emu.port, "--out", str(out),
            "--duration", "1.5", "--poll-interval", "0.0125", "--json",
        )  # fmt: skip
    assert code == 0, err
    rec = json.loads(stdout)
    assert rec["samples"] >= 5 and rec["gap_count"] == 0 and rec["peak_power_w"] == 2.0
    assert out.exists() and not journal_path(out).exists()
    assert list(pd.read_parquet(out).columns) == list(COLUMNS)
    code, stdout, err = rt3lab(capsys, "summary", str(out), "--json")
    assert code == 0, err
    s = json.loads(stdout)
    assert s["samples"] == rec["samples"]
    assert s["energy_j"] == pytest.approx(rec["energy_j"])
    assert s["peak_power_w"] == 2.0


def test_emulate_cli_prints_its_port_and_answers(tmp_path, capsys):
    link = tmp_path / "ttyUM"
    proc = subprocess.Popen(
        [*METER, "emulate", "--driver", "um25c", "--waveform", "constant:1.5@5.0",
         "--accel", "10", "--link", str(link), "--duration", "20"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == str(link)
        code, out, err = rt3lab(
            capsys, "record", "--driver", "um25c", "--port", str(link), "--out",
            str(tmp_path / "x.csv"), "--duration", "1.0", "--poll-interval", "0.0125", "--json",
        )  # fmt: skip
        assert code == 0, err
        assert json.loads(out)["peak_power_w"] == 1.5
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0
    assert not link.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["record", "--driver", "xyz", "--port", "/dev/null", "--out", "a.csv"], "driver 'xyz'"),
        (["record", "--driver", "um34c", "--port", "/dev/null", "--out", "a.txt"], "a.txt"),
        (["emulate", "--waveform", "constant:abc"], "constant:WATTS"),
        (["emulate", "--fault", "melt@3"], "fault 'melt'"),
        (["summary", "nope.csv"], "nope.csv"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = rt3lab(capsys, *args)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_list_json(capsys):
    code, out, _ = rt3lab(capsys, "list", "--json")
    assert code == 0
    d = json.loads(out)
    assert {x["name"] for x in d["drivers"]} >= {
        "um24c", "um25c", "um34c", "tc66c", "ppk2", "rapl", "ina3221", "pi5-pmic",
    }  # fmt: skip
    assert set(d["drivers"][0]) == {"name", "description", "link", "update_period_s"}
    assert isinstance(d["ports"], list)


def test_an_unplugged_meter_is_a_clear_error_and_writes_nothing(tmp_path):
    out = tmp_path / "none.csv"
    r = subprocess.run(
        [*METER, "record", "--driver", "um34c", "--port", str(tmp_path / "ttyGone"),
         "--duration", "0.5", "--out", str(out)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "no samples recorded from um34c: the port never opened" in last
    assert "Traceback" not in r.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []  # nothing left behind


def test_a_port_that_answers_garbage_is_a_clear_error(tmp_path):
    master, slave = os.openpty()
    try:
        os.write(master, b"\x00not a meter\x00" * 50)
        out = tmp_path / "garbage.csv"
        r = subprocess.run(
            [*METER, "record", "--driver", "um34c", "--port", os.ttyname(slave),
             "--duration", "1.2", "--out", str(out)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        os.close(master)
        os.close(slave)
    assert r.returncode == 2, r.stderr
    assert "the port opened but no valid frame arrived" in r.stderr


def test_bad_usage_of_the_standalone_entry_point_exits_2():
    r = subprocess.run([*METER, "record"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "Missing option" in r.stderr or "Missing parameter" in r.stderr
