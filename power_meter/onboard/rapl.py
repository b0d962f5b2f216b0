"""Intel RAPL: package energy from the powercap ``energy_uj`` counters, wraps handled.

Top-level zones ``intel-rapl:N`` are the packages; their sub-zones (``intel-rapl:N:M``:
core, uncore, dram) are inside them and are not added again. A counter wraps at
``max_energy_range_uj``: a decrease adds the range + 1 back (the poll period is far
shorter than the minutes a wrap takes, so at most one wrap happens between two reads).
"""

from __future__ import annotations

import math
import re

from power_meter.onboard.files import SensorFiles, SysfsError
from power_meter.onboard.polled import OnboardMeter
from power_meter.sample import Clock, MeterError, wall_clock

POWERCAP = "/class/powercap"


class RaplMeter(OnboardMeter):
    """Package energy of the chosen (default: every top-level) RAPL zones."""

    driver = "rapl"
    model = "Intel RAPL"

    def __init__(
        self,
        files: SensorFiles,
        zones: list[str] | None = None,
        update_period_s: float = 0.5,
        clock: Clock = wall_clock,
    ) -> None:
        """Find the zones under ``files``' ``/class/powercap`` (`MeterError` when none)."""
        super().__init__(files.where(POWERCAP), update_period_s, clock)
        self.files = files
        found = [z for z in files.listdir(POWERCAP) if re.fullmatch(r"intel-rapl:\d+", z)]
        if not found:
            raise MeterError(
                f"{files.where(POWERCAP)}: no intel-rapl:N zone (no RAPL on this machine, or "
                "the powercap driver is not loaded)"
            )
        missing = [z for z in zones or [] if z not in found]
        if missing:
            raise MeterError(f"rapl: zone(s) {missing} not among the RAPL zones {found}")
        self.zones = list(zones or found)
        self.range_uj = {z: self._int(z, "max_energy_range_uj") for z in self.zones}
        self._prev: dict[str, int] | None = None
        self.wraps = 0

    def details(self) -> dict[str, str]:
        """The zones summed."""
        return {"zones": ",".join(self.zones)}

    def _int(self, zone: str, name: str) -> int:
        path = f"{POWERCAP}/{zone}/{name}"
        text = self.files.read(path)
        if not text.isdigit():
            raise SysfsError(f"{self.files.where(path)}: expected an integer, got {text!r}")
        return int(text)

    def interval_energy_j(self, dt_s: float) -> float | None:
        """The counters' increase since the previous read, J."""
        cur = {z: self._int(z, "energy_uj") for z in self.zones}
        prev, self._prev = self._prev, cur
        if prev is None or math.isnan(dt_s):
            return None
        total_uj = 0
        for z in self.zones:
            d = cur[z] - prev[z]
            if d < 0:
                d += self.range_uj[z] + 1
                self.wraps += 1
            total_uj += d
        return total_uj / 1e6
