"""The measurement procedure: every level, every variant, latency and power, with checks.

Per level: set the frequency (and read it back), let it settle (`set_level`: the
settle time, then the meter's first sample at the new level), take an idle baseline
window, then for each variant switch to it, warm up, time inferences until the median's
confidence interval is within ``rel_ci`` (or the time cap), keeping an energy window open
over the timed runs (extended with more inferences until it is at least
``power_window_s`` long, so a meter updating every 0.5 s sees enough samples). The
frequency is read back before and after each variant: a run where it differs from the one
set is flagged (``freq_ok = False``), as is any throttling seen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from lab.profiling.board.cpufreq import FrequencyControl
from lab.profiling.board.thermal import ThermalProbe
from lab.profiling.power import PowerSource
from lab.profiling.stats import LatencyStats, StopRule, measure_until_stable, median, median_ci
from lab.profiling.workload import TimedWorkload, Workload


class PlanError(ValueError):
    """A measurement plan that cannot run: the message names the option."""


@dataclass(frozen=True, kw_only=True)
class Plan(StopRule):
    """How long and how hard to measure: the levels, when each variant's timing stops
    (the :class:`~lab.profiling.stats.StopRule` fields), and the waits and windows."""

    levels_khz: tuple[int, ...]
    settle_s: float = 0.5
    idle_s: float = 2.0
    power_window_s: float = 2.0
    switch_reps: int = 50

    def __post_init__(self) -> None:
        """Refuse settings that make a measurement run on or mean nothing."""
        finite = math.isfinite
        checks = [
            ("--rel-ci", self.rel_ci, 0 < self.rel_ci < 1, "a fraction in (0, 1)"),
            ("--warmup", self.warmup, self.warmup >= 0, ">= 0"),
            ("--min-runs", self.min_runs, self.min_runs >= 1, ">= 1"),
            ("--max-runs", self.max_runs, self.max_runs >= self.min_runs, ">= --min-runs"),
            (
                "--time-cap",
                self.time_cap_s,
                finite(self.time_cap_s) and self.time_cap_s > 0,
                "> 0 s",
            ),
            ("--settle", self.settle_s, finite(self.settle_s) and self.settle_s >= 0, ">= 0 s"),
            ("--idle", self.idle_s, finite(self.idle_s) and self.idle_s > 0, "> 0 s"),
            (
                "--power-window",
                self.power_window_s,
                finite(self.power_window_s) and self.power_window_s > 0,
                "> 0 s",
            ),
        ]
        for option, value, ok, expected in checks:
            if not ok:
                raise PlanError(f"{option}: must be {expected}, got {value}")


@dataclass
class Measurement:
    """One row of the raw measurements CSV: a variant busy at a level, or the idle baseline."""

    level_khz: int
    variant: str  # a variant name, or "idle"
    kind: str  # "busy" | "idle"
    readback_khz: int | None
    readback_end_khz: int | None
    freq_ok: bool
    median_ms: float | None = None
    ci_low_ms: float | None = None
    ci_high_ms: float | None = None
    runs: int = 0
    converged: bool | None = None
    inferences: int = 0
    energy_j: float | None = None
    mean_power_w: float | None = None
    window_s: float | None = None
    power_samples: int | None = None
    power_reliable: bool | None = None
    energy_per_inference_j: float | None = None
    temp_c: float | None = None
    throttled: bool | None = None
    t_unix_s: float = field(default_factory=time.time)
    samples_ms: tuple[float, ...] = field(default=(), repr=False)
    """Every timed run's latency (ms, warm-ups excluded), in the order run: what the
    median summarises (``PROFILE.runs.csv``; not a column of the measurements CSV)."""

    def row(self) -> dict[str, Any]:
        """As a flat dict for the CSV (without the per-run ``samples_ms``)."""
        d = asdict(self)
        del d["samples_ms"]
        return d


@dataclass
class ProfileRun:
    """Everything a run measured."""

    rows: list[Measurement]
    switch_ms: list[float]
    control: dict[str, Any]
    workload: dict[str, Any]
    meter: str | None

    def busy(self, variant: str) -> list[Measurement]:
        """The busy rows of one variant, by level."""
        return sorted(
            (r for r in self.rows if r.kind == "busy" and r.variant == variant),
            key=lambda r: r.level_khz,
        )

    def idle(self) -> list[Measurement]:
        """The idle rows, by level."""
        return sorted((r for r in self.rows if r.kind == "idle"), key=lambda r: r.level_khz)

    @property
    def flagged(self) -> list[Measurement]:
        """Rows whose frequency did not hold or that were throttled."""
        return [r for r in self.rows if not r.freq_ok or r.throttled]


def _same(a: int | None, b: int, tol_khz: int) -> bool:
    return a is not None and abs(a - b) <= tol_khz


def measure_variant(
    control: FrequencyControl,
    workload: Workload,
    plan: Plan,
    level: int,
    name: str,
    power: PowerSource | None = None,
    thermal: ThermalProbe | None = None,
    say: Callable[[str], None] = lambda _msg: None,
    tolerance_khz: int = 0,
) -> Measurement:
    """Time (and meter) one variant at the level already set: warm up, run until the
    median's interval is within ``plan.rel_ci`` or the time cap, check the frequency held."""

    def throttle_state() -> tuple[int | None, bool | None]:
        if thermal is None:
            return None, None
        return thermal.throttle_count(), thermal.pi_throttled_now()

    workload.activate(name)
    count0, _ = throttle_state()
    start_khz = control.current_khz()
    timed = isinstance(workload, TimedWorkload)
    if not timed:
        for _ in range(plan.warmup):
            workload.run_once()
    if power is not None:
        power.begin(f"{name}@{level}")
    t_window = time.monotonic()
    if isinstance(workload, TimedWorkload):
        stats, n = timed_until_stable(workload, plan)
    else:
        stats = measure_until_stable(workload.run_once, replace(plan, warmup=0))  # warmed up
        n = stats.runs
    reading = None
    if power is not None:
        while (left := plan.power_window_s - (time.monotonic() - t_window)) > 0:
            if isinstance(workload, TimedWorkload):  # one runner process fills the rest
                runs = max(1, math.ceil(left * 1e3 / max(stats.median_ms, 1e-6)))
                workload.time_runs(0, runs)
                n += runs
            else:
                workload.run_once()
                n += 1
        reading = power.end(f"{name}@{level}")
    end_khz = control.current_khz()
    count1, pi_now = throttle_state()
    throttled = None
    if count0 is not None and count1 is not None:
        throttled = count1 > count0
    if pi_now is not None:
        throttled = bool(throttled) or pi_now
    ok = _same(start_khz, level, tolerance_khz) if start_khz is not None else True
    ok = ok and (end_khz is None or _same(end_khz, level, tolerance_khz))
    if not control.controllable:
        ok = _same(start_khz, level, tolerance_khz)
    m = Measurement(
        level, name, "busy", start_khz, end_khz, ok,
        median_ms=stats.median_ms, ci_low_ms=stats.ci_low_ms, ci_high_ms=stats.ci_high_ms,
        runs=stats.runs, converged=stats.converged, inferences=n,
        temp_c=None if thermal is None else thermal.max_temp_c(), throttled=throttled,
        samples_ms=tuple(stats.samples_ms),
    )  # fmt: skip
    if reading is not None:
        m.energy_j = reading.energy_j
        m.mean_power_w = reading.mean_power_w
        m.window_s = reading.duration_s
        m.power_samples = reading.samples
        m.power_reliable = reading.reliable
        m.energy_per_inference_j = reading.energy_j / n if n else None
    say(
        f"{level} kHz {name}: {stats.median_ms:.3f} ms "
        f"[{stats.ci_low_ms:.3f}, {stats.ci_high_ms:.3f}] n={stats.runs}"
        + ("" if reading is None else f", {reading.mean_power_w:.3f} W")
        + ("" if ok else "  FLAGGED: frequency did not hold")
    )
    return m


