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
    """The emulator of a registered driver (`power_meter.drivers.DRIVERS`), e.g. ``um34c``."""
    from power_meter.drivers import DRIVERS

    info = DRIVERS.get(driver.lower())
    if info is None or info.emulator is None:
        emulated = ", ".join(n for n, d in DRIVERS.items() if d.emulator is not None)
        raise MeterError(f"driver {driver!r}: expected one with an emulator: {emulated}")
    return info.emulator(waveform, **kw)
