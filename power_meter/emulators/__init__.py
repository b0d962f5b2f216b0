"""Byte-exact meter emulators on pseudo-terminals, one per meter family."""

from __future__ import annotations

from power_meter.emulators.base import FAULT_KINDS, Fault, PtyEmulator
from power_meter.emulators.ppk2 import PPK2Emulator
from power_meter.emulators.tc66c import TC66CEmulator
from power_meter.emulators.um import UMEmulator, Update
from power_meter.sample import MeterError
from power_meter.waveform import Waveform

__all__ = [
    "FAULT_KINDS",
    "Fault",
    "PPK2Emulator",
    "PtyEmulator",
    "TC66CEmulator",
    "UMEmulator",
    "Update",
    "make_emulator",
]


def make_emulator(driver: str, waveform: Waveform, **kw: object) -> PtyEmulator:
    """The emulator for a driver name (`um24c`, `um25c`, `um34c`, `tc66c`, `ppk2`)."""
    d = driver.lower()
    if d in ("um24c", "um25c", "um34c"):
        return UMEmulator(waveform, model=d.upper(), **kw)
    if d == "tc66c":
        return TC66CEmulator(waveform, **kw)
    if d == "ppk2":
        return PPK2Emulator(waveform, **kw)
    raise MeterError(f"driver {driver!r}: expected one of um24c, um25c, um34c, tc66c, ppk2")
