"""Measurement sanity: each rule finds its case; a planted slow set is re-measured (its
re-measured figure is the one written), and a set that stays odd is flagged in the written
profile and shown in the report built from a simulation of that profile."""

from __future__ import annotations

import pytest

from device_profiles import load_profile
from lab.profiling.board.cpufreq import FrequencyError
from lab.profiling.procedure import Measurement, ProfileRun
from lab.profiling.sanity import settle, suspects
from lab.profiling.session import profile_host
from lab.profiling.workload import VariantInfo

SPARSITY = {"dense": 0.0, "bp": 0.64, "pp": 0.9}


def _row(name: str, ms: float, half: float = 0.01) -> Measurement:
    return Measurement(1000, name, "busy", 1000, 1000, True, median_ms=ms,
                       ci_low_ms=ms * (1 - half), ci_high_ms=ms * (1 + half), runs=20)  # fmt: skip


def _run(*rows: Measurement) -> ProfileRun:
    return ProfileRun(list(rows), [], {}, {}, None)


def test_each_rule():
    ok = _run(_row("dense", 2.0), _row("bp", 1.2), _row("pp", 0.8))
    assert suspects(ok, SPARSITY, 0.02) == []
    slower = _run(_row("dense", 2.0), _row("bp", 1.2), _row("pp", 2.5))
    assert {s.rule for s in suspects(slower, SPARSITY, 0.02)} == {"sparser-slower"}
    wide = _run(_row("dense", 2.0), _row("bp", 1.2, half=0.2), _row("pp", 0.8))
    assert [(s.variant, s.rule) for s in suspects(wide, SPARSITY, 0.02)] == [("bp", "wide-ci")]
    # bp 226 ms between dense 1 ms and pp 0.8 ms: slower than dense, and an outlier
    far = _run(_row("dense", 1.0), _row("bp", 226.0), _row("pp", 0.8))
    assert {s.rule for s in suspects(far, SPARSITY, 0.02)} == {"sparser-slower", "outlier"}
    # within the intervals (and the margin) a sparser set may tie a denser one
    tie = _run(_row("dense", 1.0, half=0.05), _row("bp", 1.04, half=0.05), _row("pp", 0.8))
    assert suspects(tie, SPARSITY, 0.06) == []


def test_settle_keeps_what_re_measuring_fixes_and_flags_what_it_does_not():
    calls: list[tuple[int, str]] = []

    def remeasure(level, name):
        calls.append((level, name))
        return _row(name, {"bp": 1.2, "pp": 3.0}[name])  # bp was a fluke, pp really is slow

    run = _run(_row("dense", 2.0), _row("bp", 226.0), _row("pp", 3.0))
    fixed, flags = settle(run, SPARSITY, 0.02, remeasure, tries=2)
    assert [r.median_ms for r in fixed.rows] == [2.0, 1.2, 3.0]
    assert calls.count((1000, "bp")) == 1 and calls.count((1000, "pp")) == 2
    assert [(f["variant"], f["rule"]) for f in flags] == [("pp", "sparser-slower")]
    assert "after 2 re-measurement(s)" in flags[0]["detail"]


def test_settle_keeps_a_row_whose_level_no_longer_sticks():
    """A thermal cap arrived after the first pass: the odd row cannot be re-measured at its
    level; it stays as measured, flagged with why, and the run is not lost."""
    calls: list[tuple[int, str]] = []

    def remeasure(level, name):
        calls.append((level, name))
        raise FrequencyError(f"set {level} kHz but the frequency read back is 1400 kHz")

    run = _run(_row("dense", 2.0), _row("bp", 226.0), _row("pp", 0.8))
    kept, flags = settle(run, SPARSITY, 0.02, remeasure, tries=2)
    assert kept.rows == run.rows and calls == [(1000, "bp")]  # tried once, not twice
    assert {f["rule"] for f in flags} == {"sparser-slower", "outlier"}
    assert all(f["variant"] == "bp" and "after 0 re-measurement(s)" in f["detail"] for f in flags)
    assert all("not re-measured: set 1000 kHz" in f["detail"] for f in flags)


