"""Power sources behind one interface: ``begin(name)`` / ``end(name) -> EnergyReading``.

- `MeterPower`: a USB meter from ``power_meter`` (UM34C, TC66C, PPK2) through its
  ``EnergyMonitor`` energy windows: the whole board, as the wall sees it.
- `RaplPower`: Intel RAPL ``energy_uj`` counters under ``/class/powercap``, with wrap at
  ``max_energy_range_uj`` handled (a poller thread reads often enough that at most one
  wrap happens between reads).
- `Ina3221Power`: Jetson INA3221 rails in hwmon (``inN_label`` + ``inN_input`` mV +
  ``currN_input`` mA, or the older ``rail_name_N`` + ``in_powerN_input`` mW).
- `Pi5PmicPower`: Raspberry Pi 5 ``vcgencmd pmic_read_adc``, rails paired by name.
- ``None`` (``--power none``): latency only.

Sources that read an instantaneous power are polled by a thread and integrated with the
trapezoidal rule; a window with fewer than two polls inside it is flagged unreliable.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from lab.profiling.sysfs import CommandRunner, Files, SysfsError, subprocess_runner


class PowerSourceError(ValueError):
    """A power source that is absent, unreadable, or went away mid-run."""


@dataclass(frozen=True)
class EnergyReading:
    """Energy over one window."""

    name: str
    energy_j: float
    mean_power_w: float
    duration_s: float
    samples: int
    reliable: bool


class PowerSource(Protocol):
    """Energy windows over a power sensor or meter."""

    meter: str  # what goes into provenance: 'um34c', 'rapl', 'ina3221', 'pi5-pmic'
    update_period_s: float

    def start(self) -> None:
        """Open the sensor and start sampling."""

    def begin(self, name: str) -> None:
        """Open a window."""

    def end(self, name: str) -> EnergyReading:
        """Close a window and return its energy."""

    def close(self) -> None:
        """Stop sampling and release the sensor."""


class _Polled:
    """Base: a thread calls ``_advance`` every ``update_period_s``; windows diff the total."""

    meter = "unknown"
    update_period_s = 0.1

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: Exception | None = None
        self.total_j = 0.0
        self.polls = 0
        self._t_last = time.monotonic()
        self._windows: dict[str, tuple[float, float, int]] = {}

    def _advance(self, now: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _poll(self) -> None:
        with self._lock:
            now = time.monotonic()
            self._advance(now)
            self._t_last = now
            self.polls += 1

    def _run(self) -> None:
        while not self._stop.wait(self.update_period_s):
            try:
                self._poll()
            except Exception as exc:  # surfaced at the next window edge
                self._error = exc
                return

    def start(self) -> None:
        """Take a first reading and start the poller thread."""
        self._poll()
        self._thread = threading.Thread(target=self._run, name=f"{self.meter}-poll", daemon=True)
        self._thread.start()

    def _check(self) -> None:
        if self._error is not None:
            raise PowerSourceError(f"{self.meter}: sensor lost mid-run: {self._error}")

    def _fresh_poll(self) -> None:
        self._check()
        try:
            self._poll()
        except SysfsError as exc:
            raise PowerSourceError(f"{self.meter}: sensor lost mid-run: {exc}") from exc

    def begin(self, name: str) -> None:
        """Open window ``name`` at a fresh reading."""
        self._fresh_poll()
        with self._lock:
            self._windows[name] = (self._t_last, self.total_j, self.polls)

    def end(self, name: str) -> EnergyReading:
        """Close window ``name`` at a fresh reading."""
        self._fresh_poll()
        with self._lock:
            if name not in self._windows:
                raise PowerSourceError(f"{self.meter}: no open window {name!r}")
            t0, e0, n0 = self._windows.pop(name)
            dt = self._t_last - t0
            e = self.total_j - e0
            n = self.polls - n0
        return EnergyReading(name, e, e / dt if dt > 0 else 0.0, dt, n, n >= 2)

    def close(self) -> None:
        """Stop the poller."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)


