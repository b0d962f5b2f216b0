"""Kinetic battery model (Manwell & McGowan), stepped with its exact closed form.

Two wells: y1 the available charge (a fraction c of the capacity at full charge) and y2 the
bound charge; charge flows from bound to available at k (h2 - h1), h1 = y1 / c,
h2 = y2 / (1 - c). The battery is empty when y1 reaches 0, even though bound charge
remains: that is the rate-capacity effect, and the flow back during idle is recovery.
Current is the load's power over the nominal voltage. SoC is the total charge left,
(y1 + y2) / capacity, as a fuel gauge counts it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from simulator.battery.base import BatteryModel, Load, linear_time, profile_params

if TYPE_CHECKING:
    from device_profiles.schema import DeviceProfile


def _one_minus_e(x: float) -> float:
    """1 - exp(-x), accurate for small x."""
    return -math.expm1(-x)


def _ramp(x: float) -> float:
    """x - 1 + exp(-x), accurate for small x."""
    if x < 1e-3:
        return x * x * (0.5 - x * (1.0 / 6.0 - x / 24.0))
    return x + math.expm1(-x)


class KiBaMBattery(BatteryModel):
    """KiBaM with capacity in coulombs, k in 1/s; exact under a constant current.

    >>> b = KiBaMBattery(capacity_mah=1000, nominal_voltage_v=1.0, c=0.5, k_per_s=1e-3)
    >>> t, why = b.advance_until(Load.constant(1.0), 1e9)   # 1 A from a 3600 C cell
    >>> why, 1800 < t < 3600
    ('empty', True)
    """

    name = "kibam"

    def __init__(
        self,
        capacity_mah: float,
        nominal_voltage_v: float,
        c: float,
        k_per_s: float,
        initial_soc: float = 1.0,
    ):
        self.capacity_c = capacity_mah * 3.6
        self.nominal_voltage_v = nominal_voltage_v
        self.c = c
        self.k = k_per_s
        self.kp = k_per_s / (c * (1.0 - c))
        q0 = self.capacity_c * initial_soc
        self.y1 = c * q0
        self.y2 = (1.0 - c) * q0

    @classmethod
    def from_profile(
        cls, profile: DeviceProfile, capacity_mah: float, initial_soc: float
    ) -> KiBaMBattery:
        """The profile's battery with its ``battery.kibam`` parameters."""
        p = profile_params(profile, "kibam")
        return cls(capacity_mah, profile.battery.nominal_voltage_v, p.c, p.k_per_s, initial_soc)

    def current_a(self, load: Load) -> float:
        """Mean current (A) of a load at the nominal voltage."""
        return load.mean_w / self.nominal_voltage_v

    def soc(self) -> float:
        """Total charge left over the capacity."""
        return (self.y1 + self.y2) / self.capacity_c

    def voltage(self, power_w: float) -> float:
        """The nominal voltage."""
        return self.nominal_voltage_v

    def snapshot(self) -> tuple[float, ...]:
        """(y1, y2)."""
        return (self.y1, self.y2)

    def restore(self, state: tuple[float, ...]) -> None:
        """Set (y1, y2)."""
        self.y1, self.y2 = state

    def wells_after(self, current_a: float, t: float) -> tuple[float, float]:
        """(y1, y2) after ``t`` s at a constant ``current_a`` (Jongerden & Haverkort's form)."""
        kp, c = self.kp, self.c
        x = kp * t
        e = math.exp(-x)
        ome = _one_minus_e(x)
        ramp = _ramp(x)
        y0 = self.y1 + self.y2
        y1 = self.y1 * e + (y0 * kp * c - current_a) * ome / kp - current_a * c * ramp / kp
        y2 = self.y2 * e + y0 * (1.0 - c) * ome - current_a * (1.0 - c) * ramp / kp
        return y1, y2

    # ---- exact cycle map ------------------------------------------------------------
    # With Y = y1 + y2 and d = h2 - h1: dY/dt = -I and dd/dt = I/c - k' d, so over a phase
    # d relaxes to I / (c k') and, cycle after cycle, d follows d_j = a^j d_0 + b (1 - a^j)
    # / (1 - a): the whole discharge under a periodic load is known in closed form.
    def _diff(self) -> float:
        return self.y2 / (1.0 - self.c) - self.y1 / self.c

    def _set(self, total: float, diff: float) -> None:
        h1 = total - (1.0 - self.c) * diff
        self.y1 = self.c * h1
        self.y2 = total - self.y1

    def safe_cycles(
        self, phases: tuple[tuple[float, float], ...], n_max: int, soc_floor: float | None = None
    ) -> int:
        """Exact: whole cycles before y1 first reaches 0 (or SoC its floor), by bisection."""
        kp, c = self.kp, self.c
        amps = [(p / self.nominal_voltage_v, d) for p, d in phases if d > 0]
        q_cycle = sum(i * d for i, d in amps)
        period = sum(d for _, d in amps)
        if q_cycle <= 0:
            return n_max

        def through(diff: float, i: float, d: float) -> float:
            target = i / (c * kp)
            return target + (diff - target) * math.exp(-kp * d)

        def cycle_map(diff: float) -> float:
            for i, d in amps:
                diff = through(diff, i, d)
            return diff

        b = cycle_map(0.0)
        log_a = -kp * period
        total0, diff0 = self.y1 + self.y2, self._diff()

        def start_of(j: int) -> tuple[float, float]:
            aj = math.exp(j * log_a)
            geo = j if log_a == 0 else math.expm1(j * log_a) / math.expm1(log_a)
            return total0 - j * q_cycle, aj * diff0 + b * geo

        def bad(j: int) -> bool:  # cycle j holds an event (y1 <= 0 at a phase end)
            total, diff = start_of(j)
            if soc_floor is not None and total - q_cycle < soc_floor * self.capacity_c:
                return True
            for i, d in amps:
                total -= i * d
                diff = through(diff, i, d)
                if c * (total - (1.0 - c) * diff) <= 0.0:
                    return True
            return False

        lo, hi = 0, min(n_max, math.ceil(total0 / q_cycle) + 1)
        if not bad(hi):
            n = hi
        else:
            while hi - lo > 1:  # invariant: cycles < lo are safe, cycle hi is bad
                mid = (lo + hi) // 2
                if bad(mid):
                    hi = mid
                else:
                    lo = mid
            n = lo if bad(lo) else hi
        n = min(n, n_max)
        total, diff = start_of(n)
        self._set(total, diff)
        return n

    def _time_to_empty(self, current_a: float, t_max: float) -> float:
        """First t in [0, t_max] with y1(t) = 0, or inf (y1 has at most one extremum)."""
        if current_a <= 0.0:
            return math.inf  # no load: the available well only refills
        if self.y1 <= 0.0:
            return 0.0
        hi = (self.y1 + self.y2) / current_a  # total charge gone: y1 must be <= 0 by then
        if t_max < hi:
            if self.wells_after(current_a, t_max)[0] > 0.0:
                return math.inf
            hi = t_max
        from scipy.optimize import brentq

        return brentq(lambda t: self.wells_after(current_a, t)[0], 0.0, hi, xtol=1e-12, rtol=1e-14)

    def advance_until(
        self, load: Load, t_max: float, soc_floor: float | None = None
    ) -> tuple[float, str | None]:
        """Exact step; the empty time by root-finding on the closed form."""
        amps = self.current_a(load)
        t_empty = self._time_to_empty(amps, t_max)
        t_soc = (
            math.inf
            if soc_floor is None
            else linear_time(self.y1 + self.y2, amps, soc_floor * self.capacity_c, t_max)
        )
        dt = min(t_max, t_empty, t_soc)
        if math.isinf(dt):
            raise ValueError("advance_until: no event and no t_max under a zero load")
        self.y1, self.y2 = self.wells_after(amps, dt)
        if dt == t_empty:
            self.y1 = 0.0
            return dt, "empty"
        if dt == t_soc and t_soc <= t_max:
            return dt, "soc"
        return dt, None
