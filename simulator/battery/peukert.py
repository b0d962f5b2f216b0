"""Peukert battery: the usable charge shrinks as the discharge current grows.

Peukert's law: t = H (C / (I H))^k for a constant current I, with C rated at a discharge of
H hours. Equivalently, charge is consumed at the effective rate I (I / I_r)^(k-1) with
I_r = C / H, which is what this model integrates. Current is the load's power over the
nominal voltage (the model has no voltage curve).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulator.battery.base import LinearBattery, Load, profile_params

if TYPE_CHECKING:
    from device_profiles.schema import DeviceProfile


class PeukertBattery(LinearBattery):
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
        self.full = capacity_mah * 3.6  # C, effective charge
        self.nominal_voltage_v = nominal_voltage_v
        self.k = k
        self.rated_a = self.full / (rated_hours * 3600.0)
        self.left = self.full * initial_soc

    @classmethod
    def from_profile(
        cls, profile: DeviceProfile, capacity_mah: float, initial_soc: float
    ) -> PeukertBattery:
        """The profile's battery with its ``battery.peukert`` parameters."""
        p = profile_params(profile, "peukert")
        bat = profile.battery
        return cls(capacity_mah, bat.nominal_voltage_v, p.k, p.rated_hours, initial_soc)

    def drain_rate(self, load: Load) -> float:
        """Effective discharge rate (A) of a load, each phase at its own current."""
        total = 0.0
        for power, frac in load.phases:
            amps = power / self.nominal_voltage_v
            if amps > 0:
                total += frac * amps * (amps / self.rated_a) ** (self.k - 1.0)
        return total
