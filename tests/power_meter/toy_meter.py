"""A toy USB meter, written outside power_meter as a new meter would be: its protocol, its
driver and its byte-level emulator, in one file. Registering it is one call
(`register_toy`); `test_toy_meter.py` records it with the real ``rt3lab meter record``.

The protocol: the host sends ``?``; the meter answers one ASCII line
``TOY <mV> <mA> <xx>\\n``, ``xx`` the XOR of the bytes before it, in hex. It updates every
0.1 s with the mean power of the period just ended.

>>> encode(5000, 300)
b'TOY 5000 300 74\\n'
>>> scan(bytearray(b"junk" + encode(5000, 300) + b"TOY 1"))
(b'TOY 5000 300 74\\n', 4, 0, 5)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import reduce
from typing import Any

from power_meter.drivers import DriverInfo, MeterOptions, register_driver
from power_meter.emulators import PtyEmulator
from power_meter.port import PolledMeter
from power_meter.sample import MeterInfo, SampleBatch
from power_meter.waveform import Waveform

POLL = b"?"
UPDATE_PERIOD_S = 0.1
_LINE = re.compile(rb"TOY (\d+) (\d+) ([0-9a-f]{2})\n")


def _xor(data: bytes) -> int:
    return reduce(lambda a, b: a ^ b, data, 0)


def encode(millivolts: int, milliamps: int) -> bytes:
    """One reply line."""
    body = f"TOY {millivolts} {milliamps}".encode()
    return body + f" {_xor(body):02x}\n".encode()


def scan(buf: bytearray) -> tuple[bytes | None, int, int, int]:
    """(last valid line, garbage bytes, bad lines, bytes of an unfinished line)."""
    last, garbage, bad = None, 0, 0
    *lines, tail = bytes(buf).split(b"\n")
    for raw in lines:
        line = raw + b"\n"
        m = _LINE.search(line)
        if m is None or _xor(line[m.start() : m.start(3) - 1]) != int(m[3], 16):
            bad += m is not None
            garbage += len(line)
            continue
        garbage += m.start()
        last = line[m.start() :]
    return last, garbage, bad, len(tail)


@dataclass(frozen=True)
class ToyReading:
    """What one line says."""

    voltage_v: float
    current_a: float
    power_w: float


class ToyMeter(PolledMeter):
    """The driver: poll, scan for a valid line, parse it (repeats handled by `PolledMeter`)."""

    baudrate = 115200

    def identify(self) -> MeterInfo:
        """The toy has no identify command."""
        return MeterInfo("toy", "TOY", self.url, self.update_period_s)

    def read_batch(self) -> SampleBatch:
        """One poll."""
        return self.poll(POLL, 256, 0, scan)

    def parse(self, frame: bytes) -> ToyReading:
        """Volts and amps from a valid line."""
        m = _LINE.search(frame)
        assert m is not None
        v, i = int(m[1]) / 1e3, int(m[2]) / 1e3
        return ToyReading(v, i, v * i)


class ToyEmulator(PtyEmulator):
    """The toy on a pty: each ``?`` is answered with the last update's line."""

    def on_command(self, data: bytes, now: float) -> None:
        """Answer each poll (unless a stall or a drop fault says otherwise)."""
        for _ in range(data.count(POLL)):
            if self.stalled(now) or self.unanswered():
                continue
            t1 = max(int(now / UPDATE_PERIOD_S), 1) * UPDATE_PERIOD_S
            p = self.waveform.energy(t1 - UPDATE_PERIOD_S, t1) / UPDATE_PERIOD_S
            v = self.waveform.voltage(t1 - 1e-9)
            self.send(encode(round(v * 1e3), round(p / v * 1e3)))


def _make(port: str, o: MeterOptions) -> ToyMeter:
    kw = o.given("clock", "poll_interval_s", "response_timeout_s")
    return ToyMeter(port, update_period_s=UPDATE_PERIOD_S, **kw)


def _emulator(waveform: Waveform, **kw: Any) -> ToyEmulator:
    return ToyEmulator(waveform, **kw)


TOY = DriverInfo("toy", "A toy meter (tests)", "ASCII lines, 115200 baud", UPDATE_PERIOD_S,
                 _make, _emulator)  # fmt: skip
"""The registry entry: name, description, link, update period, driver, emulator."""


def register_toy() -> DriverInfo:
    """The one registration a new meter needs."""
    return register_driver(TOY)