class _PowerPoll(_Polled):
    """Integrates an instantaneous power reading (trapezoid between polls)."""

    def __init__(self) -> None:
        super().__init__()
        self._last: tuple[float, float] | None = None

    def read_power_w(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _advance(self, now: float) -> None:
        p = self.read_power_w()
        if self._last is not None:
            t0, p0 = self._last
            self.total_j += 0.5 * (p0 + p) * (now - t0)
        self._last = (now, p)


# ---- Intel RAPL ---------------------------------------------------------------------------
POWERCAP = "/class/powercap"


class RaplPower(_Polled):
    """Package energy from Intel RAPL ``energy_uj`` (top-level ``intel-rapl:N`` zones).

    Sub-zones (``intel-rapl:N:M``: core, uncore, dram) are inside their package and are not
    added again. The counter wraps at ``max_energy_range_uj``; a delta below zero adds
    the range + 1 back.
    """

    meter = "rapl"

    def __init__(self, files: Files, zones: list[str] | None = None, update_period_s: float = 0.5):
        super().__init__()
        self.files = files
        self.update_period_s = update_period_s
        found = [z for z in files.listdir(POWERCAP) if re.fullmatch(r"intel-rapl:\d+", z)]
        self.zones = zones or found
        if not self.zones:
            raise PowerSourceError(
                f"{files.where(POWERCAP)}: no intel-rapl:N zone (no RAPL on this machine, or "
                "the powercap driver is not loaded)"
            )
        self.range_uj = {z: self._int(z, "max_energy_range_uj") for z in self.zones}
        self._prev: dict[str, int] | None = None
        self.wraps = 0

    def _int(self, zone: str, name: str) -> int:
        path = f"{POWERCAP}/{zone}/{name}"
        text = self.files.read(path)
        if not text.isdigit():
            raise SysfsError(f"{self.files.where(path)}: expected an integer, got {text!r}")
        return int(text)

    def _advance(self, now: float) -> None:
        cur = {z: self._int(z, "energy_uj") for z in self.zones}
        if self._prev is not None:
            for z in self.zones:
                d = cur[z] - self._prev[z]
                if d < 0:
                    d += self.range_uj[z] + 1
                    self.wraps += 1
                self.total_j += d / 1e6
        self._prev = cur


# ---- Jetson INA3221 -------------------------------------------------------------------------
HWMON = "/class/hwmon"
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN", "VIN_SYS_5V0", "VDD_IN_SYS")


@dataclass(frozen=True)
class Rail:
    """One INA3221 channel: either volts + amps files, or a power file."""

    name: str
    volt_path: str | None = None  # mV
    curr_path: str | None = None  # mA
    power_path: str | None = None  # mW


def find_ina3221_rails(files: Files, root: str = HWMON) -> list[Rail]:
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


class Ina3221Power(_PowerPoll):
    """Jetson board power from INA3221 rails (the input rail when present, else the sum)."""

    meter = "ina3221"

    def __init__(
        self,
        files: Files,
        rails: list[str] | None = None,
        root: str = HWMON,
        update_period_s: float = 0.1,
    ):
        super().__init__()
        self.files = files
        self.update_period_s = update_period_s
        found = find_ina3221_rails(files, root)
        if not found:
            raise PowerSourceError(
                f"{files.where(root)}: no INA3221 rails (inN_label/currN_input or "
                "rail_name_N/in_powerN_input)"
            )
        names = [r.name for r in found]
        if rails:
            missing = [r for r in rails if r not in names]
            if missing:
                raise PowerSourceError(f"--rail: {missing} not among the INA3221 rails {names}")
            self.rails = [r for r in found if r.name in rails]
        else:
            total = [r for r in found if r.name in TOTAL_RAILS]
            # The input rail already contains the others: adding them would count twice.
            self.rails = total[:1] or found

    def _num(self, path: str) -> float:
        text = self.files.read(path)
        try:
            return float(text)
        except ValueError as exc:
            raise SysfsError(f"{self.files.where(path)}: expected a number, got {text!r}") from exc

    def read_power_w(self) -> float:
        """Sum of the chosen rails' power, W."""
        total = 0.0
        for r in self.rails:
            if r.power_path is not None:
                total += self._num(r.power_path) / 1e3
            else:
                assert r.volt_path is not None and r.curr_path is not None
                total += self._num(r.volt_path) / 1e3 * self._num(r.curr_path) / 1e3
        return total


# ---- Raspberry Pi 5 PMIC ------------------------------------------------------------------
_PMIC_LINE = re.compile(
    r"^\s*(?P<rail>\S+?)_(?P<kind>[AV])\s+(?:current|volt)\(\d+\)=(?P<value>[-+\d.eE]+)(?P<unit>[AV])\s*$"
)


def parse_pmic_read_adc(text: str) -> dict[str, float]:
    """Per-rail power (W) from ``vcgencmd pmic_read_adc``: each ``RAIL_A`` current paired with
    its ``RAIL_V`` voltage by name; rails with only one of the two are left out.

    >>> out = '''
    ...  VDD_CORE_A current(7)=2.10000000A
    ...  3V3_SYS_A current(2)=0.05000000A
    ...  VDD_CORE_V volt(15)=0.80000000V
    ...  3V3_SYS_V volt(10)=3.30000000V
    ...  EXT5V_V volt(24)=5.10000000V'''
    >>> {k: round(v, 3) for k, v in parse_pmic_read_adc(out).items()}
    {'3V3_SYS': 0.165, 'VDD_CORE': 1.68}
    """
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in text.splitlines():
        m = _PMIC_LINE.match(line)
        if not m:
            continue
        (amps if m["kind"] == "A" else volts)[m["rail"]] = float(m["value"])
    return {r: amps[r] * volts[r] for r in sorted(amps) if r in volts}


class Pi5PmicPower(_PowerPoll):
    """Raspberry Pi 5 PMIC rails (sum of V*I; below wall power, which it does not see)."""

    meter = "pi5-pmic"

    def __init__(self, runner: CommandRunner = subprocess_runner, update_period_s: float = 0.25):
        super().__init__()
        self.runner = runner
        self.update_period_s = update_period_s

    def read_power_w(self) -> float:
        """Sum over paired rails, W."""
        res = self.runner(["vcgencmd", "pmic_read_adc"])
        if res.returncode != 0:
            raise SysfsError(f"vcgencmd pmic_read_adc: exit {res.returncode}: {res.stderr.strip()}")
        rails = parse_pmic_read_adc(res.stdout)
        if not rails:
            raise SysfsError(
                "vcgencmd pmic_read_adc: no RAIL_A/RAIL_V pairs in its output "
                f"(got {res.stdout.strip()[:80]!r}); a Raspberry Pi 5 is needed"
            )
        return sum(rails.values())


# ---- USB meters through power_meter -------------------------------------------------------
class MeterPower:
    """A ``power_meter`` driver (UM24C/25C/34C, TC66C, PPK2) behind its ``EnergyMonitor``.

    A meter that goes away mid-run (the monitor reports a disconnect, or a window ends with
    no sample past its end) is an error: a profile is not written from a broken stream.
    """

    def __init__(self, driver: str, port: str, factory: Callable[..., Any] | None = None):
        self.meter = driver
        self.port = port
        self._factory = factory
        self.driver: Any = None
        self.monitor: Any = None
        self.update_period_s = 0.5

    def start(self) -> None:
        """Open the meter and start the monitor's reader thread."""
        from power_meter.drivers import make_meter  # lazy: pyserial and numpy
        from power_meter.windows import EnergyMonitor

        try:
            self.driver = (self._factory or make_meter)(self.meter, self.port)
            self.driver.open()
        except OSError as exc:
            raise PowerSourceError(f"--power {self.meter}:{self.port}: cannot open: {exc}") from exc
        self.update_period_s = float(getattr(self.driver, "update_period_s", 0.5))
        self.monitor = EnergyMonitor(self.driver).start()

    def _lost(self, why: object) -> PowerSourceError:
        return PowerSourceError(
            f"--power {self.meter}:{self.port}: meter lost mid-run ({why}); no profile written"
        )

    def begin(self, name: str) -> None:
        """Open a window on the meter's sample stream."""
        if self.monitor.error is not None:
            raise self._lost(self.monitor.error)
        self.monitor.begin_window(name)

    def end(self, name: str) -> EnergyReading:
        """Close the window: energy, mean power, duration, samples and reliability."""
        if self.monitor.error is not None:  # do not wait for samples that will not come
            raise self._lost(self.monitor.error)
        w = self.monitor.end_window(name)
        if self.monitor.error is not None:
            raise self._lost(self.monitor.error)
        # A live meter emits at least one sample in any window two update periods long.
        if w.samples == 0 and w.duration_s >= 2 * self.update_period_s:
            raise self._lost(f"no sample in a {w.duration_s:.1f} s window")
        return EnergyReading(name, w.energy_j, w.mean_power_w, w.duration_s, w.samples, w.reliable)

    def close(self) -> None:
        """Stop the monitor and close the meter."""
        if self.monitor is not None:
            self.monitor.close()
        if self.driver is not None:
            with contextlib.suppress(OSError):
                self.driver.close()
