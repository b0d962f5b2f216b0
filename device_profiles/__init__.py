"""Device profiles: boards as validated data (levels, power, battery, governor, latencies).

>>> from device_profiles import load_profile
>>> p = load_profile("rt3-paper")
>>> p.levels_khz
[800000, 1000000, 1400000]
>>> round(p.power_at(1400000)[0], 4)
0.2153
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from contracts.lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
