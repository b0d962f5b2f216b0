"""Battery models behind one interface (``BatteryModel``), built from a device profile."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulator.battery.base import BatteryModel, Load
from simulator.battery.ideal import IdealBattery
from simulator.battery.kibam import KiBaMBattery
from simulator.battery.peukert import PeukertBattery
from simulator.battery.thevenin import TheveninBattery
from simulator.errors import SimulatorInputError

if TYPE_CHECKING:
    from device_profiles.schema import DeviceProfile

BATTERY_MODELS = ("ideal", "peukert", "kibam", "thevenin")


def make_battery(
    profile: DeviceProfile,
    model: str | None = None,
    capacity_mah: float | None = None,
    initial_soc: float = 1.0,
) -> BatteryModel:
    """The battery model ``model`` (default: the profile's) with the profile's parameters."""
    bat = profile.battery
    name = model or bat.model
    if name not in BATTERY_MODELS:
        raise SimulatorInputError(
            f"battery model: unknown {name!r}, expected one of {', '.join(BATTERY_MODELS)}"
        )
    cap = bat.capacity_mah if capacity_mah is None else capacity_mah
    if not cap > 0 or cap != cap or cap == float("inf"):
        raise SimulatorInputError(f"capacity_mah: must be a positive finite number, got {cap}")
    if not 0.0 < initial_soc <= 1.0:
        raise SimulatorInputError(f"initial_soc: must be in (0, 1], got {initial_soc}")
    if name == "ideal":
        return IdealBattery(cap, bat.nominal_voltage_v, initial_soc)
    params = getattr(bat, name)
    if params is None:
        raise SimulatorInputError(
            f"profile {profile.name!r}: battery.{name} is missing; the {name} model needs it"
        )
    if name == "peukert":
        return PeukertBattery(cap, bat.nominal_voltage_v, params.k, params.rated_hours, initial_soc)
    if name == "kibam":
        return KiBaMBattery(cap, bat.nominal_voltage_v, params.c, params.k_per_s, initial_soc)
    return TheveninBattery(
        cap,
        params.ocv.soc,
        params.ocv.ocv_v,
        params.r0_ohm,
        [(p.r_ohm, p.c_f) for p in params.rc],
        params.cutoff_v,
        initial_soc,
    )


__all__ = [
    "BATTERY_MODELS",
    "BatteryModel",
    "IdealBattery",
    "KiBaMBattery",
    "Load",
    "PeukertBattery",
    "TheveninBattery",
    "make_battery",
]