class RunnerTimings:
    """A standalone runner (a `TimedWorkload`: the procedure takes the latencies it reports)
    whose inferences take ``ms`` each, give or take a fixed 0.2 % ripple; ``slow_first``
    runs of ``slow`` take ``slow_ms`` (one run caught by another job), ``always_slow``
    variants always do. Its timings are its own, not this (shared, loaded) machine's."""

    def __init__(self, ms: dict[str, float], slow: str | None, slow_first: int,
                 slow_ms: float, always_slow: tuple[str, ...] = ()):  # fmt: skip
        self.ms, self.slow, self.left, self.slow_ms = ms, slow, slow_first, slow_ms
        self.always = always_slow
        self.names = list(ms)
        self.active = self.names[0]
        self.count = 0

    def activate(self, name: str) -> float:
        self.active = name
        return 1e-5

    def _one(self) -> float:
        ms = self.ms[self.active]
        if self.active in self.always:
            ms = self.slow_ms
        elif self.active == self.slow and self.left > 0:
            self.left -= 1
            ms = self.slow_ms
        self.count += 1
        return ms * (1 + 0.001 * (self.count % 5 - 2))

    def time_runs(self, warmup: int, runs: int) -> list[float]:
        for _ in range(warmup):
            self._one()
        return [self._one() for _ in range(runs)]

    def switch_times_ms(self) -> list[float]:
        return [0.01]

    def run_once(self) -> None:
        raise AssertionError("a runner's inferences are timed by the runner")

    def info(self, name: str) -> VariantInfo:
        return VariantInfo(name, SPARSITY[name], 1e6 * (1 - SPARSITY[name]),
                           1e6 * (1 - SPARSITY[name]), 0.3)  # fmt: skip

    def describe(self) -> dict:
        return {"bundle": "runner-timings", "threads": 1, "seq_len": 0}


PLAN = dict(warmup=0, min_runs=6, max_runs=8, time_cap_s=1.0, rel_ci=0.5, switch_reps=0)


@pytest.mark.parametrize("always", [(), ("pp",)])
def test_a_planted_slow_set_is_re_measured_and_flagged_only_if_it_stays_slow(tmp_path, always):
    ms = {"dense": 8.0, "bp": 4.0, "pp": 2.0}
    wl = RunnerTimings(ms, slow="bp", slow_first=6, slow_ms=40.0, always_slow=always)
    lines: list[str] = []
    out = tmp_path / "host.yaml"
    profile_host(wl, "rt3-paper", out, plan_kw=PLAN, host_khz=2000000, progress=lines.append)
    prof = load_profile(out)
    assert any("bp: odd" in line and "re-measuring" in line for line in lines)
    dense, bp = (next(v for v in prof.variants if v.name == n) for n in ("dense", "bp"))
    # The re-measured figure went in, not the planted 40 ms one: bp takes half of dense's
    # 8 ms (40 ms would be five times dense's), at every level it was projected to.
    assert len(bp.latency) == len(prof.levels_khz) > 0
    for row in bp.latency:
        assert row.latency_ms < 0.8 * dense.latency_at(row.freq_khz), (row, dense.latency)
    flags = [(f.variant, f.rule) for f in prof.flags or []]
    if always:
        assert ("pp", "sparser-slower") in flags and not any(v == "bp" for v, _ in flags)
        assert_flags_in_report(tmp_path, out, prof, "pp", "sparser-slower")
    else:
        assert flags == []
    note = prof.resolve(bp.latency[0].provenance).note
    assert note.startswith("measured on host ") and note.endswith("projected by a + b/f")


def assert_flags_in_report(tmp_path, profile_path, prof, variant, rule):
    """The flag reaches the report: simulate the written profile, write a run directory
    with it, build the report and find the flag in its table and its verdict."""
    import shutil

    from reports.report import build_report
    from simulator import simulate, write_run

    run = tmp_path / "run"
    write_run(run, [simulate(prof, policy="rt3")])
    shutil.copy(profile_path, run / "profile.yaml")
    md = (build_report(run, tmp_path / "report").markdown).read_text(encoding="utf-8")
    rows = [line for line in md.splitlines() if line.startswith("|") and f" {rule} " in line]
    assert rows and all(f"| {variant} |" in line for line in rows), md
    assert "## Measurement flags" in md and f"carries {len(prof.flags)} measurement flag(s)" in md
