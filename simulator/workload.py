"""Workloads: when inference requests arrive, and their own deadline.

Spec strings (the CLI's form; their kinds: ``contracts.workloads``): ``continuous`` (back
to back, as RT3 counts inferences per charge), ``periodic:HZ`` (a request every 1/HZ s
from t = 0, deadline one period), ``poisson:HZ`` (exponential inter-arrival times at mean
rate HZ, drawn from the seed) and ``trace:FILE`` (a CSV with a ``time_s`` column of
request times, sorted, non-negative).

A request that arrives while an inference runs is dropped (a frame skipped) and counted
as a deadline miss; the processor never queues more than the request in hand.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from contracts.workloads import CONTINUOUS, PERIODIC, POISSON, TRACE, spec_forms
from simulator.errors import SimulatorInputError

_CHUNK = 65536
_TOL = 1e-9


@dataclass
class Arrivals:
    """Request times by index: ``at(k)``; ``first_at_or_after(t, k)``. inf past the end.

    Poisson times are drawn in chunks of 65,536 from the seed, and only the chunks at or
    after the lowest index still in use are kept: the engine asks for indices in order.
    """

    period_s: float | None = None
    rate_hz: float | None = None
    seed: int = 0
    times: list[float] = field(default_factory=list)
    finite: bool = False

    def __post_init__(self) -> None:
        import numpy as np

        self._np = np
        self._rng = None if self.rate_hz is None else np.random.default_rng(self.seed)
        self._arr = np.asarray(self.times, dtype=float)  # current window of times
        self._base = 0  # global index of self._arr[0]

    def _ensure(self, k: int) -> None:
        """Make index k available (Poisson), dropping chunks before the window."""
        np = self._np
        while self._base + len(self._arr) <= k:
            gaps = self._rng.exponential(1.0 / self.rate_hz, _CHUNK)
            last = self._arr[-1] if len(self._arr) else 0.0
            fresh = last + gaps.cumsum()
            keep = self._arr[max(0, k - self._base - _CHUNK) :] if len(self._arr) else self._arr
            self._base += len(self._arr) - len(keep)
            self._arr = np.concatenate([keep, fresh])

    def restart(self, t: float, k: int) -> None:
        """Poisson only: draw request ``k`` onward afresh from time ``t`` (the process is
        memoryless, so the arrivals after ``t`` need nothing from before it)."""
        if self._rng is None:
            raise ValueError("restart: only a Poisson stream can be drawn afresh")
        gaps = self._rng.exponential(1.0 / self.rate_hz, 256)  # more are drawn as needed
        self._base = k
        self._arr = t + gaps.cumsum()

    def at(self, k: int) -> float:
        """Arrival time of request ``k`` (inf when a finite trace has no more)."""
        if self.period_s is not None:
            return k * self.period_s
        if self._rng is not None:
            self._ensure(k)
        i = k - self._base
        return float(self._arr[i]) if i < len(self._arr) else math.inf

    def first_at_or_after(self, t: float, k: int) -> int:
        """Smallest index >= k whose arrival is at or after ``t`` (within 1e-9 relative;
        periodic arrivals within at most 1e-6 of a period, so that at a long discharge's
        clock the slack does not swallow part of a sub-millisecond period)."""
        slack = _TOL * max(1.0, abs(t))
        if self.period_s is not None:
            slack = min(slack, 1e3 * _TOL * self.period_s)
            return max(k, math.ceil((t - slack) / self.period_s))
        while True:
            if self._rng is not None:
                self._ensure(k)
            i = k - self._base
            j = int(self._np.searchsorted(self._arr[i:], t - slack, side="left")) + i
            if j < len(self._arr) or self._rng is None:
                return self._base + j
            k = self._base + len(self._arr)  # all of this window is earlier: draw more


@dataclass
class Workload:
    """A parsed workload: its spec, kind, arrivals (None when continuous), deadline and
    the run's seed (Poisson arrivals and early-exit draws each draw their own stream)."""

    spec: str
    kind: str
    arrivals: Arrivals | None
    deadline_s: float | None = None
    period_s: float | None = None
    seed: int = 0


