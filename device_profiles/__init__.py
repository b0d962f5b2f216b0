"""Device profiles: boards as validated data (levels, power, battery, governor, latencies).

>>> from device_profiles import load_profile
>>> p = load_profile("rt3-paper")
>>> p.levels_khz
[800000, 1000000, 1400000]
>>> round(p.power_at(1400000)[0], 4)
0.2153
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from device_profiles.loader import (
        ProfileError,
        dump_profile,
        load_profile,
        parse_profile,
        profile_from_dict,
        resolve_profile_path,
        shipped_profiles,
    )
    from device_profiles.schema import DeviceProfile, unprovenanced_numbers

# Public names and the module defining each: imported on first use (PEP 562), so that
# importing the package (as the CLI does at start-up) stays light.
_LAZY: dict[str, str] = {
    "ProfileError": "device_profiles.loader",
    "dump_profile": "device_profiles.loader",
    "load_profile": "device_profiles.loader",
    "parse_profile": "device_profiles.loader",
    "profile_from_dict": "device_profiles.loader",
    "resolve_profile_path": "device_profiles.loader",
    "shipped_profiles": "device_profiles.loader",
    "DeviceProfile": "device_profiles.schema",
    "unprovenanced_numbers": "device_profiles.schema",
}

__all__ = [
    "DeviceProfile",
    "ProfileError",
    "dump_profile",
    "load_profile",
    "parse_profile",
    "profile_from_dict",
    "resolve_profile_path",
    "shipped_profiles",
    "unprovenanced_numbers",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The package's public names, loaded or not."""
    return sorted(set(globals()) | set(_LAZY))
