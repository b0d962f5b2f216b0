"""Samples, sample batches, meter identity and the driver interface shared by every meter."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

Clock = Callable[[], float]


class Flag(enum.IntFlag):
    """Per-sample flags, stored as an integer column.

    >>> int(Flag.AFTER_GAP | Flag.DROP)
    6
    """

    REPEAT = 1  # the meter answered with a frame identical to the previous one
    AFTER_GAP = 2  # first sample after a stall or a reconnect
    DROP = 4  # samples were lost immediately before this one (PPK2 counter)
    GAP = 8  # a gap marker row: no measurement, values are empty
    NOMINAL_VOLTAGE = 16  # voltage was not measured but configured (PPK2 ampere mode)
    POWER_ONLY = 32  # voltage and current not measured (on-board sensors): NaN


@dataclass(frozen=True, slots=True)
class Sample:
    """One measurement: host time (s), voltage (V), current (A), power (W) and `Flag` bits."""

    t_host_s: float
    voltage_v: float
    current_a: float
    power_w: float
    flags: int = 0


@dataclass(frozen=True)
class MeterInfo:
    """What a meter says about itself."""

    driver: str
    model: str
    port: str
    update_period_s: float
    details: dict[str, str] = field(default_factory=dict)


@dataclass
class MeterStats:
    """Counters a driver keeps while it reads: nothing it throws away goes uncounted."""

    frames: int = 0  # valid new frames (or PPK2 samples)
    repeats: int = 0  # frames identical to the previous one, not emitted
    drops: int = 0  # samples the meter produced that never arrived (PPK2 counter)
    drops_by_time: int = 0  # samples missing against the sample rate and the clock (PPK2)
    bad_frames: int = 0  # frames rejected by a checksum, end marker, magic or CRC
    garbage_bytes: int = 0  # bytes skipped while resynchronising
    timeouts: int = 0  # polls that got no complete answer in time

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return dict(self.__dict__)


@dataclass
class RepeatFilter:
    """Tells a polled meter's new frames from repeats of the last one.

    Polled meters (UM, TC66C) update about every ``update_period_s``; polling faster
    returns the same bytes again. A repeat is counted and dropped, unless 1.5 update
    periods have passed since the last emitted sample: then it is emitted flagged REPEAT,
    so a steady load is not mistaken for a stall (a late poll of the same update cannot
    reach that far).

    >>> f, stats = RepeatFilter(0.5), MeterStats()
    >>> f.check(b"a", 0.0, stats), f.check(b"a", 0.4, stats), f.check(b"a", 0.8, stats)
    (0, None, 1)
    >>> stats.frames, stats.repeats
    (1, 2)
    """

    update_period_s: float
    last: bytes | None = None
    last_emit_s: float = -float("inf")

    def reset(self) -> None:
        """Forget the last frame (after the port is reopened)."""
        self.last = None

    def check(self, frame: bytes, t: float, stats: MeterStats) -> int | None:
        """The sample's flags, or None when ``frame`` is a repeat to drop."""
        flags = 0
        if frame == self.last:
            stats.repeats += 1
            if t - self.last_emit_s < 1.5 * self.update_period_s:
                return None
            flags = int(Flag.REPEAT)
        else:
            stats.frames += 1
        self.last = frame
        self.last_emit_s = t
        return flags


@dataclass
class SampleBatch:
    """Samples in columns (numpy arrays), the form fast meters and the recorder use."""

    t_host_s: np.ndarray
    voltage_v: np.ndarray
    current_a: np.ndarray
    power_w: np.ndarray
    flags: np.ndarray

    @classmethod
    def empty(cls) -> SampleBatch:
        """A batch with no samples."""
        z = np.zeros(0)
        return cls(z, z, z, z, np.zeros(0, dtype=np.int64))

    @classmethod
    def single(
        cls, t: float, voltage_v: float, current_a: float, power_w: float, flags: int
    ) -> SampleBatch:
        """A batch of one sample."""
        return cls(
            np.array([t]),
            np.array([voltage_v]),
            np.array([current_a]),
            np.array([power_w]),
            np.full(1, flags, dtype=np.int64),
        )

    @classmethod
    def from_samples(cls, samples: list[Sample]) -> SampleBatch:
        """Columns from a list of samples.

        >>> SampleBatch.from_samples([Sample(1.0, 5.0, 0.2, 1.0)]).power_w.tolist()
        [1.0]
        """
        if not samples:
            return cls.empty()
        return cls(
            np.array([s.t_host_s for s in samples], dtype=float),
            np.array([s.voltage_v for s in samples], dtype=float),
            np.array([s.current_a for s in samples], dtype=float),
            np.array([s.power_w for s in samples], dtype=float),
            np.array([s.flags for s in samples], dtype=np.int64),
        )

    @classmethod
    def concat(cls, batches: list[SampleBatch]) -> SampleBatch:
        """One batch from several, in order."""
        batches = [b for b in batches if len(b)]
        if not batches:
            return cls.empty()
        return cls(*(np.concatenate([getattr(b, n) for b in batches]) for n in _COLUMNS))

    def __len__(self) -> int:
        return int(self.t_host_s.shape[0])

    def to_samples(self) -> list[Sample]:
        """The batch as `Sample` records."""
        cols = [getattr(self, n).tolist() for n in _COLUMNS]
        return [Sample(t, v, i, p, int(f)) for t, v, i, p, f in zip(*cols, strict=True)]


_COLUMNS = ("t_host_s", "voltage_v", "current_a", "power_w", "flags")
COLUMNS: tuple[str, ...] = _COLUMNS
"""Column names of a trace file, in order."""


@runtime_checkable
class Meter(Protocol):
    """The interface every driver offers."""

    update_period_s: float
    stats: MeterStats
    clock: Clock

    def open(self) -> None:
        """Open the port and prepare the meter."""

    def identify(self) -> MeterInfo:
        """Who the meter is."""

    def read(self) -> list[Sample]:
        """New samples since the last call (may be empty)."""

    def read_batch(self) -> SampleBatch:
        """New samples since the last call, in columns."""

    def close(self) -> None:
        """Close the port."""


class MeterError(ValueError):
    """Bad configuration or input for a meter: names what was wrong."""


class MeterDisconnected(OSError):
    """The port went away (unplugged, pty closed, socket reset)."""


def wall_clock() -> float:
    """Host time in seconds since the epoch (the default clock of every driver)."""
    return time.time()
