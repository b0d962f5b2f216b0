"""Frequency control behind one interface: Linux cpufreq (local sysfs or adb), or none.

`CpufreqControl` drives one cpufreq policy through a `Files` boundary: it reads the levels
(``scaling_available_frequencies``) and the governor, switches to ``userspace`` and writes
``scaling_setspeed`` (or, without ``userspace``, pins ``scaling_min_freq`` =
``scaling_max_freq``), then polls the read-back frequency until it sticks, as nn-Meter's
builder does. Everything it changes is saved first and put back by `restore`; use it
through `lab.profiling.board.guard.restoring` so that also happens on Ctrl-C, SIGTERM or an error.
Both layouts are found: ``cpufreq/policyX/`` and ``cpuN/cpufreq/``.

`NoControl` is the backend for a machine whose frequency cannot be set (CI, a laptop
without root): it reports the frequency it finds and says it did not set it.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from lab.profiling.board.sysfs import Files, SysfsError

CPU = "/devices/system/cpu"


class FrequencyError(ValueError):
    """A level the board does not offer, a frequency that does not stick, a read-only sysfs."""


@dataclass(frozen=True)
class CpufreqState:
    """What `CpufreqControl` may change, as it was: restored verbatim."""

    governor: str
    min_khz: int
    max_khz: int
    setspeed_khz: int | None = None


class FrequencyControl(Protocol):
    """Sets the inference cluster's frequency and reads it back."""

    name: str
    controllable: bool

    def levels_khz(self) -> list[int]:
        """Levels the board offers, ascending."""

    def current_khz(self) -> int | None:
        """The frequency read back now (hardware when readable), or None when unknown."""

    def set_khz(self, khz: int) -> int:
        """Set ``khz`` and return the frequency read back once it stuck."""

    def save(self) -> None:
        """Remember everything `set_khz` may change."""

    def restore(self) -> None:
        """Put back what `save` remembered (idempotent)."""

    def describe(self) -> dict[str, object]:
        """What the backend is and what it found, for provenance."""


def find_policy(files: Files, policy: str | None = None) -> str:
    """The cpufreq directory (sysfs path) of ``policy`` (``policy4``, ``cpu4`` or ``4``).

    Default: the first ``cpufreq/policyX`` directory, else ``cpu0/cpufreq``.
    """
    candidates: list[str] = []
    if policy is None:
        pols = [p for p in files.listdir(f"{CPU}/cpufreq") if re.fullmatch(r"policy\d+", p)]
        pols.sort(key=lambda p: int(p[6:]))
        candidates = [f"{CPU}/cpufreq/{p}" for p in pols[:1]] + [f"{CPU}/cpu0/cpufreq"]
    elif re.fullmatch(r"\d+", policy):
        candidates = [f"{CPU}/cpufreq/policy{policy}", f"{CPU}/cpu{policy}/cpufreq"]
    elif re.fullmatch(r"policy\d+", policy):
        candidates = [f"{CPU}/cpufreq/{policy}", f"{CPU}/cpu{policy[6:]}/cpufreq"]
    elif re.fullmatch(r"cpu\d+", policy):
        candidates = [f"{CPU}/{policy}/cpufreq", f"{CPU}/cpufreq/policy{policy[3:]}"]
    else:
        raise FrequencyError(f"--policy: {policy!r} is not policyN, cpuN or N")
    for c in candidates:
        if files.exists(f"{c}/scaling_governor"):
            return c
    raise FrequencyError(
        f"{files.where(CPU)}: no cpufreq policy {policy or ''} found (looked for "
        f"{', '.join(files.where(c) for c in candidates)}): this sysfs has no frequency control"
    )


