"""Energy windows over a live sample stream, in the style of Zeus's `begin_window`/`end_window`.

`EnergyMonitor(meter)` reads the meter on a background thread. `with monitor.window(name)
as w:` measures a block (`w.result` afterwards); `begin_window(name)` marks
the meter's clock; `end_window(name)` waits until a sample past the end has arrived and
integrates power over exactly [begin, end]: each sample's power covers the interval since
the previous sample, and partial intervals count in proportion. Windows may nest or
overlap when named differently. A window shorter than the meter's update period, or one
that touches a gap, is returned with `reliable=False`.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from power_meter.sample import Flag, Meter, MeterDisconnected, MeterError, SampleBatch


@dataclass(frozen=True)
class WindowResult:
    """Energy (J), mean power (W) and duration (s) of one window; `samples` inside it."""

    name: str
    energy_j: float
    mean_power_w: float
    duration_s: float
    samples: int
    reliable: bool


def window_energy(batch: SampleBatch, t0: float, t1: float) -> tuple[float, int, bool]:
    """(energy J, samples in window, touches a gap) over [t0, t1] of a batch.

    >>> b = SampleBatch.from_samples([])
    >>> import numpy as np
    >>> b = SampleBatch(np.array([0.0, 1.0, 2.0]), np.ones(3), np.ones(3),
    ...                 np.array([5.0, 2.0, 4.0]), np.zeros(3, dtype=int))
    >>> window_energy(b, 0.5, 1.5)
    (3.0, 1, False)
    """
    t, p, f = batch.t_host_s, batch.power_w, batch.flags
    if len(t) < 2:
        return 0.0, 0, True
    start, end = t[:-1], t[1:]  # interval i+1 covers (t[i], t[i+1]] with power p[i+1]
    overlap = np.clip(np.minimum(end, t1) - np.maximum(start, t0), 0, None)
    bad = ((f[1:] & int(Flag.AFTER_GAP | Flag.GAP)) != 0) | ((f[:-1] & int(Flag.GAP)) != 0)
    bad |= ~np.isfinite(p[1:])
    touches_gap = bool(np.any(bad & (overlap > 0)))
    energy = float(np.sum(np.where(bad, 0.0, p[1:]) * overlap))
    n_in = int(np.sum((t >= t0) & (t <= t1)))
    covered_start, covered_end = t[0] <= t0, t[-1] >= t1
    return energy, n_in, touches_gap or not (covered_start and covered_end)


@dataclass
class Window:
    """What ``EnergyMonitor.window(name)`` yields: ``result`` is set when the block ends."""

    name: str
    result: WindowResult | None = None


class EnergyMonitor:
    """Reads `meter` continuously and answers energy windows.

    The monitor keeps the samples of the last `history_s` seconds (meter clock).
    """

    def __init__(self, meter: Meter, history_s: float = 600.0, end_timeout_s: float = 5.0) -> None:
        """Wrap an opened (or openable) meter; reading starts at the first window."""
        self.meter = meter
        self.history_s = history_s
        self.end_timeout_s = end_timeout_s
        self._batches: list[SampleBatch] = []
        self._open: dict[str, float] = {}
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_t = -math.inf
        self.error: BaseException | None = None

    def start(self) -> EnergyMonitor:
        """Start the reader thread (idempotent); waits for the first sample, so that a
        window begun right after is covered from its start."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="EnergyMonitor", daemon=True)
            self._thread.start()
            with self._lock:
                self._lock.wait_for(lambda: self._batches, timeout=self.end_timeout_s)
        return self

    def close(self) -> None:
        """Stop reading (does not close the meter)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> EnergyMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                b = self.meter.read_batch()
            except MeterDisconnected as exc:
                self.error = exc
                b = None
                time.sleep(0.1)
            if b is not None and len(b):
                with self._lock:
                    self._batches.append(b)
                    self._last_t = float(b.t_host_s[-1])
                    self._trim()
                    self._lock.notify_all()

    def _trim(self) -> None:
        horizon = self._last_t - self.history_s
        if self._open:
            horizon = min(horizon, min(self._open.values()) - 1.0)
        while len(self._batches) > 1 and self._batches[1].t_host_s[0] < horizon:
            self._batches.pop(0)

    def begin_window(self, name: str) -> None:
        """Open window `name` at the meter's current time."""
        self.start()
        with self._lock:
            if name in self._open:
                raise MeterError(f"window {name!r}: already open")
            self._open[name] = self.meter.clock()

    @contextlib.contextmanager
    def window(self, name: str) -> Iterator[Window]:
        """``with monitor.window("inference") as w: ...``; then ``w.result`` is its energy.

        The window is ended (and its result set) even when the block raises.
        """
        self.begin_window(name)
        handle = Window(name)
        try:
            yield handle
        finally:
            handle.result = self.end_window(name)

    def end_window(self, name: str) -> WindowResult:
        """Close window `name` and integrate its energy (waits for the sample past its end)."""
        t1 = self.meter.clock()
        with self._lock:
            if name not in self._open:
                raise MeterError(f"window {name!r}: not open")
            t0 = self._open.pop(name)
            self._lock.wait_for(lambda: self._last_t >= t1, timeout=self.end_timeout_s)
            batch = SampleBatch.concat(self._batches)
        energy, n, bad = window_energy(batch, t0, t1)
        duration = t1 - t0
        reliable = not bad and duration >= self.meter.update_period_s
        mean = energy / duration if duration > 0 else math.nan
        return WindowResult(name, energy, mean, duration, n, reliable)
