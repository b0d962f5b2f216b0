"""Ideal battery: energy counting against the nominal energy (capacity x nominal voltage).

At a constant terminal voltage equal to the nominal voltage, coulomb counting and energy
counting are the same model: SoC = 1 - (energy drawn) / (capacity_mah * 3.6 * V_nom).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulator.battery.base import LinearBattery, Load

if TYPE_CHECKING:
    from device_profiles.schema import DeviceProfile


class IdealBattery(LinearBattery):
    """Energy counting; empty when the nominal energy is spent. Exact for any load.

    >>> b = IdealBattery(capacity_mah=1000, nominal_voltage_v=3.6)
    >>> b.energy_j
    12960.0
    >>> b.advance_until(Load.constant(1.0), 1e9)
    (12960.0, 'empty')
    """

    name = "ideal"

    def __init__(self, capacity_mah: float, nominal_voltage_v: float, initial_soc: float = 1.0):
        self.full = capacity_mah * 3.6 * nominal_voltage_v  # J
        self.nominal_voltage_v = nominal_voltage_v
        self.left = self.full * initial_soc

    @classmethod
    def from_profile(
        cls, profile: DeviceProfile, capacity_mah: float, initial_soc: float
    ) -> IdealBattery:
        """The profile's battery at ``capacity_mah``: needs only its nominal voltage."""
        return cls(capacity_mah, profile.battery.nominal_voltage_v, initial_soc)

    @property
    def energy_j(self) -> float:
        """The nominal energy, J (the full quantity)."""
        return self.full

    def drain_rate(self, load: Load) -> float:
        """Energy falls at the load's mean power."""
        return load.mean_w
