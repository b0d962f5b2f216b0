"""Ideal battery: energy counting against the nominal energy (capacity x nominal voltage).

At a constant terminal voltage equal to the nominal voltage, coulomb counting and energy
counting are the same model: SoC = 1 - (energy drawn) / (capacity_mah * 3.6 * V_nom).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from simulator.battery.base import BatteryModel, Load, linear_time

if TYPE_CHECKING:
    from device_profiles.schema import DeviceProfile


class IdealBattery(BatteryModel):
    """Energy counting; empty when the nominal energy is spent. Exact for any load.

    >>> b = IdealBattery(capacity_mah=1000, nominal_voltage_v=3.6)
    >>> b.energy_j
    12960.0
    >>> b.advance_until(Load.constant(1.0), 1e9)
    (12960.0, 'empty')
    """

    name = "ideal"

    def __init__(self, capacity_mah: float, nominal_voltage_v: float, initial_soc: float = 1.0):
        self.energy_j = capacity_mah * 3.6 * nominal_voltage_v
        self.nominal_voltage_v = nominal_voltage_v
        self.remaining_j = self.energy_j * initial_soc

    @classmethod
    def from_profile(
        cls, profile: DeviceProfile, capacity_mah: float, initial_soc: float
    ) -> IdealBattery:
        """The profile's battery at ``capacity_mah``: needs only its nominal voltage."""
        return cls(capacity_mah, profile.battery.nominal_voltage_v, initial_soc)

    def soc(self) -> float:
        """Fraction of the nominal energy left."""
        return self.remaining_j / self.energy_j

    def voltage(self, power_w: float) -> float:
        """The nominal voltage, whatever the load."""
        return self.nominal_voltage_v

    def snapshot(self) -> tuple[float, ...]:
        """(remaining energy,)."""
        return (self.remaining_j,)

    def restore(self, state: tuple[float, ...]) -> None:
        """Set the remaining energy."""
        (self.remaining_j,) = state

    def advance_until(
        self, load: Load, t_max: float, soc_floor: float | None = None
    ) -> tuple[float, str | None]:
        """Closed form: energy falls linearly at the mean power."""
        rate = load.mean_w
        t_empty = linear_time(self.remaining_j, rate, 0.0, t_max)
        t_soc = (
            math.inf
            if soc_floor is None
            else linear_time(self.remaining_j, rate, soc_floor * self.energy_j, t_max)
        )
        dt = min(t_max, t_empty, t_soc)
        if math.isinf(dt):
            raise ValueError("advance_until: no event and no t_max under a zero load")
        if dt == t_empty and t_empty <= t_max:
            self.remaining_j = 0.0
            return t_empty, "empty"
        self.remaining_j -= rate * dt
        if dt == t_soc and t_soc <= t_max:
            return dt, "soc"
        return dt, None