def timed_until_stable(workload: TimedWorkload, plan: Plan) -> tuple[LatencyStats, int]:
    """The runner's own timings in batches (one process each, each warmed up): ``min_runs``,
    then as many again as there are, until the median's CI is within ``plan.rel_ci``,
    ``max_runs`` or the time cap; the stats and the inferences run (warm-ups included)."""
    start = time.monotonic()
    samples: list[float] = []
    inferences, converged = 0, False
    batch = plan.min_runs
    while True:
        samples += workload.time_runs(plan.warmup, batch)
        inferences += plan.warmup + batch
        lo, hi = median_ci(samples)
        med = median(samples)
        if med > 0 and (hi - lo) / 2 <= plan.rel_ci * med:
            converged = True
            break
        if len(samples) >= plan.max_runs or time.monotonic() - start > plan.time_cap_s:
            break
        batch = min(len(samples), plan.max_runs - len(samples))
    if not math.isfinite(lo):
        lo, hi = min(samples), max(samples)
    stats = LatencyStats(
        tuple(samples), med, lo, hi, converged, plan.warmup, time.monotonic() - start
    )
    return stats, inferences


def set_level(
    control: FrequencyControl, plan: Plan, level: int, power: PowerSource | None = None
) -> int:
    """Set ``level``, wait ``plan.settle_s``, then (with ``power``) wait for the meter's
    first sample taken after that: a power window opened afterwards holds no sample that
    straddles the change, however late the meter's reader thread runs on a loaded machine.
    Returns the frequency read back."""
    got = control.set_khz(level)
    time.sleep(plan.settle_s)
    if power is not None:  # an empty window: its end waits for a sample past it
        power.begin(f"settle@{level}")
        power.end(f"settle@{level}")
    return got


