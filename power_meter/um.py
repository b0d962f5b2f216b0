"""RDTech UM24C, UM25C and UM34C: the 130-byte poll reply, its per-model scaling, and the driver.

The meter never pushes: the host sends 0xF0 and the meter answers one 130-byte big-endian
frame. Bytes 0-1 are the model id; UM24C/UM25C end with the marker 0xFFF1, the UM34C puts
an XOR checksum of 32 fixed bytes in byte 129.

>>> frame = build_frame(UMReading("UM25C", voltage_v=5.123, current_a=0.4567, power_w=2.339))
>>> len(frame), frame[:2].hex(), frame[-2:].hex()
(130, '09c9', 'fff1')
>>> parse_frame(frame).voltage_v
5.123
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from power_meter.port import PolledMeter
from power_meter.sample import Clock, MeterError, MeterInfo, SampleBatch, wall_clock

FRAME_LEN = 130
POLL = b"\xf0"
END_MARKER = 0xFFF1
MODEL_IDS: dict[str, int] = {"UM24C": 0x0963, "UM25C": 0x09C9, "UM34C": 0x0D4C}
MODEL_BY_ID: dict[int, str] = {v: k for k, v in MODEL_IDS.items()}
# (volts per count, amps per count) from the reference table: only the UM25C differs.
SCALE: dict[str, tuple[float, float]] = {
    "UM24C": (0.01, 0.001),
    "UM25C": (0.001, 0.0001),
    "UM34C": (0.01, 0.001),
}
UM34C_CHECKSUM_BYTES: tuple[int, ...] = (
    1, 3, 7, 9, 15, 17, 19, 23, 31, 39, 41, 45, 49, 53, 55, 57,
    59, 63, 67, 69, 73, 79, 83, 89, 97, 99, 109, 111, 113, 119, 121, 127,
)  # fmt: skip
CHARGE_MODES = ("unknown", "QC2.0", "QC3.0", "APP2.4A", "APP2.1A", "APP1.0A", "APP0.5A")
CHARGE_MODES += ("DCP1.5A", "SAMSUNG")
UPDATE_PERIOD_S = 0.5


class FrameError(MeterError):
    """A frame that fails validation; the message names the byte and what was expected."""


@dataclass(frozen=True)
class UMReading:
    """Every field of one UM frame, already scaled to SI units (energy groups in mAh, mWh)."""

    model: str
    voltage_v: float = 0.0
    current_a: float = 0.0
    power_w: float = 0.0
    temperature_c: int = 0
    temperature_f: int = 32
    group: int = 0
    groups_mah_mwh: tuple[tuple[int, int], ...] = ((0, 0),) * 10
    dplus_v: float = 0.0
    dminus_v: float = 0.0
    charge_mode: int = 0
    record_mah: int = 0
    record_mwh: int = 0
    record_threshold_a: float = 0.0
    record_seconds: int = 0
    recording: int = 0
    screen_timeout_min: int = 0
    brightness: int = 5
    load_ohm: float = 0.0
    screen: int = 0
    extra: dict[str, int] = field(default_factory=dict, compare=False)


def um34c_checksum(frame: bytes) -> int:
    """XOR of the 32 bytes the UM34C covers (stored in byte 129)."""
    c = 0
    for i in UM34C_CHECKSUM_BYTES:
        c ^= frame[i]
    return c


def build_frame(r: UMReading) -> bytes:
    """Encode a reading as the exact 130 bytes the meter sends (values rounded to its counts)."""
    if r.model not in MODEL_IDS:
        raise MeterError(f"model {r.model!r}: expected one of {sorted(MODEL_IDS)}")
    vs, cs = SCALE[r.model]
    out = bytearray(FRAME_LEN)
    struct.pack_into(
        ">HHHIHHH",
        out,
        0,
        MODEL_IDS[r.model],
        _count(r.voltage_v / vs, 16),
        _count(r.current_a / cs, 16),
        _count(r.power_w * 1000, 32),
        r.temperature_c & 0xFFFF,
        r.temperature_f & 0xFFFF,
        r.group,
    )
    for g, (mah, mwh) in enumerate(r.groups_mah_mwh):
        struct.pack_into(">II", out, 16 + 8 * g, mah & 0xFFFFFFFF, mwh & 0xFFFFFFFF)
    struct.pack_into(
        ">HHHIIHIHHHIH",
        out,
        96,
        _count(r.dplus_v * 100, 16),
        _count(r.dminus_v * 100, 16),
        r.charge_mode,
        r.record_mah,
        r.record_mwh,
        _count(r.record_threshold_a * 100, 16),
        r.record_seconds,
        r.recording,
        r.screen_timeout_min,
        r.brightness,
        _count(r.load_ohm * 10, 32),
        r.screen,
    )
    if r.model == "UM34C":
        out[129] = um34c_checksum(out)
    else:
        struct.pack_into(">H", out, 128, END_MARKER)
    return bytes(out)


def _count(x: float, bits: int) -> int:
    return int(min(max(round(x), 0), (1 << bits) - 1))


def validate_frame(frame: bytes) -> str:
    """Return the model of a valid frame, or raise `FrameError` naming the offending byte."""
    if len(frame) != FRAME_LEN:
        raise FrameError(f"frame length {len(frame)}: expected {FRAME_LEN} bytes")
    model_id = (frame[0] << 8) | frame[1]
    model = MODEL_BY_ID.get(model_id)
    if model is None:
        raise FrameError(f"bytes 0-1 = 0x{model_id:04x}: expected a model id {_IDS}")
    if model == "UM34C":
        c = um34c_checksum(frame)
        if frame[129] != c:
            raise FrameError(f"byte 129 = 0x{frame[129]:02x}: expected UM34C checksum 0x{c:02x}")
    else:
        end = (frame[128] << 8) | frame[129]
        if end != END_MARKER:
            raise FrameError(f"bytes 128-129 = 0x{end:04x}: expected end marker 0xfff1")
    return model


_IDS = ", ".join(f"0x{v:04x} ({k})" for k, v in MODEL_IDS.items())


def parse_frame(frame: bytes) -> UMReading:
    """Decode one validated frame at its model's scaling (raises `FrameError` if invalid)."""
    model = validate_frame(frame)
    vs, cs = SCALE[model]
    _, v, a, p, tc, tf, grp = struct.unpack_from(">HHHIHHH", frame, 0)
    groups = tuple(struct.unpack_from(">II", frame, 16 + 8 * g) for g in range(10))
    dp, dm, mode, rmah, rmwh, thr, rsec, rec, sto, bri, load, scr = struct.unpack_from(
        ">HHHIIHIHHHIH", frame, 96
    )
    return UMReading(
        model=model,
        voltage_v=round(v * vs, 6),
        current_a=round(a * cs, 6),
        power_w=p / 1000,
        temperature_c=tc,
        temperature_f=tf,
        group=grp,
        groups_mah_mwh=groups,
        dplus_v=dp / 100,
        dminus_v=dm / 100,
        charge_mode=mode,
        record_mah=rmah,
        record_mwh=rmwh,
        record_threshold_a=thr / 100,
        record_seconds=rsec,
        recording=rec,
        screen_timeout_min=sto,
        brightness=bri,
        load_ohm=load / 10,
        screen=scr,
    )


