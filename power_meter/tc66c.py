"""RDTech TC66C: the AES-256-ECB `getva` reply, its `pac1`-`pac3` blocks and CRC-16/MODBUS.

The reply is 192 bytes; decrypted it is three 64-byte blocks starting `pac1`, `pac2`,
`pac3`, each with a CRC-16/MODBUS of bytes 0-59 stored little-endian at offset 60.
Fields are little-endian u32 (offsets into the 192 decrypted bytes).

>>> plain = build_plain(TCReading(voltage_v=5.1234, current_a=0.54321, power_w=2.7831))
>>> parse_reply(encrypt(plain)).current_a
0.54321
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from power_meter.port import PolledMeter
from power_meter.sample import MeterError, MeterInfo, SampleBatch

REPLY_LEN = 192
BLOCK_LEN = 64
MAGICS = (b"pac1", b"pac2", b"pac3")
GETVA = b"getva"
# The static key every TC66C uses; published by both open implementations.
KEY = bytes.fromhex("5821fa5601b2f02687ff1204622a4fb086f40260816f9a0ba7f106619ab87288")
UPDATE_PERIOD_S = 0.5


class FrameError(MeterError):
    """A reply that fails validation; the message names the block, byte and expectation."""


def _cipher() -> Cipher:
    return Cipher(algorithms.AES(KEY), modes.ECB())


def decrypt(data: bytes) -> bytes:
    """AES-256-ECB decrypt with the TC66C key (length must be a multiple of 16)."""
    d = _cipher().decryptor()
    return d.update(data) + d.finalize()


def encrypt(data: bytes) -> bytes:
    """AES-256-ECB encrypt with the TC66C key (what the meter does)."""
    e = _cipher().encryptor()
    return e.update(data) + e.finalize()


def _crc_table() -> tuple[int, ...]:
    table = []
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS (poly 0x8005 reflected, init 0xFFFF).

    >>> hex(crc16_modbus(b"123456789"))
    '0x4b37'
    """
    c = 0xFFFF
    for b in data:
        c = (c >> 8) ^ _CRC_TABLE[(c ^ b) & 0xFF]
    return c


@dataclass(frozen=True)
class TCReading:
    """The fields of one decrypted `getva` reply, in SI units."""

    model: str = "TC66"
    firmware: str = "1.15"
    serial: int = 0
    runs: int = 0
    voltage_v: float = 0.0
    current_a: float = 0.0
    power_w: float = 0.0
    resistance_ohm: float = 0.0
    group0_mah: int = 0
    group0_mwh: int = 0
    temperature_c: int = 25
    dplus_v: float = 0.0
    dminus_v: float = 0.0


def build_plain(r: TCReading) -> bytes:
    """The 192 plaintext bytes of a reply, with magics and CRCs."""
    p = bytearray(REPLY_LEN)
    for k, magic in enumerate(MAGICS):
        p[k * BLOCK_LEN : k * BLOCK_LEN + 4] = magic
    p[4:8] = r.model.encode("ascii")[:4].ljust(4, b"\0")
    p[8:12] = r.firmware.encode("ascii")[:4].ljust(4, b"\0")
    struct.pack_into("<I", p, 12, r.serial)
    struct.pack_into(
        "<IIII", p, 44, r.runs, _u32(r.voltage_v * 1e4), _u32(r.current_a * 1e5),
        _u32(r.power_w * 1e4),
    )  # fmt: skip
    struct.pack_into("<III", p, 68, _u32(r.resistance_ohm * 10), r.group0_mah, r.group0_mwh)
    struct.pack_into(
        "<IIII", p, 88, 1 if r.temperature_c < 0 else 0, abs(r.temperature_c),
        _u32(r.dplus_v * 100), _u32(r.dminus_v * 100),
    )  # fmt: skip
    for k in range(3):
        o = k * BLOCK_LEN
        struct.pack_into("<H", p, o + 60, crc16_modbus(bytes(p[o : o + 60])))
    return bytes(p)


def _u32(x: float) -> int:
    return int(min(max(round(x), 0), 0xFFFFFFFF))