def run_profile(
    control: FrequencyControl,
    workload: Workload,
    plan: Plan,
    power: PowerSource | None = None,
    thermal: ThermalProbe | None = None,
    progress: Callable[[str], None] | None = None,
    tolerance_khz: int = 0,
) -> ProfileRun:
    """Measure every level of ``plan`` and every variant of ``workload``.

    The caller owns the board's state: wrap this in `lab.profiling.board.guard.restoring`.
    """
    say = progress or (lambda _msg: None)
    rows: list[Measurement] = []
    switch_ms: list[float] = []

    for level in plan.levels_khz:
        got = set_level(control, plan, level, power)
        say(f"{level} kHz: set, read back {got} kHz")
        if power is not None:
            ok_set = _same(got, level, tolerance_khz)
            power.begin(f"idle@{level}")
            time.sleep(plan.idle_s)
            w = power.end(f"idle@{level}")
            end = control.current_khz()
            rows.append(
                Measurement(
                    level, "idle", "idle", got, end,
                    ok_set and (end is None or _same(end, level, tolerance_khz)),
                    energy_j=w.energy_j, mean_power_w=w.mean_power_w, window_s=w.duration_s,
                    power_samples=w.samples, power_reliable=w.reliable,
                    temp_c=None if thermal is None else thermal.max_temp_c(),
                )
            )  # fmt: skip
        for name in workload.names:
            rows.append(
                measure_variant(control, workload, plan, level, name, power, thermal, say,
                                tolerance_khz)
            )  # fmt: skip
    if isinstance(workload, TimedWorkload):  # the switch as the runner times it
        switch_ms = workload.switch_times_ms()
        if switch_ms:
            say(f"switch (runner): medians {', '.join(f'{x:.6f}' for x in switch_ms)} ms")
    elif len(workload.names) > 1 and plan.switch_reps > 0:
        for i in range(plan.switch_reps):
            switch_ms.append(workload.activate(workload.names[i % len(workload.names)]) * 1e3)
        say(f"switch: median {median(switch_ms):.4f} ms over {len(switch_ms)}")
    return ProfileRun(
        rows, switch_ms, control.describe(), workload.describe(), getattr(power, "meter", None)
    )


def merge_rounds(runs: list[ProfileRun]) -> ProfileRun:
    """Independent rounds of the same plan as one run: per (level, variant), the median of
    the rounds' medians, and as interval the envelope of their CIs, which on a shared
    machine is the run-to-run noise the within-round CI does not see; the per-run samples
    of every round, one after the other (their median need not be the rounds' median).
    """
    if len(runs) == 1:
        return runs[0]
    merged: list[Measurement] = []
    keys = [(r.level_khz, r.variant, r.kind) for r in runs[0].rows]
    for key in keys:
        group = [r for run in runs for r in run.rows if (r.level_khz, r.variant, r.kind) == key]
        first = group[0]
        m = Measurement(**{**first.row()})
        if first.median_ms is not None:
            m.median_ms = median([g.median_ms for g in group if g.median_ms is not None])
            m.ci_low_ms = min(g.ci_low_ms for g in group if g.ci_low_ms is not None)
            m.ci_high_ms = max(g.ci_high_ms for g in group if g.ci_high_ms is not None)
            m.runs = sum(g.runs for g in group)
            m.converged = all(bool(g.converged) for g in group)
            m.inferences = sum(g.inferences for g in group)
        m.freq_ok = all(g.freq_ok for g in group)
        m.samples_ms = tuple(x for g in group for x in g.samples_ms)
        merged.append(m)
    switch = [x for run in runs for x in run.switch_ms]
    return ProfileRun(merged, switch, runs[0].control, runs[0].workload, runs[0].meter)
