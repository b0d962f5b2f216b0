"""Temperature and throttling, where the board exposes them.

``/class/thermal/thermal_zone*/temp`` (millidegrees C) gives the hottest zone;
``/devices/system/cpu/cpu*/thermal_throttle/*_throttle_count`` (x86) counts throttling
events; on a Raspberry Pi, ``vcgencmd get_throttled`` bits 1-3 say the clock is capped or
throttled now. Each reader returns None when the board does not expose it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lab.profiling.board.sysfs import CommandRunner, Files, SysfsError

THERMAL = "/class/thermal"
CPU = "/devices/system/cpu"


@dataclass
class ThermalProbe:
    """Reads the hottest zone and a throttle indicator through a `Files` boundary."""

    files: Files
    vcgencmd: CommandRunner | None = None

    def max_temp_c(self) -> float | None:
        """The hottest thermal zone, C (None when no zone is readable)."""
        temps = []
        for z in self.files.listdir(THERMAL):
            if not z.startswith("thermal_zone"):
                continue
            try:
                temps.append(int(self.files.read(f"{THERMAL}/{z}/temp")) / 1000.0)
            except (SysfsError, ValueError):
                continue
        return max(temps) if temps else None

    def throttle_count(self) -> int | None:
        """Sum of the x86 ``thermal_throttle`` counters (None when absent)."""
        total, seen = 0, False
        for cpu in self.files.listdir(CPU):
            if not re.fullmatch(r"cpu\d+", cpu):
                continue
            d = f"{CPU}/{cpu}/thermal_throttle"
            for name in self.files.listdir(d):
                if name.endswith("_throttle_count"):
                    try:
                        total += int(self.files.read(f"{d}/{name}"))
                        seen = True
                    except (SysfsError, ValueError):
                        continue
        return total if seen else None

    def pi_throttled_now(self) -> bool | None:
        """``vcgencmd get_throttled`` bits 1-3 (capped, throttled, soft limit), or None."""
        if self.vcgencmd is None:
            return None
        try:
            res = self.vcgencmd(["vcgencmd", "get_throttled"])
        except SysfsError:
            return None
        m = re.search(r"throttled=(0x[0-9a-fA-F]+)", res.stdout)
        if res.returncode != 0 or not m:
            return None
        return bool(int(m[1], 16) & 0b1110)