@dataclass
class ScanResult:
    """What `find_frames` found in a buffer."""

    frames: list[bytes]
    consumed: int  # bytes of the buffer that are done with (frames and skipped garbage)
    garbage: int  # bytes skipped while resynchronising
    bad: int  # candidate frames rejected by the end marker or checksum


def find_frames(buf: bytes, model: str | None = None) -> ScanResult:
    """Find valid frames in `buf`, resynchronising the way libsigrok does.

    Where bytes 0-1 are not the expected model id (any known id if `model` is None), or a
    candidate fails its end marker or checksum, one byte is dropped and the scan goes on.
    An incomplete candidate at the end is left unconsumed.

    >>> f = build_frame(UMReading("UM34C", voltage_v=5.0))
    >>> r = find_frames(b"\\x00garbage" + f + f[:10], "UM34C")
    >>> len(r.frames), r.garbage, r.consumed
    (1, 8, 138)
    """
    ids = {MODEL_IDS[model]} if model else set(MODEL_BY_ID)
    frames: list[bytes] = []
    i = garbage = bad = 0
    n = len(buf)
    while i + 2 <= n:
        if ((buf[i] << 8) | buf[i + 1]) not in ids:
            i += 1
            garbage += 1
            continue
        if i + FRAME_LEN > n:
            break
        cand = bytes(buf[i : i + FRAME_LEN])
        try:
            validate_frame(cand)
        except FrameError:
            bad += 1
            i += 1
            garbage += 1
            continue
        frames.append(cand)
        i += FRAME_LEN
    if i + 1 == n and buf[i] not in {x >> 8 for x in ids}:
        i += 1
        garbage += 1
    return ScanResult(frames, i, garbage, bad)


class UMMeter(PolledMeter):
    """Driver for the UM24C/UM25C/UM34C over any pyserial URL (Bluetooth RFCOMM, pty, socket).

    Each `read()` sends one poll (no faster than `poll_interval_s`) and waits up to
    `response_timeout_s` for the answer. Samples are stamped with the host time at which
    the poll was sent: the meter answers with its state at that moment. A frame identical
    to the previous one is a repeat (the meter had not updated): it is counted, and only
    emitted (flagged `Flag.REPEAT`) once 1.5 update periods passed without a change.
    """

    baudrate = 9600

    def __init__(
        self,
        port: str,
        model: str = "UM34C",
        poll_interval_s: float = 0.25,
        response_timeout_s: float = 1.0,
        clock: Clock = wall_clock,
        update_period_s: float = UPDATE_PERIOD_S,
    ) -> None:
        """Configure (does not open the port)."""
        model = model.upper()
        if model not in MODEL_IDS:
            raise MeterError(f"model {model!r}: expected one of {sorted(MODEL_IDS)}")
        super().__init__(port, poll_interval_s, response_timeout_s, clock, update_period_s)
        self.model = model

    def identify(self) -> MeterInfo:
        """The configured model (the UM protocol has no identify command beyond the id bytes)."""
        return MeterInfo(
            "um", self.model, self.url, self.update_period_s, {"baudrate": str(self.baudrate)}
        )

    def read_batch(self) -> SampleBatch:
        """Poll once and return the new sample as a batch (empty for a repeat or a timeout)."""
        return self.poll(POLL, FRAME_LEN * 4, 0, self._scan)

    def _scan(self, buf: bytearray) -> tuple[bytes | None, int, int, int]:
        found = find_frames(buf, self.model)
        return (found.frames[-1] if found.frames else None), found.garbage, found.bad, 0

    def parse(self, frame: bytes) -> UMReading:
        """The reading in a validated frame."""
        return parse_frame(frame)
