"""Issue 31: `meter summary`, `meter plot` and `meter record` take only what they can use.

A trace that is a FIFO or a link to /dev/zero, binary, with flags out of range; a figure
path that is a directory or already there; a duration that is not a positive number: each
is refused in one line (exit 2) naming the right thing, before anything is read, written or
recorded. Summaries are strict JSON. The real CLI in a subprocess (a FIFO would hang it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEADER = "t_host_s,voltage_v,current_a,power_w,flags\n"
GOOD = HEADER + "0.0,5,0.2,1.0,0\n1.0,5,0.2,1.0,0\n2.0,5,0.2,1.0,0\n"


def meter(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "lab", "meter", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def refused(r, needle):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    line = r.stderr.strip()
    assert "\n" not in line and "Traceback" not in line and needle in line, line
    return line


@pytest.fixture
def good(tmp_path):
    p = tmp_path / "good.csv"
    p.write_text(GOOD)
    return p


@pytest.mark.parametrize("command", ["summary", "plot"])
def test_a_fifo_or_a_link_to_dev_zero_is_not_read(tmp_path, command):
    fifo, zero = tmp_path / "fifo.csv", tmp_path / "zero.csv"
    os.mkfifo(fifo)
    zero.symlink_to("/dev/zero")
    extra = ["--out", tmp_path / "p.png"] if command == "plot" else []
    refused(meter(command, fifo, *extra), "not a regular file (a FIFO)")
    refused(meter(command, zero, *extra), "not a regular file (a character device)")
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(200) + b"\n", "binary content (first bytes 89 50 4e 47"),
        ((HEADER + "0.0,5,0.2,1.0,1e30\n").encode(), "line 2: flags is 1e+30, expected a whole"),
        ((HEADER + "0.0,5,0.2,1.0,-1\n").encode(), "line 2: flags is -1"),
        ((HEADER + "0.0,5,0.2,1.0,2.5\n").encode(), "line 2: flags is 2.5"),
    ],
)
def test_a_trace_that_is_not_one_is_named(tmp_path, content, needle):
    p = tmp_path / "t.csv"
    p.write_bytes(content)
    refused(meter("summary", p, "--json"), needle)
    refused(meter("plot", p, "--out", tmp_path / "p.png"), needle)


def test_plot_checks_the_trace_as_summary_does(tmp_path):
    p = tmp_path / "back.csv"
    p.write_text(HEADER + "1.0,5,0.2,1.0,0\n0.5,5,0.2,1.0,0\n")
    refused(meter("summary", p), "line 3: t_host_s 0.5 is before")
    refused(meter("plot", p, "--out", tmp_path / "p.png"), "line 3: t_host_s 0.5 is before")
    assert not (tmp_path / "p.png").exists()


def test_plot_out_is_a_new_png_file(tmp_path, good):
    d = tmp_path / "figs"
    d.mkdir()
    refused(meter("plot", good, "--out", d), "is a directory, expected a .png file")
    assert not (tmp_path / "figs.png").exists()
    kept = tmp_path / "kept.png"
    kept.write_bytes(b"mine")
    refused(meter("plot", good, "--out", kept), "a file already there; not replaced")
    assert kept.read_bytes() == b"mine"
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours")
    link = tmp_path / "link.png"
    link.symlink_to(victim)
    refused(meter("plot", good, "--out", link), "a link already there")
    r = meter("plot", good, "--out", link, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "not yours"  # the link was replaced, not followed
    assert not link.is_symlink() and link.read_bytes()[:4] == b"\x89PNG"


def test_summary_json_is_strict(tmp_path):
    """Powers that overflow the energy sum printed `Infinity`, which is not JSON."""
    p = tmp_path / "huge.csv"
    p.write_text(HEADER + "0.0,5,0.2,1e308,0\n1e10,5,0.2,1e308,0\n")
    r = meter("summary", p, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))
    assert doc["energy_j"] is None and any("energy_j: inf" in n for n in doc["notes"])


@pytest.mark.parametrize("duration", ["-1", "nan", "0", "inf"])
def test_record_duration_is_named_not_blamed_on_the_port(tmp_path, duration):
    out = tmp_path / "t.csv"
    refused(meter("record", "--driver", "um34c", "--port", tmp_path / "no-port", "--out", out,
                  "--duration", duration),
            f"--duration {float(duration)}: expected a number of seconds > 0")  # fmt: skip
    assert not out.exists()
