"""A one-line live view of a recording on a terminal: power, energy so far, drops, gaps.

The recorder calls it after every batch (``Recorder(on_batch=...)``); it redraws one line
at most a few times a second, in place (carriage return), and ends it with a newline.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

import numpy as np

from power_meter.recorder import RecordingSummary, _Integrator
from power_meter.sample import Meter, SampleBatch


class LiveLine:
    """Redraws ``power W · energy J · samples · drops · gaps · elapsed`` in place."""

    def __init__(
        self,
        meter: Meter,
        summary: RecordingSummary,
        stream: TextIO | None = None,
        min_interval_s: float = 0.25,
    ) -> None:
        """``summary`` is the recorder's, read for its gap count."""
        self.meter = meter
        self.summary = summary
        self.stream = stream or sys.stderr
        self.min_interval_s = min_interval_s
        self._integ = _Integrator()
        self._power = math.nan
        self._samples = 0
        self._start = time.monotonic()
        self._drawn = -math.inf
        self._dirty = False

    def text(self) -> str:
        """The line as it would be drawn now."""
        power = "-" if math.isnan(self._power) else f"{self._power:.3f} W"
        return (
            f"recording: {power}  {self._integ.energy:.3f} J so far  {self._samples} samples  "
            f"{self.meter.stats.drops} drops  {len(self.summary.gaps)} gaps  "
            f"{time.monotonic() - self._start:.0f} s"
        )

    def __call__(self, batch: SampleBatch) -> None:
        """Take a batch; redraw when the interval has passed."""
        self._integ.add(batch)
        self._samples += len(batch)
        finite = batch.power_w[np.isfinite(batch.power_w)]
        if finite.size:
            self._power = float(finite[-1])
        now = time.monotonic()
        if now - self._drawn >= self.min_interval_s:
            self._draw()
            self._drawn = now

    def _draw(self) -> None:
        self.stream.write("\r\x1b[K" + self.text())
        self.stream.flush()
        self._dirty = True

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self._samples:
            self._draw()
        if self._dirty:
            self.stream.write("\n")
            self.stream.flush()
