"""TC66C emulator: answers `getva` with the 192-byte AES-256-ECB reply, `query` with `firm`."""

from __future__ import annotations

from typing import Any

from power_meter.emulators.base import REPLY_FAULTS, PtyEmulator
from power_meter.emulators.um import Update
from power_meter.tc66c import GETVA, REPLY_LEN, TCReading, build_plain, encrypt, parse_plain
from power_meter.waveform import Waveform

UPDATE_PERIOD_S = 0.5


class TC66CEmulator(PtyEmulator):
    """A TC66C updating every `update_period_s`, reporting the mean power of each period."""

    def __init__(
        self,
        waveform: Waveform,
        update_period_s: float = UPDATE_PERIOD_S,
        serial: int = 123456,
        **kw: Any,
    ) -> None:
        """See `PtyEmulator` for `accel`, `link`, `faults`, `seed`."""
        super().__init__(waveform, **kw)
        self.update_period_s = update_period_s
        self.serial = serial
        self.updates: list[Update] = []
        self.polls = 0
        self.answered: list[int] = []  # the update each good reply reported (0: none yet)
        self._reading = TCReading(serial=serial, voltage_v=waveform.voltage(0.0))
        self._cmd = b""
        self._mwh = self._mah = 0.0

    def _advance(self, now: float) -> None:
        while (len(self.updates) + 1) * self.update_period_s <= now:
            k = len(self.updates) + 1
            t1 = k * self.update_period_s
            p = self.waveform.energy(t1 - self.update_period_s, t1) / self.update_period_s
            v = self.waveform.voltage(t1 - 1e-9)
            self._mwh += p * self.update_period_s / 3.6
            self._mah += p / v * self.update_period_s / 3.6
            self._reading = TCReading(
                serial=self.serial, runs=1, voltage_v=v, current_a=p / v, power_w=p,
                resistance_ohm=v * v / p if p > 0 else 0.0, group0_mah=int(self._mah),
                group0_mwh=int(self._mwh), temperature_c=25,
            )  # fmt: skip
            q = parse_plain(build_plain(self._reading))
            self.updates.append(Update(k, t1, q.voltage_v, q.current_a, q.power_w))

    def on_command(self, data: bytes, now: float) -> None:
        """Collect ASCII commands (no terminator) and answer them."""
        self._cmd = (self._cmd + data)[-64:]
        while True:
            i, j = self._cmd.find(GETVA), self._cmd.find(b"query")
            if i < 0 and j < 0:
                return
            if j >= 0 and (i < 0 or j < i):
                self._cmd = self._cmd[j + 5 :]
                self.send(b"firm")
                continue
            self._cmd = self._cmd[i + len(GETVA) :]
            if self.stalled(now):
                continue
            self.polls += 1
            self._advance(now)
            if self.unanswered():
                continue
            reply = bytearray(encrypt(build_plain(self._reading)))
            f = self.take_first(REPLY_FAULTS)
            kind = None if f is None else f.kind
            if kind == "bad_checksum":
                reply[REPLY_LEN - 20] ^= 0x01  # lands in block 3: its CRC no longer matches
            elif kind == "truncate":
                reply = reply[:100]
            else:
                self.answered.append(len(self.updates))
            garbage = self.garbage(f.n) if kind == "garbage" else b""
            self.send(garbage + bytes(reply), garbage=False)
