"""Opening serial ports by pyserial URL, and turning port failures into `MeterDisconnected`."""

from __future__ import annotations

import serial

from power_meter.sample import MeterDisconnected


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
