"""The driver registry: names users type, and how to build each meter.

>>> sorted(DRIVERS)
['ppk2', 'tc66c', 'um24c', 'um25c', 'um34c']
"""

from __future__ import annotations

from dataclasses import dataclass

from power_meter.ppk2 import PPK2Meter
from power_meter.sample import Clock, Meter, MeterError, wall_clock
from power_meter.tc66c import TC66CMeter
from power_meter.um import UMMeter


@dataclass(frozen=True)
class DriverInfo:
    """A driver's name, what it talks to, and its link."""

    name: str
    description: str
    link: str
    update_period_s: float


DRIVERS: dict[str, DriverInfo] = {
    "um24c": DriverInfo("um24c", "RDTech UM24C USB meter", "Bluetooth SPP, 9600 baud", 0.5),
    "um25c": DriverInfo("um25c", "RDTech UM25C USB meter", "Bluetooth SPP, 9600 baud", 0.5),
    "um34c": DriverInfo("um34c", "RDTech UM34C USB meter", "Bluetooth SPP, 9600 baud", 0.5),
    "tc66c": DriverInfo("tc66c", "RDTech TC66C USB-C meter", "USB serial, 115200 baud", 0.5),
    "ppk2": DriverInfo("ppk2", "Nordic Power Profiler Kit II", "USB CDC, 100 kS/s", 1e-5),
}


def make_meter(
    driver: str,
    port: str,
    clock: Clock = wall_clock,
    poll_interval_s: float | None = None,
    response_timeout_s: float | None = None,
    vdd_mv: int | None = None,
) -> Meter:
    """Build (not open) the meter for `driver` on pyserial URL `port`."""
    d = driver.lower()
    if d not in DRIVERS:
        raise MeterError(f"driver {driver!r}: expected one of {', '.join(sorted(DRIVERS))}")
    poll = {} if poll_interval_s is None else {"poll_interval_s": poll_interval_s}
    if response_timeout_s is not None:
        poll["response_timeout_s"] = response_timeout_s
    if d.startswith("um"):
        return UMMeter(port, d.upper(), clock=clock, **poll)
    if d == "tc66c":
        return TC66CMeter(port, clock=clock, **poll)
    return PPK2Meter(port, vdd_mv=vdd_mv, clock=clock)
