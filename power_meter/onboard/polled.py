"""What every on-board sensor driver shares: poll at its period, one sample per poll.

A sample's power is the mean over the interval since the previous poll, as a trace's
power column means: an energy counter's increase over the interval (RAPL), or the
trapezoid between two instantaneous readings (INA3221, PMIC). Summing power x interval
therefore gives the counter's energy, or the trapezoidal integral, exactly. Voltage and
current are not measured: they are NaN and the sample is flagged `Flag.POWER_ONLY`.

A sensor that is not there when the driver is built (no RAPL zone, no INA3221 rail) is a
`MeterError` naming what is missing; one that cannot be read when it opens, or mid-run
(the file went away, vcgencmd failed), is a `MeterDisconnected`, as a port that is gone.
"""

from __future__ import annotations

import math
import time

from power_meter.onboard.files import SysfsError
from power_meter.port import wait_until
from power_meter.sample import (
    Clock,
    Flag,
    MeterDisconnected,
    MeterError,
    MeterInfo,
    MeterStats,
    Sample,
    SampleBatch,
    wall_clock,
)


class OnboardMeter:
    """Base of the on-board drivers; a subclass defines `interval_energy_j` and `details`."""

    driver = "onboard"
    model = "on-board sensor"

    def __init__(self, where: str, update_period_s: float, clock: Clock = wall_clock) -> None:
        """``where`` names the sensor in errors (a sysfs path, a command)."""
        if not (math.isfinite(update_period_s) and update_period_s >= 0):
            raise MeterError(f"{self.driver}: poll interval {update_period_s}: expected >= 0 s")
        self.where = where
        self.update_period_s = update_period_s
        self.clock = clock
        self.stats = MeterStats()
        self.energy_j = 0.0  # since the driver was opened, whatever reached a sample
        self._t_last: float | None = None
        self._pending_j = 0.0
        self._next_poll = -math.inf

    def interval_energy_j(self, dt_s: float) -> float | None:  # pragma: no cover - abstract
        """Read the sensor: the energy (J) since the previous read, ``dt_s`` ago (None at
        the first read, which only sets the starting point)."""
        raise NotImplementedError

    def details(self) -> dict[str, str]:
        """What `identify` reports beyond the model (zones, rails)."""
        return {}

    def identify(self) -> MeterInfo:
        """The sensor, where it is read, and its poll period."""
        return MeterInfo(self.driver, self.model, self.where, self.update_period_s, self.details())

    def open(self) -> None:
        """Take the first reading (the starting point of the first interval)."""
        self._t_last = None
        self._pending_j = 0.0
        try:
            self._read(self.clock())
        except SysfsError as exc:  # as a port that cannot open: the recorder retries
            raise MeterDisconnected(f"{self.driver}: cannot read the sensor: {exc}") from exc
        self._next_poll = time.monotonic() + self.update_period_s

    def _read(self, t: float) -> float | None:
        dt = math.nan if self._t_last is None else t - self._t_last
        energy = self.interval_energy_j(dt)
        self._t_last = t
        return energy

    def read_batch(self) -> SampleBatch:
        """Wait for the next poll time, read, and return the interval's sample (or none)."""
        if self._t_last is None:
            raise MeterError(f"{self.where}: {self.driver} is not open")
        wait_until(self._next_poll)
        self._next_poll = time.monotonic() + self.update_period_s
        t0 = self._t_last
        t = self.clock()
        try:
            energy = self._read(t)
        except (SysfsError, OSError) as exc:
            self.stats.timeouts += 1
            raise MeterDisconnected(f"{self.where}: sensor lost: {exc}") from exc
        if energy is None:
            return SampleBatch.empty()
        self._pending_j += energy
        if t <= t0:  # the clock did not move: the energy goes into the next interval
            return SampleBatch.empty()
        power, self._pending_j = self._pending_j / (t - t0), 0.0
        self.energy_j += power * (t - t0)
        self.stats.frames += 1
        return SampleBatch.single(t, math.nan, math.nan, power, int(Flag.POWER_ONLY))

    def read(self) -> list[Sample]:
        """New samples as a list."""
        return self.read_batch().to_samples()

    def close(self) -> None:
        """Nothing to release; the next `open` starts afresh."""
        self._t_last = None


class InstantPowerMeter(OnboardMeter):
    """A sensor that reads instantaneous power: the trapezoid between two polls."""

    def __init__(self, where: str, update_period_s: float, clock: Clock = wall_clock) -> None:
        """See `OnboardMeter`."""
        super().__init__(where, update_period_s, clock)
        self._p_last: float | None = None

    def read_power_w(self) -> float:  # pragma: no cover - abstract
        """The sensor's power now, W."""
        raise NotImplementedError

    def interval_energy_j(self, dt_s: float) -> float | None:
        """Trapezoid between the previous reading and this one."""
        p = self.read_power_w()
        before, self._p_last = self._p_last, p
        if before is None or math.isnan(dt_s):
            return None
        return 0.5 * (before + p) * dt_s

    def open(self) -> None:
        """Forget the previous reading, then take the first."""
        self._p_last = None
        super().open()
