"""Opening serial ports by pyserial URL, and turning port failures into `MeterDisconnected`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Self

import serial

from power_meter.sample import (
    Clock,
    MeterDisconnected,
    MeterError,
    MeterStats,
    RepeatFilter,
    Sample,
    SampleBatch,
    wall_clock,
)

try:  # POSIX: pyserial's flush() calls tcdrain, which raises termios.error (not an OSError)
    import termios

    _TERMIOS_ERRORS: tuple[type[BaseException], ...] = (termios.error,)
except ImportError:  # pragma: no cover - Windows has no termios
    _TERMIOS_ERRORS = ()

# Everything a port that has gone away can raise: a meter unplugged mid-write surfaces as
# termios.error(EIO) from tcdrain on a pseudo-terminal or a USB-serial device.
PORT_ERRORS: tuple[type[BaseException], ...] = (serial.SerialException, OSError, *_TERMIOS_ERRORS)


def open_port(url: str, baudrate: int, timeout: float = 0.05) -> serial.SerialBase:
    """Open `url` (`/dev/ttyACM0`, `socket://host:port`, `rfc2217://...`) with pyserial."""
    try:
        return serial.serial_for_url(url, baudrate=baudrate, timeout=timeout, write_timeout=1.0)
    except PORT_ERRORS as exc:
        raise MeterDisconnected(f"{url}: cannot open: {exc}") from exc


def read_available(port: serial.SerialBase, max_bytes: int = 1 << 20) -> bytes:
    """Read what is waiting, or wait up to the port timeout for at least one byte."""
    try:
        waiting = port.in_waiting
        data = port.read(min(max(waiting, 1), max_bytes))
    except PORT_ERRORS as exc:
        raise MeterDisconnected(f"{port.port}: read failed: {exc}") from exc
    return data


def write(port: serial.SerialBase, data: bytes) -> None:
    """Write all of `data`, raising `MeterDisconnected` if the port has gone."""
    try:
        port.write(data)
        port.flush()
    except PORT_ERRORS as exc:
        raise MeterDisconnected(f"{port.port}: write failed: {exc}") from exc


def discard_input(port: serial.SerialBase) -> int:
    """Drop whatever is waiting; return how many bytes were dropped."""
    try:
        n = port.in_waiting
        if n:
            port.read(n)
    except PORT_ERRORS as exc:
        raise MeterDisconnected(f"{port.port}: read failed: {exc}") from exc
    return n


class SerialMeter:
    """What every serial meter driver shares: closing its port, the context manager, and
    `read` as the list form of the driver's `read_batch`."""

    _port: serial.SerialBase | None = None

    def open(self) -> None:  # pragma: no cover - each driver opens its own way
        raise NotImplementedError

    def read_batch(self) -> SampleBatch:  # pragma: no cover - each driver reads its own way
        raise NotImplementedError

    def close(self) -> None:
        """Close the port."""
        if self._port is not None:
            try:
                self._port.close()
            finally:
                self._port = None

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self) -> list[Sample]:
        """New samples as a list (`read_batch` returns them as numpy columns)."""
        return self.read_batch().to_samples()


# A scan of a reply buffer: (the last valid frame or None, garbage bytes skipped, bad
# frames rejected, bytes left unconsumed).
Scan = Callable[[bytearray], tuple[bytes | None, int, int, int]]


class PolledMeter(SerialMeter):
    """A meter that answers one reply per command (UM, TC66C): poll, wait, scan.

    A subclass sets ``baudrate`` and defines `read_batch` (one `poll` with its command and
    scan) and `parse` (a frame to a reading with ``voltage_v``, ``current_a``, ``power_w``).
    A frame identical to the previous one is a repeat (`RepeatFilter`).
    """

    baudrate = 9600

    def __init__(
        self,
        port: str,
        poll_interval_s: float = 0.25,
        response_timeout_s: float = 1.0,
        clock: Clock = wall_clock,
        update_period_s: float = 0.5,
    ) -> None:
        """Configure (does not open the port)."""
        self.url = port
        self.poll_interval_s = poll_interval_s
        self.response_timeout_s = response_timeout_s
        self.clock = clock
        self.update_period_s = update_period_s
        self.stats = MeterStats()
        self._port = None
        self._repeats = RepeatFilter(update_period_s)
        self._last_poll = -float("inf")
        self.last_reading: Any = None

    def open(self) -> None:
        """Open the port; the next read polls at once."""
        self._port = open_port(self.url, self.baudrate, timeout=0.02)
        self._last_poll = -float("inf")
        self._repeats.reset()

    def parse(self, frame: bytes) -> Any:  # pragma: no cover - each meter parses its own
        """The reading in a valid frame (``voltage_v``, ``current_a``, ``power_w``)."""
        raise NotImplementedError

    def poll(self, command: bytes, read_size: int, min_len: int, scan: Scan) -> SampleBatch:
        """Send ``command`` once and return the new sample (empty for a repeat or timeout).

        ``scan`` looks for a valid frame once ``min_len`` bytes have arrived; reads take at
        most ``read_size`` bytes at a time."""
        if self._port is None:
            raise MeterError(f"{self.url}: port is not open")
        wait_until(self._last_poll + self.poll_interval_s)
        # A reply belongs to one poll: leftovers (a truncated or late frame) are discarded.
        self.stats.garbage_bytes += discard_input(self._port)
        self._last_poll = time.monotonic()
        t = self.clock()
        write(self._port, command)
        buf = bytearray()
        deadline = self._last_poll + self.response_timeout_s
        while time.monotonic() < deadline:
            buf += read_available(self._port, read_size)
            if len(buf) >= min_len:
                frame, garbage, bad, _ = scan(buf)
                if frame is not None:
                    self.stats.garbage_bytes += garbage
                    self.stats.bad_frames += bad
                    return self._accept(frame, t)
        _, garbage, bad, leftover = scan(buf)
        self.stats.garbage_bytes += garbage + leftover
        self.stats.bad_frames += bad
        self.stats.timeouts += 1
        return SampleBatch.empty()

    def _accept(self, frame: bytes, t: float) -> SampleBatch:
        flags = self._repeats.check(frame, t, self.stats)
        if flags is None:
            return SampleBatch.empty()
        r = self.parse(frame)
        self.last_reading = r
        return SampleBatch.single(t, r.voltage_v, r.current_a, r.power_w, flags)


def wait_until(t_monotonic: float) -> None:
    """Sleep until ``time.monotonic()`` reaches ``t_monotonic`` (at once if it has)."""
    wait = t_monotonic - time.monotonic()
    if wait > 0:
        time.sleep(wait)