# A request period (periodic) or mean gap (Poisson) rt3lab simulates: from 1 us (past a
# MHz, no inference finishes; arrival times lose their precision) to a week (beyond it the
# battery's self-discharge, which no model here has, would dominate; periodic:1e-300 once
# put its second request at t = 1e300 s, where a clock in float s cannot count).
MIN_PERIOD_S = 1e-6
MAX_PERIOD_S = 7 * 86400.0
# Trace files: a CSV of request times, at most this large (about 4 million requests).
MAX_TRACE_BYTES = 64 << 20


def _rate(spec: str, text: str) -> float:
    try:
        hz = float(text)
    except ValueError:
        raise SimulatorInputError(f"workload {spec!r}: rate {text!r} is not a number") from None
    if not (hz > 0 and math.isfinite(hz)):
        raise SimulatorInputError(f"workload {spec!r}: rate must be a positive finite Hz")
    if not MIN_PERIOD_S <= 1.0 / hz <= MAX_PERIOD_S:
        raise SimulatorInputError(
            f"workload {spec!r}: rate {hz:g} Hz is one request every {1.0 / hz:g} s; expected "
            f"{1.0 / MAX_PERIOD_S:.3g} to {1.0 / MIN_PERIOD_S:g} Hz (a period from 1 us to 7 days)"
        )
    return hz


# numpy's seeds are non-negative; a sweep keeps a seed in an int64 column.
MAX_SEED = 2**63 - 1


def check_seed(seed: object, name: str = "seed") -> int:
    """``seed`` when it is an integer from 0 to ``MAX_SEED``; else one error naming ``name``.

    >>> check_seed(7)
    7
    >>> check_seed(-1, "--seed")
    Traceback (most recent call last):
    ...
    simulator.errors.SimulatorInputError: --seed: expected an integer from 0 to 2**63 - 1, got -1
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise SimulatorInputError(f"{name}: expected an integer from 0 to 2**63 - 1, got {seed!r}")
    return seed


def read_trace(path: str | Path) -> list[float]:
    """Request times (s) from a CSV with a ``time_s`` column; sorted and non-negative."""
    from contracts.files import read_text

    p = Path(path)
    if not p.exists():
        raise SimulatorInputError(f"{p}: no such trace file")
    text = read_text(p, MAX_TRACE_BYTES, SimulatorInputError)  # no FIFO, no /dev/zero
    with io.StringIO(text, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "time_s" not in reader.fieldnames:
            raise SimulatorInputError(
                f"{p}: expected a header with a 'time_s' column, got {reader.fieldnames}"
            )
        times: list[float] = []
        for row in reader:
            line = reader.line_num
            raw = (row.get("time_s") or "").strip()
            try:
                t = float(raw)
            except ValueError:
                raise SimulatorInputError(
                    f"{p}: line {line}: time_s {raw!r} is not a number"
                ) from None
            if not math.isfinite(t) or t < 0:
                raise SimulatorInputError(
                    f"{p}: line {line}: time_s {raw} must be finite and non-negative"
                )
            if times and t < times[-1]:
                raise SimulatorInputError(
                    f"{p}: line {line}: time_s {raw} is before the previous {times[-1]}; "
                    "times must be sorted"
                )
            times.append(t)
    if not times:
        raise SimulatorInputError(f"{p}: the trace has no requests")
    return times


def parse_workload(spec: str, seed: int = 0) -> Workload:
    """Parse a workload spec string (its forms: ``contracts.workloads``)."""
    check_seed(seed)
    kind, _, arg = spec.partition(":")
    if kind == CONTINUOUS and not arg:
        return Workload(spec, kind, None, seed=seed)
    if kind == PERIODIC and arg:
        hz = _rate(spec, arg)
        return Workload(spec, kind, Arrivals(period_s=1.0 / hz), 1.0 / hz, 1.0 / hz, seed)
    if kind == POISSON and arg:
        return Workload(spec, kind, Arrivals(rate_hz=_rate(spec, arg), seed=seed), seed=seed)
    if kind == TRACE and arg:
        return Workload(spec, kind, Arrivals(times=read_trace(arg), finite=True), seed=seed)
    raise SimulatorInputError(f"workload: unknown {spec!r}, expected {spec_forms()}")