def validate_plain(p: bytes) -> None:
    """Raise `FrameError` unless `p` is 192 bytes with the three magics and good CRCs."""
    if len(p) != REPLY_LEN:
        raise FrameError(f"reply length {len(p)}: expected {REPLY_LEN} bytes")
    for k, magic in enumerate(MAGICS):
        o = k * BLOCK_LEN
        if p[o : o + 4] != magic:
            raise FrameError(
                f"block {k + 1} bytes {o}-{o + 3} = {p[o : o + 4]!r}: expected {magic!r}"
            )
        want = crc16_modbus(p[o : o + 60])
        got = p[o + 60] | (p[o + 61] << 8)
        if got != want:
            raise FrameError(
                f"block {k + 1} bytes {o + 60}-{o + 61} = 0x{got:04x}: expected CRC 0x{want:04x}"
            )


def parse_plain(p: bytes) -> TCReading:
    """Decode validated plaintext (raises `FrameError` if invalid)."""
    validate_plain(p)
    (serial,) = struct.unpack_from("<I", p, 12)
    runs, v, a, w = struct.unpack_from("<IIII", p, 44)
    ohm, mah, mwh = struct.unpack_from("<III", p, 68)
    sign, temp, dp, dm = struct.unpack_from("<IIII", p, 88)
    return TCReading(
        model=p[4:8].rstrip(b"\0").decode("ascii", "replace"),
        firmware=p[8:12].rstrip(b"\0").decode("ascii", "replace"),
        serial=serial,
        runs=runs,
        voltage_v=v / 1e4,
        current_a=a / 1e5,
        power_w=w / 1e4,
        resistance_ohm=ohm / 10,
        group0_mah=mah,
        group0_mwh=mwh,
        temperature_c=-temp if sign == 1 else temp,
        dplus_v=dp / 100,
        dminus_v=dm / 100,
    )


def parse_reply(data: bytes) -> TCReading:
    """Decrypt and decode one 192-byte `getva` reply (raises `FrameError` if invalid)."""
    if len(data) != REPLY_LEN:
        raise FrameError(f"reply length {len(data)}: expected {REPLY_LEN} bytes")
    return parse_plain(decrypt(data))


@dataclass
class ScanResult:
    """Replies found in a buffer by `find_replies`."""

    plains: list[bytes]
    consumed: int
    garbage: int
    bad: int


def find_replies(buf: bytes) -> ScanResult:
    """Find valid replies in `buf`: resync on the offset whose first AES block starts `pac1`.

    >>> c = encrypt(build_plain(TCReading(voltage_v=5.0)))
    >>> r = find_replies(b"xyz" + c)
    >>> len(r.plains), r.garbage, r.consumed
    (1, 3, 195)
    """
    plains: list[bytes] = []
    i = garbage = bad = 0
    n = len(buf)
    dec = _cipher().decryptor()
    while i + 16 <= n:
        if dec.update(bytes(buf[i : i + 16]))[:4] != b"pac1":
            i += 1
            garbage += 1
            continue
        if i + REPLY_LEN > n:
            break
        p = decrypt(bytes(buf[i : i + REPLY_LEN]))
        try:
            validate_plain(p)
        except FrameError:
            bad += 1
            i += 1
            garbage += 1
            continue
        plains.append(p)
        i += REPLY_LEN
    return ScanResult(plains, i, garbage, bad)


class TC66CMeter(PolledMeter):
    """Driver for the TC66C over USB serial (115200 baud): poll `getva`, decrypt, validate.

    Built as `PolledMeter` (port, poll interval, response timeout, clock, update period).
    """

    baudrate = 115200

    def identify(self) -> MeterInfo:
        """Model, firmware and serial number from the last reply (polls once if needed)."""
        if self.last_reading is None and self._port is not None:
            self.read_batch()
        r = self.last_reading
        details = {} if r is None else {"firmware": r.firmware, "serial": str(r.serial)}
        model = "TC66C" if r is None else r.model
        return MeterInfo("tc66c", model, self.url, self.update_period_s, details)

    def read_batch(self) -> SampleBatch:
        """Poll once; empty for a repeat or a timeout."""
        return self.poll(GETVA, REPLY_LEN * 4, REPLY_LEN, _scan)

    def parse(self, frame: bytes) -> TCReading:
        """The reading in a validated decrypted reply."""
        return parse_plain(frame)


def _scan(buf: bytearray) -> tuple[bytes | None, int, int, int]:
    found = find_replies(buf)
    last = found.plains[-1] if found.plains else None
    return last, found.garbage, found.bad, len(buf) - found.consumed
