"""Device profiles: boards as validated data (levels, power, battery, governor, latencies).

>>> from device_profiles import load_profile
>>> p = load_profile("rt3-paper")
>>> p.levels_khz
[800000, 1000000, 1400000]
>>> round(p.power_at(1400000)[0], 4)
0.2153
"""

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