class CpufreqControl:
    """Linux cpufreq on one policy, through local sysfs or adb."""

    controllable = True

    def __init__(
        self,
        files: Files,
        policy: str | None = None,
        settle_timeout_s: float = 2.0,
        poll_s: float = 0.005,
        tolerance_khz: int = 0,
    ):
        self.files = files
        self.dir = find_policy(files, policy)
        self.name = f"cpufreq:{files.where(self.dir)}"
        self.settle_timeout_s = settle_timeout_s
        self.poll_s = poll_s
        self.tolerance_khz = tolerance_khz
        self.saved: CpufreqState | None = None
        self._touched = False
        self.journal: Any = None  # a `lab.profiling.board.journal.Journal`, written by `save`

    # ---- reading -------------------------------------------------------------------
    def _f(self, name: str) -> str:
        return f"{self.dir}/{name}"

    def _int(self, name: str) -> int:
        text = self.files.read(self._f(name))
        try:
            return int(text.split()[0])
        except (ValueError, IndexError) as exc:
            raise SysfsError(
                f"{self.files.where(self._f(name))}: expected a frequency in kHz, got {text!r}"
            ) from exc

    def governors(self) -> list[str]:
        """``scaling_available_governors``."""
        if not self.files.exists(self._f("scaling_available_governors")):
            return []
        return self.files.read(self._f("scaling_available_governors")).split()

    def governor(self) -> str:
        """``scaling_governor``."""
        return self.files.read(self._f("scaling_governor"))

    def levels_khz(self) -> list[int]:
        """``scaling_available_frequencies``, ascending (`FrequencyError` when absent)."""
        path = self._f("scaling_available_frequencies")
        if not self.files.exists(path):
            raise FrequencyError(
                f"{self.files.where(path)}: absent (intel_pstate/amd-pstate drivers do not "
                "list levels): this board offers no discrete levels to profile"
            )
        text = self.files.read(path)
        try:
            return sorted({int(x) for x in text.split()})
        except ValueError as exc:
            raise SysfsError(
                f"{self.files.where(path)}: expected frequencies in kHz, got {text!r}"
            ) from exc

    def current_khz(self) -> int | None:
        """``cpuinfo_cur_freq`` (the hardware) when readable, else ``scaling_cur_freq``."""
        for name in ("cpuinfo_cur_freq", "scaling_cur_freq"):
            if self.files.exists(self._f(name)):
                try:
                    return self._int(name)
                except SysfsError:
                    continue  # cpuinfo_cur_freq is root-only on many kernels
        return None

    def read_state(self) -> CpufreqState:
        """The governor, min, max and (with userspace) setspeed, as they are now."""
        gov = self.governor()
        setspeed = None
        if gov == "userspace" and self.files.exists(self._f("scaling_setspeed")):
            text = self.files.read(self._f("scaling_setspeed"))
            setspeed = int(text) if text.isdigit() else None
        return CpufreqState(
            gov, self._int("scaling_min_freq"), self._int("scaling_max_freq"), setspeed
        )

    def cpus(self) -> list[int]:
        """The CPUs this policy clocks (``affected_cpus``; empty when unreadable)."""
        for name in ("affected_cpus", "related_cpus"):
            if self.files.exists(self._f(name)):
                try:
                    return [int(x) for x in self.files.read(self._f(name)).split()]
                except (SysfsError, ValueError):
                    continue
        return []

    def describe(self) -> dict[str, object]:
        """Policy directory, governor found, levels, and how the speed is set."""
        return {
            "backend": "cpufreq",
            "policy": self.files.where(self.dir),
            "cpus": self.cpus(),
            "governor_found": None if self.saved is None else self.saved.governor,
            "method": "userspace" if "userspace" in self.governors() else "min=max",
            "controlled": True,
        }

    # ---- changing ------------------------------------------------------------------
    def check_writable(self) -> None:
        """`FrequencyError` naming the first file this backend needs to write but cannot."""
        names = ["scaling_governor", "scaling_min_freq", "scaling_max_freq"]
        if "userspace" in self.governors():
            names.append("scaling_setspeed")
        for name in names:
            if not self.files.writable(self._f(name)):
                raise FrequencyError(
                    f"{self.files.where(self._f(name))}: not writable (read-only sysfs, or not "
                    "root): cannot set the frequency; the board was not touched"
                )

    def check_levels(self, levels: list[int]) -> None:
        """`FrequencyError` for any requested level the board does not offer."""
        offered = self.levels_khz()
        bad = [k for k in levels if k not in offered]
        if bad:
            raise FrequencyError(
                f"--levels: {bad} kHz not offered by {self.files.where(self.dir)} "
                f"(scaling_available_frequencies: {offered})"
            )

    def save(self) -> None:
        """Remember governor, min, max and setspeed (once; later calls keep the first),
        in the journal too when there is one (before anything is changed)."""
        if self.saved is None:
            self.saved = self.read_state()
            if self.journal is not None:
                self.journal.record(self)

    def set_khz(self, khz: int) -> int:
        """Set ``khz``; poll until the read-back frequency equals it or time out.

        Raises `FrequencyError` (the caller's guard restores the board) when it does not stick.
        """
        self.save()
        self._touched = True
        info_min, info_max = self._int("cpuinfo_min_freq"), self._int("cpuinfo_max_freq")
        if "userspace" in self.governors():
            if self.governor() != "userspace":
                # Open the window fully first, so the userspace speed is not clamped.
                self.files.write(self._f("scaling_max_freq"), str(info_max))
                self.files.write(self._f("scaling_min_freq"), str(info_min))
                self.files.write(self._f("scaling_governor"), "userspace")
            self.files.write(self._f("scaling_setspeed"), str(khz))
        else:
            self._pin(khz)
        return self.wait_for(khz)

    def _pin(self, khz: int) -> None:
        # Order matters: the kernel refuses min > max.
        if khz >= self._int("scaling_min_freq"):
            self.files.write(self._f("scaling_max_freq"), str(khz))
            self.files.write(self._f("scaling_min_freq"), str(khz))
        else:
            self.files.write(self._f("scaling_min_freq"), str(khz))
            self.files.write(self._f("scaling_max_freq"), str(khz))

    def wait_for(self, khz: int) -> int:
        """Poll the read-back frequency until it is ``khz`` (within tolerance)."""
        deadline = time.monotonic() + self.settle_timeout_s
        got = self.current_khz()
        while got is None or abs(got - khz) > self.tolerance_khz:
            if time.monotonic() > deadline:
                raise FrequencyError(
                    f"{self.files.where(self.dir)}: set {khz} kHz but the frequency read back "
                    f"is {got} kHz after {self.settle_timeout_s} s: it does not stick "
                    "(thermal limit, firmware or another governor overriding it)"
                )
            time.sleep(self.poll_s)
            got = self.current_khz()
        return got

    def restore(self) -> None:
        """Put back governor, min, max and setspeed as `save` found them (idempotent).

        Only what differs is written, so a board nothing was done to sees no write.
        """
        if self.saved is None or not self._touched:
            return
        s = self.saved
        now = self.read_state()
        steps: list[tuple[str, str]] = []
        if (now.min_khz, now.max_khz) != (s.min_khz, s.max_khz):
            # Widen first so neither write is refused for crossing the other bound.
            steps += [
                ("scaling_min_freq", str(self._int("cpuinfo_min_freq"))),
                ("scaling_max_freq", str(s.max_khz)),
                ("scaling_min_freq", str(s.min_khz)),
            ]
        if now.governor != s.governor:
            steps.append(("scaling_governor", s.governor))
        if s.governor == "userspace" and s.setspeed_khz not in (None, now.setspeed_khz):
            steps.append(("scaling_setspeed", str(s.setspeed_khz)))
        errors = []
        for name, value in steps:
            try:
                self.files.write(self._f(name), value)
            except SysfsError as exc:  # keep going: put back as much as possible
                errors.append(str(exc))
        if errors:
            raise FrequencyError("restoring cpufreq failed: " + "; ".join(errors))
        self._touched = False


