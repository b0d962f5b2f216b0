"""Jetson INA3221 rails in hwmon: ``inN_label`` + ``inN_input`` (mV) + ``currN_input`` (mA),
or the older ``rail_name_N`` + ``in_powerN_input`` (mW).

The board's input rail (``VDD_IN`` and its older names) already contains the others; it is
read alone when present, else the rails are summed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from power_meter.onboard.files import SensorFiles, read_number
from power_meter.onboard.polled import InstantPowerMeter
from power_meter.sample import Clock, MeterError, wall_clock

HWMON = "/class/hwmon"
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN", "VIN_SYS_5V0", "VDD_IN_SYS")


@dataclass(frozen=True)
class Rail:
    """One INA3221 channel: either volts + amps files, or a power file."""

    name: str
    volt_path: str | None = None  # mV
    curr_path: str | None = None  # mA
    power_path: str | None = None  # mW


def find_ina3221_rails(files: SensorFiles, root: str = HWMON) -> list[Rail]:
    """Rails of every INA3221 under ``root`` (hwmon dirs, or the older iio device dirs)."""
    rails: list[Rail] = []
    dirs = [f"{root}/{d}" for d in files.listdir(root)] or [root]
    for d in dirs:
        entries = set(files.listdir(d))
        for e in sorted(entries):
            m = re.fullmatch(r"in(\d+)_label", e)
            if m and f"curr{m[1]}_input" in entries and f"in{m[1]}_input" in entries:
                rails.append(
                    Rail(
                        files.read(f"{d}/{e}"),
                        volt_path=f"{d}/in{m[1]}_input",
                        curr_path=f"{d}/curr{m[1]}_input",
                    )
                )
            m = re.fullmatch(r"rail_name_(\d+)", e)
            if m and f"in_power{m[1]}_input" in entries:
                rails.append(Rail(files.read(f"{d}/{e}"), power_path=f"{d}/in_power{m[1]}_input"))
    return rails


class Ina3221Meter(InstantPowerMeter):
    """Jetson board power from INA3221 rails (the input rail when present, else the sum)."""

    driver = "ina3221"
    model = "INA3221"

    def __init__(
        self,
        files: SensorFiles,
        rails: list[str] | None = None,
        root: str = HWMON,
        update_period_s: float = 0.1,
        clock: Clock = wall_clock,
    ) -> None:
        """Find the rails under ``root`` (`MeterError` when none, or a named one is absent)."""
        super().__init__(files.where(root), update_period_s, clock)
        self.files = files
        found = find_ina3221_rails(files, root)
        if not found:
            raise MeterError(
                f"{files.where(root)}: no INA3221 rails (inN_label/currN_input or "
                "rail_name_N/in_powerN_input)"
            )
        names = [r.name for r in found]
        if rails:
            missing = [r for r in rails if r not in names]
            if missing:
                raise MeterError(f"--rail: {missing} not among the INA3221 rails {names}")
            self.rails = [r for r in found if r.name in rails]
        else:
            total = [r for r in found if r.name in TOTAL_RAILS]
            # The input rail already contains the others: adding them would count twice.
            self.rails = total[:1] or found

    def details(self) -> dict[str, str]:
        """The rails summed."""
        return {"rails": ",".join(r.name for r in self.rails)}

    def read_power_w(self) -> float:
        """Sum of the chosen rails' power, W."""
        total = 0.0
        for r in self.rails:
            if r.power_path is not None:
                total += read_number(self.files, r.power_path) / 1e3
            else:
                assert r.volt_path is not None and r.curr_path is not None
                volts = read_number(self.files, r.volt_path) / 1e3
                total += volts * read_number(self.files, r.curr_path) / 1e3
        return total
