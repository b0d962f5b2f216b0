"""Peukert battery: the usable charge shrinks as the discharge current grows.

Peukert's law: t = H (C / (I H))^k for a constant current I, with C rated at a discharge of
H hours. Equivalently, charge is consumed at the effective rate I (I / I_r)^(k-1) with
I_r = C / H, which is what this model integrates. Current is the load's power over the
nominal voltage (the model has no voltage curve).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from simulator.battery.base import BatteryModel, Load, linear_time, profile_params

if TYPE_CHECKING:
    from device_profiles.schema import DeviceProfile


class PeukertBattery(BatteryModel):
    """Coulomb counting at Peukert's effective rate. Exact for piecewise-constant loads.

    >>> b = PeukertBattery(capacity_mah=1000, nominal_voltage_v=1.0, k=1.0, rated_hours=20)
    >>> round(b.advance_until(Load.constant(1.0), 1e9)[0], 6)   # k = 1: plain 3600 C / 1 A
    3600.0
    """

    name = "peukert"

    def __init__(
        self,
        capacity_mah: float,
        nominal_voltage_v: float,
        k: float,
        rated_hours: float = 20.0,
        initial_soc: float = 1.0,
    ):
        self.capacity_c = capacity_mah * 3.6
        self.nominal_voltage_v = nominal_voltage_v
        self.k = k
        self.rated_a = self.capacity_c / (rated_hours * 3600.0)
        self.remaining_c = self.capacity_c * initial_soc

    @classmethod
    def from_profile(
        cls, profile: DeviceProfile, capacity_mah: float, initial_soc: float
    ) -> PeukertBattery:
        """The profile's battery with its ``battery.peukert`` parameters."""
        p = profile_params(profile, "peukert")
        bat = profile.battery
        return cls(capacity_mah, bat.nominal_voltage_v, p.k, p.rated_hours, initial_soc)

    def effective_rate_a(self, load: Load) -> float:
        """Effective discharge rate (A) of a load, each phase at its own current."""
        total = 0.0
        for power, frac in load.phases:
            amps = power / self.nominal_voltage_v
            if amps > 0:
                total += frac * amps * (amps / self.rated_a) ** (self.k - 1.0)
        return total

    def soc(self) -> float:
        """Effective charge left over the rated capacity."""
        return self.remaining_c / self.capacity_c

    def voltage(self, power_w: float) -> float:
        """The nominal voltage."""
        return self.nominal_voltage_v

    def snapshot(self) -> tuple[float, ...]:
        """(remaining effective charge,)."""
        return (self.remaining_c,)

    def restore(self, state: tuple[float, ...]) -> None:
        """Set the remaining effective charge."""
        (self.remaining_c,) = state

    def advance_until(
        self, load: Load, t_max: float, soc_floor: float | None = None
    ) -> tuple[float, str | None]:
        """Closed form: effective charge falls linearly."""
        rate = self.effective_rate_a(load)
        t_empty = linear_time(self.remaining_c, rate, 0.0, t_max)
        t_soc = (
            math.inf
            if soc_floor is None
            else linear_time(self.remaining_c, rate, soc_floor * self.capacity_c, t_max)
        )
        dt = min(t_max, t_empty, t_soc)
        if math.isinf(dt):
            raise ValueError("advance_until: no event and no t_max under a zero load")
        if dt == t_empty and t_empty <= t_max:
            self.remaining_c = 0.0
            return t_empty, "empty"
        self.remaining_c -= rate * dt
        if dt == t_soc and t_soc <= t_max:
            return dt, "soc"
        return dt, None
