"""``profile`` on a fake board (sysfs tree, fake kernel, INA3221 rails) with an early-exit
set: its exits are measured at every level (``SET@exitI``) and the profile writes the set's
latency as their distribution over its exit histogram (issue 30)."""

from __future__ import annotations

import csv

import pytest
from profiling_fakes import ClockWorkload, FakeKernel
from test_session import FAST, board, ina

from device_profiles import load_profile
from lab.profiling.board.cpufreq import CpufreqControl
from lab.profiling.session import profile_board
from lab.profiling.workload import VariantInfo

HIST = (0.25, 0.75)


class ExitClockWorkload(ClockWorkload):
    """An early-exit set ``ee`` whose exits take b = 10 and 20 ms x GHz, and a plain set."""

    def info(self, name: str) -> VariantInfo:
        return VariantInfo(name, 0.0, 1e6, 1e6, 0.9, HIST if name == "ee" else None)


def test_an_early_exit_sets_latency_is_its_exits_distribution(tmp_path):
    d, files = board(tmp_path)
    with FakeKernel(d) as k:
        wl = ExitClockWorkload(
            k, 1.0, {"p30": 10.0, "ee": 18.0, "ee@exit0": 10.0, "ee@exit1": 20.0}
        )
        out = profile_board(
            wl, CpufreqControl(files), ina(files, 0.02), "odroid-xu4",
            tmp_path / "out/board.yaml", FAST, levels=[600000, 2000000], files=files,
        )  # fmt: skip
    p = load_profile(out.profile_path)
    assert [v.name for v in p.variants] == ["p30", "ee"]  # the per-exit variants folded in
    assert all(lat.distribution is None for lat in p.variant("p30").latency)
    rows = list(csv.DictReader(out.csv_path.open()))
    median = {
        (r["variant"], int(r["level_khz"])): float(r["median_ms"])
        for r in rows
        if r["kind"] == "busy"
    }
    for lat in p.variant("ee").latency:
        exits = [median[(f"ee@exit{i}", lat.freq_khz)] for i in range(2)]
        assert [pt.share for pt in lat.distribution] == pytest.approx(HIST)
        assert [pt.latency_ms for pt in lat.distribution] == pytest.approx(exits)
        assert lat.latency_ms == pytest.approx(0.25 * exits[0] + 0.75 * exits[1])
        assert exits[0] < exits[1]  # measured at the level: the deeper exit is slower
