"""Power sources of a profiling run: energy windows over a ``power_meter`` driver.

Every way to read power is a driver in ``power_meter.drivers.DRIVERS``: the USB meters
(UM24C/25C/34C, TC66C, PPK2) and the on-board sensors (Intel RAPL, Jetson INA3221, the
Raspberry Pi 5 PMIC). ``--power`` names one: ``DRIVER:PORT`` for a USB meter,
``DRIVER[:CHANNEL,...]`` for an on-board sensor (read through the run's sysfs files, local
or over adb; the channels are INA3221 rails or RAPL zones), or ``none`` (latency only).
`make_power` builds it; `MeterPower` answers the procedure's ``begin(name)`` /
``end(name) -> WindowResult`` through the driver's ``EnergyMonitor``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Protocol

from lab.profiling.board.sysfs import CommandRunner, Files, subprocess_runner

if TYPE_CHECKING:
    from power_meter.windows import WindowResult


class PowerSourceError(ValueError):
    """A power source that is absent, unreadable, or went away mid-run."""


class PowerSource(Protocol):
    """Energy windows over a power sensor or meter."""

    meter: str  # what goes into provenance: 'um34c', 'rapl', 'ina3221', 'pi5-pmic'
    update_period_s: float

    def start(self) -> None:
        """Open the sensor and start sampling."""

    def begin(self, name: str) -> None:
        """Open a window."""

    def end(self, name: str) -> WindowResult:
        """Close a window and return its energy."""

    def close(self) -> None:
        """Stop sampling and release the sensor."""


def power_kinds() -> tuple[str, ...]:
    """What ``--power`` accepts before any ``:``: every registered driver, and ``none``."""
    from power_meter.drivers import DRIVERS

    return (*DRIVERS, "none")


class MeterPower:
    """A ``power_meter`` driver (built, not yet open) behind its ``EnergyMonitor``.

    A meter or sensor that goes away mid-run (the monitor reports a disconnect, or a window
    ends with no sample past its end) is an error: a profile is not written from a broken
    stream.
    """

    def __init__(self, driver: Any, name: str, spec: str, onboard: bool = False):
        """``name`` goes into provenance; ``spec`` (the ``--power`` value) into errors."""
        self.driver = driver
        self.meter = name
        self.spec = spec
        self.onboard = onboard
        self.monitor: Any = None
        self.update_period_s = float(getattr(driver, "update_period_s", 0.5))

    def command_runner(self) -> CommandRunner | None:
        """The command runner the driver reads through (the Pi 5 PMIC's vcgencmd), if any."""
        return getattr(self.driver, "runner", None)

    def start(self) -> None:
        """Open the driver and start the monitor's reader thread."""
        from power_meter.windows import EnergyMonitor  # lazy: numpy

        try:
            self.driver.open()
        except OSError as exc:
            raise PowerSourceError(f"--power {self.spec}: cannot open: {exc}") from exc
        self.monitor = EnergyMonitor(self.driver).start()

    def _lost(self, why: object) -> PowerSourceError:
        what = "sensor" if self.onboard else "meter"
        return PowerSourceError(
            f"--power {self.spec}: {what} lost mid-run ({why}); no profile written"
        )

    def begin(self, name: str) -> None:
        """Open a window on the driver's sample stream."""
        if self.monitor.error is not None:
            raise self._lost(self.monitor.error)
        self.monitor.begin_window(name)

    def end(self, name: str) -> WindowResult:
        """Close the window: energy, mean power, duration, samples and reliability."""
        if self.monitor.error is not None:  # do not wait for samples that will not come
            raise self._lost(self.monitor.error)
        w = self.monitor.end_window(name)
        if self.monitor.error is not None:
            raise self._lost(self.monitor.error)
        # A live meter emits at least one sample in any window two update periods long.
        if w.samples == 0 and w.duration_s >= 2 * self.update_period_s:
            raise self._lost(f"no sample in a {w.duration_s:.1f} s window")
        return w

    def close(self) -> None:
        """Stop the monitor and close the driver."""
        if self.monitor is not None:
            self.monitor.close()
        with contextlib.suppress(OSError):
            self.driver.close()


def make_power(
    spec: str, files: Files, runner: CommandRunner = subprocess_runner
) -> MeterPower | None:
    """The power source ``--power`` names: ``DRIVER:PORT`` (um34c, tc66c, ppk2, ...),
    ``DRIVER[:CHANNEL,...]`` for an on-board sensor read through ``files`` (``rapl``,
    ``ina3221[:RAIL,...]``, ``pi5-pmic`` with ``runner``), or ``none``. The driver is built
    (a missing sensor is an error here, before the board is touched) but not opened."""
    from power_meter.drivers import DRIVERS, MeterOptions, make_meter

    kind, _, arg = spec.partition(":")
    kind = kind.lower()
    if kind == "none":
        return None
    info = DRIVERS.get(kind)
    if info is None:
        raise PowerSourceError(
            f"--power: {spec!r} is not one of {'|'.join(power_kinds())} (DRIVER:PORT for meters)"
        )
    if info.onboard:
        port = ""
        options = MeterOptions(files=files, runner=runner, channels=arg.split(",") if arg else None)
    elif not arg:
        raise PowerSourceError(f"--power {spec}: {kind} needs a port, e.g. {kind}:/dev/rfcomm0")
    else:
        port, options = arg, MeterOptions()
    try:
        meter = make_meter(kind, port, options)
    except ValueError as exc:
        raise PowerSourceError(str(exc)) from exc
    return MeterPower(meter, kind, spec, onboard=info.onboard)
