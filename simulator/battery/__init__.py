"""Battery models behind one interface (``BatteryModel``), found by name in a registry and
built from a device profile.

A model is a ``BatteryModel`` subclass and a factory ``(profile, capacity_mah,
initial_soc) -> BatteryModel`` registered under its name (``register_battery_model``);
``make_battery`` looks the name up. A model reads what it needs from the profile's
``battery`` (its parameter section, when it has one: ``profile_params``).

>>> battery_models()
('ideal', 'peukert', 'kibam', 'thevenin')
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from simulator.battery.base import BatteryModel, LinearBattery, Load, profile_params
from simulator.battery.ideal import IdealBattery
from simulator.battery.kibam import KiBaMBattery
from simulator.battery.peukert import PeukertBattery
from simulator.battery.thevenin import TheveninBattery
from simulator.errors import SimulatorInputError
from simulator.registry import Registry

if TYPE_CHECKING:
    from device_profiles.schema import DeviceProfile

BatteryFactory = Callable[["DeviceProfile", float, float], BatteryModel]
BATTERY_REGISTRY: Registry[BatteryFactory] = Registry("battery model")


def register_battery_model(name: str, factory: BatteryFactory, replace: bool = False) -> None:
    """Make ``name`` a battery model: ``factory(profile, capacity_mah, initial_soc)`` builds
    it (``--battery-model NAME``, a sweep's ``battery_models``, a profile's
    ``battery.model``). A name already registered needs ``replace``."""
    BATTERY_REGISTRY.add(name, factory, replace)


def unregister_battery_model(name: str) -> None:
    """Forget a registered battery model."""
    BATTERY_REGISTRY.remove(name)


def battery_models() -> tuple[str, ...]:
    """The registered battery models' names, the built-in ones first."""
    return BATTERY_REGISTRY.names()


def make_battery(
    profile: DeviceProfile,
    model: str | None = None,
    capacity_mah: float | None = None,
    initial_soc: float = 1.0,
) -> BatteryModel:
    """The battery model ``model`` (default: the profile's) with the profile's parameters."""
    bat = profile.battery
    if model is None and bat.model not in BATTERY_REGISTRY:
        raise SimulatorInputError(
            f"profile {profile.name!r}: battery.model: unknown {bat.model!r}, expected one of "
            f"{', '.join(battery_models())} (a registered battery model)"
        )
    factory = BATTERY_REGISTRY.get(model or bat.model)
    cap = bat.capacity_mah if capacity_mah is None else capacity_mah
    if not (cap > 0 and math.isfinite(cap)):
        raise SimulatorInputError(f"capacity_mah: must be a positive finite number, got {cap}")
    if not 0.0 < initial_soc <= 1.0:
        raise SimulatorInputError(f"initial_soc: must be in (0, 1], got {initial_soc}")
    return factory(profile, cap, initial_soc)


_BUILT_IN: tuple[type[BatteryModel], ...] = (
    IdealBattery,
    PeukertBattery,
    KiBaMBattery,
    TheveninBattery,
)
for _model in _BUILT_IN:
    register_battery_model(_model.name, _model.from_profile)
# The built-in models' names, in registration order.
BUILT_IN_MODELS: tuple[str, ...] = tuple(m.name for m in _BUILT_IN)

__all__ = [
    "BATTERY_REGISTRY",
    "BUILT_IN_MODELS",
    "BatteryFactory",
    "BatteryModel",
    "IdealBattery",
    "KiBaMBattery",
    "LinearBattery",
    "Load",
    "PeukertBattery",
    "TheveninBattery",
    "battery_models",
    "make_battery",
    "profile_params",
    "register_battery_model",
    "unregister_battery_model",
]
