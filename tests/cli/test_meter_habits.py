"""Meters as a user meets them: emulate says how to record, record shows a live line on a
terminal (a real pty), plot draws a trace, summary prints JSON. Console script, piped."""

import json
import os
import pty
import select
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from power_meter.plot import gap_spans
from power_meter.sample import COLUMNS, Flag
from power_meter.trace import read_trace, summarize_trace

RT3LAB = shutil.which("rt3lab") or str(Path(sys.executable).with_name("rt3lab"))


@pytest.fixture
def emulated(tmp_path):
    """A UM34C emulator at 10x speed, started by the console script; yields its hint line."""
    link = tmp_path / "ttyUM"
    proc = subprocess.Popen(
        [RT3LAB, "meter", "emulate", "--driver", "um34c", "--waveform", "constant:1.5@5.0",
         "--accel", "10", "--link", str(link), "--duration", "30"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        port = proc.stdout.readline().strip()
        hint = proc.stdout.readline().strip()
        yield port, hint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def record_args(hint: str, out: Path) -> list[str]:
    """The printed record command, with --out pointed at ``out`` and a 1.5 s duration."""
    assert hint.startswith("record it with: rt3lab meter record ")
    args = shlex.split(hint.removeprefix("record it with: rt3lab "))
    args[args.index("--out") + 1] = str(out)
    return [*args, "--duration", "1.5", "--poll-interval", "0.0125"]


def test_emulate_prints_the_record_command_and_it_records(emulated, tmp_path):
    port, hint = emulated
    assert f"--driver um34c --port {port} --out trace.csv" in hint
    out = subprocess.run(
        [RT3LAB, *record_args(hint, tmp_path / "t.csv"), "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["peak_power_w"] == 1.5
    assert "so far" not in out.stderr  # piped: no live line


def test_record_shows_a_live_line_on_a_terminal(emulated, tmp_path):
    _, hint = emulated
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [RT3LAB, *record_args(hint, tmp_path / "t.csv")],
        stdin=slave, stdout=slave, stderr=slave, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    data = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the pty closed
                break
            if not chunk:
                break
            data += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    os.close(master)
    text = data.decode(errors="replace")
    assert proc.returncode == 0, text
    lines = [seg for seg in text.split("\r\x1b[K") if seg.startswith("recording: ")]
    assert len(lines) >= 2  # redrawn in place while recording
    last = lines[-1].split("\r")[0]
    assert "1.500 W" in last and "J so far" in last and "0 drops" in last and "0 gaps" in last
    joules = [float(seg.split(" J so far")[0].split()[-1]) for seg in lines]
    assert joules == sorted(joules) and joules[-1] > 0


def write_trace_with_gap(path: Path) -> None:
    rows = [(0.0, 5, 0.2, 1.0, 0), (0.5, 5, 0.2, 1.0, 0), (1.0, 5, 0.4, 2.0, 0),
            (1.0, "", "", "", int(Flag.GAP)), (4.0, 5, 0.4, 2.0, int(Flag.AFTER_GAP)),
            (4.5, 5, 0.6, 3.0, 0)]  # fmt: skip
    text = ",".join(COLUMNS) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)
    path.write_text(text)


def test_plot_draws_power_with_gaps_shaded(tmp_path):
    import matplotlib.image as mpimg

    trace = tmp_path / "t.csv"
    write_trace_with_gap(trace)
    df = read_trace(trace)
    assert gap_spans(df["t_host_s"].to_numpy(), df["flags"].to_numpy()) == [(1.0, 4.0)]
    out = subprocess.run(
        [RT3LAB, "meter", "plot", str(trace), "--out", str(tmp_path / "p.png")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    img = mpimg.imread(tmp_path / "p.png")
    assert img.ndim == 3 and img.shape[1] > 400
    # The shaded span: a band of grey pixels (equal R, G, B, not white) across the plot.
    rgb = img[..., :3]
    grey = (np.ptp(rgb, axis=-1) < 0.02) & (rgb[..., 0] < 0.95) & (rgb[..., 0] > 0.6)
    assert grey.sum() > 0.02 * grey.size


def test_plot_of_a_missing_trace_is_one_line_exit_2(tmp_path):
    out = subprocess.run(
        [RT3LAB, "meter", "plot", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "p.png")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "nope.csv" in out.stderr


def test_summary_json_is_only_json_and_matches_the_trace(tmp_path):
    trace = tmp_path / "t.csv"
    write_trace_with_gap(trace)
    out = subprocess.run(
        [RT3LAB, "meter", "summary", str(trace), "--json"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    want = summarize_trace(read_trace(trace)).as_dict()
    assert got == pytest.approx(want)
    assert got["gaps"] == 1 and got["gap_s"] == 3.0 and got["energy_j"] == pytest.approx(3.0)
