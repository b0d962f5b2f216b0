"""Work bounds: a run whose event count or memory would exceed a stated bound is refused
before it starts, with the numbers.

The estimate is an upper bound on the battery life: the nominal energy (capacity x 3.6 x
nominal voltage, the ideal model's) over the lowest mean power the workload can draw at any
level the governor may use. From it follow the time-series rows (a row per state change
and per 1% of the energy drawn, whatever the capacity, plus one per ``sample_s`` when a
grid is asked for; about 1.1 kB each at peak, measured with tracemalloc on a 43,276-row
pixel-3 run), the requests stepped one at a time (``exact`` mode; Poisson and trace
workloads in ``fast``) and the inferences counted (exact as float64 only up to 2**53).
Peukert and KiBaM can deliver somewhat more than the nominal energy at low currents, so the
figures are estimates; the bounds leave room for every real battery and board.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulator.device import Device
from simulator.errors import SimulatorInputError
from simulator.workload import Workload


class WorkBoundError(SimulatorInputError):
    """A run whose estimated work exceeds the bounds (refused before it starts)."""


#: Time-series rows one run may keep (about 550 MB at 1.1 kB a row).
MAX_ROWS = 500_000
#: Requests one run may step one at a time (simpy: about 1e5 a second with the machine).
MAX_STEPS = 10_000_000
#: Inferences a run may count: float64 holds every integer only up to 2**53.
MAX_INFERENCES = 2.0**53
#: Event-based time-series rows: one per 1% of the energy and per state change (generous).
EVENT_ROWS = 1000
#: Bytes a time-series row takes at peak (rows, then the DataFrame built from them).
ROW_BYTES = 1100


@dataclass(frozen=True)
class WorkEstimate:
    """Upper estimates for one run: battery life, time-series rows and stepped requests."""

    life_s: float
    rows: float
    steps: float
    inferences: float = 0.0

    @property
    def memory_bytes(self) -> float:
        """Estimated peak memory of the time series."""
        return self.rows * ROW_BYTES


def _rate_hz(wl: Workload) -> float | None:
    arr = wl.arrivals
    if arr is None:
        return None
    if arr.rate_hz is not None:
        return float(arr.rate_hz)
    if arr.period_s is not None:
        return 1.0 / arr.period_s
    return None


def estimate_work(
    device: Device, wl: Workload, energy_j: float, mode: str, sample_s: float | None
) -> WorkEstimate:
    """Upper estimates of the work a run of ``device`` on ``wl`` with ``energy_j`` takes.

    >>> from simulator.device import build_device
    >>> from simulator.workload import parse_workload
    >>> from device_profiles import load_profile
    >>> p = load_profile("rt3-paper")
    >>> dev = build_device(p, p.levels_khz)
    >>> w = estimate_work(dev, parse_workload("continuous"), 3.6 * 3.7 * 1, "exact", 60.0)
    >>> round(w.life_s), round(w.steps)
    (169, 1465)
    """
    rate = _rate_hz(wl)
    floors: list[float] = []
    fastest = min(v.fastest(k) for v in device.variants for k in device.levels)
    for khz in device.levels:
        busy, idle = device.busy_w[khz], device.idle_w[khz]
        lat = min(v.fastest(khz) for v in device.variants)
        if wl.kind == "continuous":
            floors.append(busy)
        elif rate is not None:
            floors.append(idle + (busy - idle) * min(1.0, rate * lat))
        else:
            floors.append(idle)
    floor = min(floors)
    if not math.isfinite(energy_j):
        life = math.inf
    elif floor > 0:
        life = energy_j / floor
    elif wl.kind == "trace" and wl.arrivals is not None and wl.arrivals.times:
        life = float(wl.arrivals.times[-1]) + fastest  # idle costs nothing: ends with the trace
    else:
        life = math.inf
    rows = EVENT_ROWS + (life / sample_s if sample_s else 0.0)
    per_s = 1.0 / fastest if wl.kind == "continuous" else (rate or 0.0)
    inferences = life * per_s if wl.kind != "trace" else 0.0
    if wl.kind == "trace" and wl.arrivals is not None:
        steps = float(len(wl.arrivals.times))
    elif mode == "exact" or (wl.kind == "poisson" and mode != "mean"):
        steps = life * per_s
    else:
        steps = rows  # whole cycles are batched between time-series rows
    return WorkEstimate(life, rows, steps, inferences)


def check_work(
    device: Device, wl: Workload, energy_j: float, mode: str, sample_s: float | None, what: str
) -> WorkEstimate:
    """Refuse (``WorkBoundError``) a run whose estimated work exceeds the bounds."""
    w = estimate_work(device, wl, energy_j, mode, sample_s)
    if not math.isfinite(energy_j):
        raise WorkBoundError(f"{what}: the battery's energy is not a finite number")
    if w.inferences > MAX_INFERENCES:
        raise WorkBoundError(
            f"{what}: the discharge would last up to {w.life_s:.3g} s and count up to "
            f"{w.inferences:.3g} inferences; the bound is 2**53 ({MAX_INFERENCES:.3g}, the "
            "largest count float64 holds exactly): lower the capacity"
        )
    if w.rows > MAX_ROWS:
        raise WorkBoundError(
            f"{what}: the discharge would last up to {w.life_s:.3g} s ({energy_j:.3g} J at no "
            f"less than {energy_j / w.life_s:.3g} W), {w.rows:.3g} time-series rows at "
            f"sample_s {sample_s} (about {w.memory_bytes / 1e9:.3g} GB); the bound is "
            f"{MAX_ROWS:,} rows: lower the capacity or raise sample_s"
        )
    if w.steps > MAX_STEPS:
        raise WorkBoundError(
            f"{what}: the discharge would step up to {w.steps:.3g} requests one at a time "
            f"({mode} mode, {wl.spec}) over up to {w.life_s:.3g} s; the bound is "
            f"{MAX_STEPS:,}: lower the capacity or use fast mode"
        )
    return w
