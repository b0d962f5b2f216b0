"""`rt3lab meter export --format sigrok` (issue 33): a session file sigrok-cli reads back
sample for sample, and `meter plot` draws held steps whose area is the trace's energy.

sigrok-cli is a Debian package (``sigrok-cli``); ``make test`` installs it when missing and
running as root. Without it the read-back tests are skipped with a message saying so; the
file's layout is still checked here with zipfile."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import power_meter.sigrok as sigrok
from power_meter.emulators import Fault
from power_meter.plot import trace_figure
from power_meter.sample import Flag
from power_meter.sigrok import sigrok_grid, write_sigrok
from power_meter.trace import read_trace, summarize_trace
from power_meter.waveform import Waveform

RT3LAB = shutil.which("rt3lab") or str(Path(sys.executable).with_name("rt3lab"))
SIGROK = shutil.which("sigrok-cli")
needs_sigrok = pytest.mark.skipif(
    SIGROK is None, reason="sigrok-cli not installed (make test installs it: apt-get install "
    "sigrok-cli)"
)  # fmt: skip


T0 = 1700000000.0


def uniform_trace(path: Path) -> pd.DataFrame:
    """Ten seconds at 2 Hz, power rising 0.05 W a sample, with a gap from 4 s to 6 s (its
    marker row, then the first sample after it), written as a trace CSV."""
    before = [(i * 0.5, 0.5 + 0.05 * i, 0) for i in range(9)]  # 0 .. 4 s
    gap = [(4.0, np.nan, int(Flag.GAP))]
    after = [(6.0 + i * 0.5, 1.5 + 0.05 * i, int(Flag.AFTER_GAP) if i == 0 else 0)
             for i in range(9)]  # 6 .. 10 s  # fmt: skip
    df = pd.DataFrame(before + gap + after, columns=["t_host_s", "power_w", "flags"])
    df = df.assign(t_host_s=df.t_host_s + T0, voltage_v=5.0, current_a=df.power_w / 5.0)
    df.loc[df["flags"] == int(Flag.GAP), "voltage_v"] = np.nan
    df[["t_host_s", "voltage_v", "current_a", "power_w", "flags"]].to_csv(path, index=False)
    return read_trace(path)


# The 20 grid samples of uniform_trace at 2 Hz: sample k spans k/2 .. (k+1)/2 s and holds
# the value of the row ending that span; the gap and the interval before the first sample
# after it (4 .. 6 s) hold nothing.
EXPECTED_POWER = (
    [0.55 + 0.05 * k for k in range(8)] + [np.nan] * 4 + [1.55 + 0.05 * k for k in range(8)]
)


def _cli(path: Path, *args: str, check: bool = True) -> list[str]:
    out = subprocess.run([SIGROK, "-i", str(path), *args], capture_output=True, text=True,
                         timeout=60, check=check)  # fmt: skip
    return out.stdout.splitlines()


def read_back(path: Path) -> pd.DataFrame:
    """What sigrok-cli reads from a session file: its channel names (``--show``) and their
    samples (``-O csv``, one column per channel in that order, 6 significant digits)."""
    names = [ln[2:].split(":")[0] for ln in _cli(path, "--show") if ln.startswith("- ")]
    # sigrok-cli 0.7 also prints analog lines ("power_W: 0.55 V DC") before the table, and
    # crashes on csv:label=channel: take the unit row (sigrok v2 stores no unit) as header.
    rows = [ln for ln in _cli(path, "-O", "csv:header=false") if ln and ":" not in ln][1:]
    return pd.DataFrame([[float(x) for x in r.split(",")] for r in rows], columns=names)


def read_back_analog(path: Path) -> dict[str, list[float]]:
    """sigrok-cli's ``-O analog`` lines (``power_W: 1.50 V DC``, two decimals) by channel.

    For a file in several chunks: libsigrok 0.5's CSV output misreads those, sigrok's own
    captures included (``sigrok-cli -d demo --samples 50000 -o big.sr`` read back as CSV
    prints garbage or crashes), and its analog output trips an assertion as it exits (so
    its exit status is not checked here)."""
    out: dict[str, list[float]] = {}
    for ln in _cli(path, "-O", "analog", check=False):
        name, _, rest = ln.partition(": ")
        out.setdefault(name, []).append(float(rest.split()[0]))
    return out


def export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([RT3LAB, "meter", "export", *args], capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_the_session_file_has_sigroks_layout(tmp_path):
    df = uniform_trace(tmp_path / "t.csv")
    r = export(str(tmp_path / "t.csv"), "--format", "sigrok", "--out", str(tmp_path / "t.sr"))
    assert r.returncode == 0, r.stderr
    assert "20 samples per channel at 2 Hz" in r.stdout
    with zipfile.ZipFile(tmp_path / "t.sr") as zf:
        assert zf.read("version") == b"2"
        meta = configparser.ConfigParser()
        meta.read_string(zf.read("metadata").decode("ascii"))
        dev = meta["device 1"]
        assert dev["samplerate"] == "2 Hz" and dev["total analog"] == "3"
        assert [dev[f"analog{i}"] for i in (1, 2, 3)] == ["power_W", "voltage_V", "current_A"]
        power = np.frombuffer(zf.read("analog-1-1-1"), dtype="<f4")
    np.testing.assert_allclose(power, EXPECTED_POWER, rtol=1e-6)  # NaN where expected too
    # Summing the held power over the grid gives the energy meter summary reports.
    assert float(np.nansum(power)) / 2 == pytest.approx(summarize_trace(df).energy_j, rel=1e-6)


@needs_sigrok
def test_sigrok_cli_reads_back_every_sample(tmp_path):
    df = uniform_trace(tmp_path / "t.csv")
    write_sigrok(df, tmp_path / "t.sr")
    back = read_back(tmp_path / "t.sr")
    grid = sigrok_grid(df, 2)
    assert list(back.columns) == list(grid)
    for name, values in grid.items():
        got = back[name].to_numpy()
        assert np.array_equal(np.isnan(got), np.isnan(values)), name
        ok = ~np.isnan(values)
        assert np.allclose(got[ok], values[ok], rtol=1e-5), name  # sigrok-cli prints 6 digits


@needs_sigrok
def test_a_recorded_um34c_trace_with_a_stall_round_trips(cap, tmp_path, monkeypatch):
    """A real recording (jittered polls, a stall the recorder wrote as a gap), exported in
    several chunks: sigrok-cli reads the values back, each one a value the meter gave."""
    w = Waveform.steps([0, 3, 6], [1.0, 3.0, 2.0], 5.0)
    _, summary, df, _ = cap("um34c", w, 1.2, accel=10, faults=[Fault("stall", 4.0, 2.0)])
    assert summary.gaps
    monkeypatch.setattr(sigrok, "CHUNK_SAMPLES", 5)
    done = write_sigrok(df, tmp_path / "rec.sr")
    with zipfile.ZipFile(tmp_path / "rec.sr") as zf:
        assert "analog-1-1-2" in zf.namelist()
    back = read_back_analog(tmp_path / "rec.sr")
    assert list(back) == ["power_W", "voltage_V", "current_A"]
    grid = sigrok_grid(df, done.rate_hz)
    for name, values in back.items():
        got = np.array(values)
        assert np.array_equal(np.isnan(got), np.isnan(grid[name])), name
        np.testing.assert_allclose(got, grid[name], atol=0.006)  # two decimals
    power = np.array(back["power_W"])
    assert len(power) == done.samples and np.isnan(power).any()  # the stall
    assert set(power[~np.isnan(power)]) <= {1.0, 3.0, 2.0}  # held values, never between


def test_export_refuses_a_bad_format_and_an_existing_file(tmp_path):
    uniform_trace(tmp_path / "t.csv")
    bad = export(str(tmp_path / "t.csv"), "--format", "vcd", "--out", str(tmp_path / "t.sr"))
    assert bad.returncode == 2 and "--format: unknown 'vcd'" in bad.stderr
    (tmp_path / "t.sr").write_bytes(b"keep")
    again = export(str(tmp_path / "t.csv"), "--format", "sigrok", "--out", str(tmp_path / "t.sr"))
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert (tmp_path / "t.sr").read_bytes() == b"keep"


def test_meter_plot_draws_held_steps_whose_area_is_the_energy(tmp_path):
    import matplotlib.pyplot as plt

    df = uniform_trace(tmp_path / "t.csv")
    fig = trace_figure(df)
    line = fig.axes[0].lines[0]
    assert line.get_drawstyle() == "steps-pre"  # a sample holds over the interval before it
    x, y = (np.asarray(a, dtype=float) for a in line.get_data())
    area = np.nansum(y[1:] * np.diff(x))  # steps-pre: y[i] spans x[i-1]..x[i]
    assert area == pytest.approx(summarize_trace(df).energy_j, rel=1e-9)
    plt.close(fig)
