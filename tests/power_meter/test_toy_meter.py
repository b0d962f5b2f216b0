"""A meter added from outside the package (``toy_meter.py``: a driver and its byte-level
emulator, and one `register_driver` call) works with the real commands: `meter list`,
`meter emulate`, and `meter record` against the emulator on a pseudo-terminal; and
profiling's ``--power`` accepts it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_runner import rt3lab
from toy_meter import register_toy

from power_meter.drivers import DRIVERS, unregister_driver
from power_meter.emulators import make_emulator
from power_meter.sample import Flag
from power_meter.trace import check_trace, read_trace
from power_meter.waveform import Waveform


@pytest.fixture
def toy():
    """The toy driver, registered for one test."""
    info = register_toy()
    yield info
    unregister_driver("toy")
    assert "toy" not in DRIVERS


def test_meter_record_records_the_toy_meter_on_a_pty(toy, tmp_path):
    out = tmp_path / "toy.csv"
    emu = make_emulator("toy", Waveform.steps([0.0, 1.0], [1.5, 3.0], 5.0)).start()
    try:
        r = rt3lab(
            "meter", "record", "--driver", "toy", "--port", emu.port, "--out", str(out),
            "--duration", "2.0", "--poll-interval", "0.05", "--json",
        )  # fmt: skip
    finally:
        emu.stop()
    assert r.code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["driver"] == "toy" and summary["bad_frames"] == 0 and summary["gaps"] == []
    df = read_trace(out)
    check_trace(df, out)
    p = df["power_w"].to_numpy()
    assert len(p) >= 8  # a steady load repeats its line: re-emitted every 1.5 updates
    assert set(np.round(p, 6)) == {1.5, 3.0}  # 5 V x 0.3 A, then 5 V x 0.6 A
    assert np.all(np.diff(p) >= 0)  # the step, once
    assert (df["voltage_v"] == 5.0).all() and set(df["flags"]) <= {0, int(Flag.REPEAT)}
    s = rt3lab("meter", "summary", str(out), "--json")
    assert json.loads(s.stdout)["energy_j"] == pytest.approx(summary["energy_j"])


def test_the_toy_is_listed_and_emulated(toy):
    listed = rt3lab("meter", "list", "--json")
    assert {"name": "toy", "description": "A toy meter (tests)",
            "link": "ASCII lines, 115200 baud", "update_period_s": 0.1} in json.loads(
        listed.stdout
    )["drivers"]  # fmt: skip
    emulated = rt3lab("meter", "emulate", "--driver", "toy", "--duration", "0.2")
    assert emulated.code == 0, emulated.stderr
    port, hint = emulated.stdout.splitlines()[:2]
    assert hint == f"record it with: rt3lab meter record --driver toy --port {port} --out trace.csv"


def test_profiling_takes_the_toy_as_a_power_source(toy, tmp_path):
    import time

    from lab.profiling.board.sysfs import LocalFiles
    from lab.profiling.power import make_power, power_kinds

    assert "toy" in power_kinds()
    with make_emulator("toy", Waveform.constant(2.0, 5.0)) as emu:
        src = make_power(f"toy:{emu.port}", LocalFiles(tmp_path))
        src.start()
        try:
            time.sleep(0.2)
            src.begin("w")
            time.sleep(0.6)
            w = src.end("w")
        finally:
            src.close()
    assert src.meter == "toy" and w.reliable and w.mean_power_w == pytest.approx(2.0)


def test_the_toy_protocol_examples_run():
    import doctest

    import toy_meter

    assert doctest.testmod(toy_meter).failed == 0
