"""UM24C / UM25C / UM34C emulator: answers each 0xF0 with the 130-byte frame."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from power_meter.emulators.base import REPLY_FAULTS, PtyEmulator
from power_meter.um import POLL, UPDATE_PERIOD_S, UMReading, build_frame, parse_frame
from power_meter.waveform import Waveform


@dataclass(frozen=True)
class Update:
    """One internal update of the meter: what its frames report until the next one."""

    index: int
    t_s: float
    voltage_v: float
    current_a: float
    power_w: float


class UMEmulator(PtyEmulator):
    """A UM meter of `model` that updates every `update_period_s` emulated seconds.

    Each update reports the waveform's mean power over the period just ended, at the
    voltage of that moment; energy and charge accumulate in group 0 as on the meter.
    `updates` logs every update with the values exactly as a frame encodes them.
    """

    def __init__(
        self,
        waveform: Waveform,
        model: str = "UM34C",
        update_period_s: float = UPDATE_PERIOD_S,
        **kw: Any,
    ) -> None:
        """See `PtyEmulator` for `accel`, `link`, `faults`, `seed`."""
        super().__init__(waveform, **kw)
        self.model = model.upper()
        self.update_period_s = update_period_s
        self.updates: list[Update] = []
        self.polls = 0
        self.answered: list[int] = []  # the update each good reply reported (0: none yet)
        self._reading = UMReading(self.model, voltage_v=waveform.voltage(0.0))
        self._mwh = 0.0
        self._mah = 0.0

    def _advance(self, now: float) -> None:
        while (len(self.updates) + 1) * self.update_period_s <= now:
            k = len(self.updates) + 1
            t1 = k * self.update_period_s
            t0 = t1 - self.update_period_s
            p = self.waveform.energy(t0, t1) / self.update_period_s
            v = self.waveform.voltage(t1 - 1e-9)
            i = p / v
            self._mwh += p * self.update_period_s / 3.6
            self._mah += i * self.update_period_s / 3.6
            r = dataclasses.replace(
                self._reading,
                voltage_v=v,
                current_a=i,
                power_w=p,
                temperature_c=25,
                temperature_f=77,
                groups_mah_mwh=((int(self._mah), int(self._mwh)),) + ((0, 0),) * 9,
                record_seconds=int(t1),
                load_ohm=v / i if i > 0 else 0.0,
            )
            self._reading = r
            q = parse_frame(build_frame(r))  # log what the frame really says
            self.updates.append(Update(k, t1, q.voltage_v, q.current_a, q.power_w))

    def on_command(self, data: bytes, now: float) -> None:
        """Answer each poll byte; ignore other commands (screen, group, brightness)."""
        for b in data:
            if bytes([b]) != POLL or self.stalled(now):
                continue
            self.polls += 1
            self._advance(now)
            if self.unanswered():
                continue
            frame = bytearray(build_frame(self._reading))
            f = self.take_first(REPLY_FAULTS)
            kind = None if f is None else f.kind
            if kind == "bad_checksum":
                frame[129] ^= 0x5A
            elif kind == "truncate":
                frame = frame[: len(frame) // 2]
            else:
                self.answered.append(len(self.updates))
            garbage = self.garbage(f.n) if kind == "garbage" else b""
            self.send(garbage + bytes(frame), garbage=False)

    def on_reconnect(self) -> None:
        """A re-powered meter keeps its accumulated groups (they are in flash)."""
