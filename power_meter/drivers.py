"""The driver registry: every way to read power, by the name users type.

USB meters (read over a pyserial port) and on-board sensors (a sysfs tree or a command)
alike: a `DriverInfo` says what the driver talks to and how to build it (``make``), and,
for a meter with a byte-level emulator, how to start one on a pseudo-terminal
(``emulator``). `make_meter` builds any of them; `register_driver` adds one from outside
the package (see "How to add a meter" in the README). Drivers are imported when built, so
reading the registry costs nothing.

>>> sorted(DRIVERS)
['ina3221', 'pi5-pmic', 'ppk2', 'rapl', 'tc66c', 'um24c', 'um25c', 'um34c']
>>> [d.name for d in DRIVERS.values() if d.onboard]
['rapl', 'ina3221', 'pi5-pmic']
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from power_meter.emulators.base import PtyEmulator
    from power_meter.onboard.files import CommandRunner, SensorFiles
    from power_meter.sample import Clock, Meter


@dataclass(frozen=True)
class MeterOptions:
    """Settings for building a driver; each driver takes those that apply to it.

    ``clock`` None is the driver's own (the wall clock). On-board sensors read ``files``
    (default: the sysfs tree at the port's path) or run commands with ``runner``, and sum
    ``channels`` (INA3221 rails, RAPL zones; default: the board's total)."""

    clock: Clock | None = None
    poll_interval_s: float | None = None
    response_timeout_s: float | None = None
    vdd_mv: int | None = None
    files: SensorFiles | None = None
    runner: CommandRunner | None = None
    channels: list[str] | None = None

    def given(self, *names: str) -> dict[str, Any]:
        """The named settings that were given (not None), as keyword arguments."""
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


MeterFactory = Callable[[str, MeterOptions], "Meter"]
"""Builds (does not open) a driver on a port: ``make(port, options)``."""

EmulatorFactory = Callable[..., "PtyEmulator"]
"""Builds a byte-level emulator: ``emulator(waveform, accel=, link=, faults=)``."""


@dataclass(frozen=True)
class DriverInfo:
    """A driver's name, what it talks to, its link, and how to build (and emulate) it."""

    name: str
    description: str
    link: str
    update_period_s: float
    make: MeterFactory = field(repr=False, compare=False)
    emulator: EmulatorFactory | None = field(default=None, repr=False, compare=False)
    onboard: bool = False  # reads a sysfs tree or a command, not a serial port

    def as_dict(self) -> dict[str, Any]:
        """What `rt3lab meter list --json` says about the driver."""
        return {f.name: getattr(self, f.name) for f in fields(self)[:4]}


DRIVERS: dict[str, DriverInfo] = {}
"""Every driver by name, in the order registered."""


def register_driver(info: DriverInfo, replace: bool = False) -> DriverInfo:
    """Add ``info`` to `DRIVERS` (``replace`` to redefine a name already there)."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", info.name):
        raise _error(f"driver {info.name!r}: expected a lower-case name without ':' or spaces")
    if info.name in DRIVERS and not replace:
        raise _error(f"driver {info.name!r}: already registered")
    DRIVERS[info.name] = info
    return info


def unregister_driver(name: str) -> None:
    """Remove a driver from `DRIVERS` (nothing if it is not there)."""
    DRIVERS.pop(name, None)


def driver_info(driver: str) -> DriverInfo:
    """The registered driver named ``driver`` (any case)."""
    info = DRIVERS.get(driver.lower())
    if info is None:
        raise _error(f"driver {driver!r}: expected one of {', '.join(sorted(DRIVERS))}")
    return info


def make_meter(
    driver: str, port: str, options: MeterOptions | None = None, **settings: Any
) -> Meter:
    """Build (not open) the meter for ``driver`` on ``port``: a pyserial URL for a USB
    meter, the sysfs mount (``/sys``) or the command for an on-board sensor. ``settings``
    are `MeterOptions` fields, used when ``options`` is not given."""
    return driver_info(driver).make(port, options or MeterOptions(**settings))


def _error(message: str) -> ValueError:
    from power_meter.sample import MeterError

    return MeterError(message)


# ---- the built-in drivers ---------------------------------------------------------------
def _um(model: str) -> MeterFactory:
    def make(port: str, o: MeterOptions) -> Meter:
        from power_meter.um import UMMeter

        return UMMeter(port, model, **o.given("clock", "poll_interval_s", "response_timeout_s"))

    return make


def _um_emulator(model: str) -> EmulatorFactory:
    def emulator(waveform: Any, **kw: Any) -> PtyEmulator:
        from power_meter.emulators.um import UMEmulator

        return UMEmulator(waveform, model=model, **kw)

    return emulator


def _tc66c(port: str, o: MeterOptions) -> Meter:
    from power_meter.tc66c import TC66CMeter

    return TC66CMeter(port, **o.given("clock", "poll_interval_s", "response_timeout_s"))


def _tc66c_emulator(waveform: Any, **kw: Any) -> PtyEmulator:
    from power_meter.emulators.tc66c import TC66CEmulator

    return TC66CEmulator(waveform, **kw)


def _ppk2(port: str, o: MeterOptions) -> Meter:
    from power_meter.ppk2 import PPK2Meter

    return PPK2Meter(port, vdd_mv=o.vdd_mv, **o.given("clock"))


def _ppk2_emulator(waveform: Any, **kw: Any) -> PtyEmulator:
    from power_meter.emulators.ppk2 import PPK2Emulator

    return PPK2Emulator(waveform, **kw)


def _onboard_kw(o: MeterOptions) -> dict[str, Any]:
    kw = o.given("clock")
    if o.poll_interval_s is not None:
        kw["update_period_s"] = o.poll_interval_s
    return kw


def _tree(port: str, o: MeterOptions) -> SensorFiles:
    from power_meter.onboard.files import SysfsTree

    return o.files if o.files is not None else SysfsTree(port)


def _rapl(port: str, o: MeterOptions) -> Meter:
    from power_meter.onboard.rapl import RaplMeter

    return RaplMeter(_tree(port, o), o.channels, **_onboard_kw(o))


def _ina3221(port: str, o: MeterOptions) -> Meter:
    from power_meter.onboard.ina3221 import Ina3221Meter

    return Ina3221Meter(_tree(port, o), o.channels, **_onboard_kw(o))


def _pi5_pmic(port: str, o: MeterOptions) -> Meter:
    from power_meter.onboard.files import subprocess_runner
    from power_meter.onboard.pi5_pmic import Pi5PmicMeter

    return Pi5PmicMeter(o.runner or subprocess_runner, port or "vcgencmd", **_onboard_kw(o))


_BT = "Bluetooth SPP, 9600 baud"
_SYS = "--port: the sysfs mount, /sys"
_BUILT_IN = (
    *(
        DriverInfo(m.lower(), f"RDTech {m} USB meter", _BT, 0.5, _um(m), _um_emulator(m))
        for m in ("UM24C", "UM25C", "UM34C")
    ),
    DriverInfo(
        "tc66c", "RDTech TC66C USB-C meter", "USB serial, 115200 baud", 0.5, _tc66c,
        _tc66c_emulator,
    ),
    DriverInfo(
        "ppk2", "Nordic Power Profiler Kit II", "USB CDC, 100 kS/s", 1e-5, _ppk2, _ppk2_emulator
    ),
    DriverInfo(
        "rapl", f"Intel RAPL package energy ({_SYS})", "sysfs powercap energy_uj", 0.5, _rapl,
        onboard=True,
    ),
    DriverInfo(
        "ina3221", f"Jetson INA3221 board power ({_SYS})", "sysfs hwmon rails", 0.1, _ina3221,
        onboard=True,
    ),
    DriverInfo(
        "pi5-pmic", "Raspberry Pi 5 PMIC rails (--port: vcgencmd)", "vcgencmd pmic_read_adc",
        0.25, _pi5_pmic, onboard=True,
    ),
)  # fmt: skip
for _info in _BUILT_IN:
    register_driver(_info)