@dataclass
class NoControl:
    """A board whose frequency is not set: records the frequency found, and says so."""

    files: Files | None = None
    policy: str | None = None
    assumed_khz: int | None = None
    name: str = "none"
    controllable: bool = False
    found: list[int | None] = field(default_factory=list)

    def levels_khz(self) -> list[int]:
        """The one frequency found (or assumed)."""
        khz = self.current_khz()
        if khz is None:
            raise FrequencyError(
                "no frequency control and no readable frequency: give --host-khz (the clock "
                "this host runs at) to project latencies"
            )
        return [khz]

    def current_khz(self) -> int | None:
        """``scaling_cur_freq`` if readable, else ``/proc/cpuinfo`` MHz, else assumed."""
        if self.assumed_khz is not None:
            return self.assumed_khz
        khz = None
        if self.files is not None:
            try:
                d = find_policy(self.files, self.policy)
                khz = int(self.files.read(f"{d}/scaling_cur_freq").split()[0])
            except (ValueError, IndexError):
                khz = None
        if khz is None:
            khz = proc_cpuinfo_khz()
        self.found.append(khz)
        return khz

    def set_khz(self, khz: int) -> int:
        """Cannot set: returns the frequency found (the run is flagged if it differs)."""
        got = self.current_khz()
        return khz if got is None else got

    def save(self) -> None:
        """Nothing to save."""

    def restore(self) -> None:
        """Nothing to restore."""

    def describe(self) -> dict[str, object]:
        """Says the frequency was found, not set."""
        return {
            "backend": "none",
            "controlled": False,
            "note": "frequency not controlled: recorded as found",
            "found_khz": sorted({k for k in self.found if k is not None}),
            "assumed_khz": self.assumed_khz,
        }


def proc_cpuinfo_khz(path: str = "/proc/cpuinfo") -> int | None:
    """The median ``cpu MHz`` of ``/proc/cpuinfo`` in kHz, or None.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", delete=False) as f:
    ...     _ = f.write("cpu MHz\\t\\t: 2100.000\\ncpu MHz\\t\\t: 2400.5\\ncpu MHz : 2200\\n")
    >>> proc_cpuinfo_khz(f.name); os.unlink(f.name)
    2200000
    """
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            mhz = [float(m) for m in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", fh.read(), re.M)]
    except OSError:
        return None
    if not mhz:
        return None
    mhz.sort()
    return round(mhz[len(mhz) // 2] * 1000)
