"""Opening serial ports by pyserial URL, and turning port failures into `MeterDisconnected`."""

from __future__ import annotations

from typing import Self

import serial

from power_meter.sample import MeterDisconnected, Sample, SampleBatch


def open_port(url: str, baudrate: int, timeout: float = 0.05) -> serial.SerialBase:
    """Open `url` (`/dev/ttyACM0`, `socket://host:port`, `rfc2217://...`) with pyserial."""
    try:
        return serial.serial_for_url(url, baudrate=baudrate, timeout=timeout, write_timeout=1.0)
    except (serial.SerialException, OSError) as exc:
        raise MeterDisconnected(f"{url}: cannot open: {exc}") from exc


def read_available(port: serial.SerialBase, max_bytes: int = 1 << 20) -> bytes:
    """Read what is waiting, or wait up to the port timeout for at least one byte."""
    try:
        waiting = port.in_waiting
        data = port.read(min(max(waiting, 1), max_bytes))
    except (serial.SerialException, OSError) as exc:
        raise MeterDisconnected(f"{port.port}: read failed: {exc}") from exc
    return data


def write(port: serial.SerialBase, data: bytes) -> None:
    """Write all of `data`, raising `MeterDisconnected` if the port has gone."""
    try:
        port.write(data)
        port.flush()
    except (serial.SerialException, OSError) as exc:
        raise MeterDisconnected(f"{port.port}: write failed: {exc}") from exc


def discard_input(port: serial.SerialBase) -> int:
    """Drop whatever is waiting; return how many bytes were dropped."""
    try:
        n = port.in_waiting
        if n:
            port.read(n)
    except (serial.SerialException, OSError) as exc:
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
