"""Power waveforms that drive the emulators: constant, a step trace, or a CSV of steps.

A waveform is piecewise constant: step k holds `power_w[k]` at `voltage_v[k]` from
`t_s[k]` until the next step (the last step holds forever). Energy is exact.

>>> w = Waveform.steps([0, 1, 3], [2.0, 4.0, 1.0])
>>> w.energy(0.5, 3.5)
9.5
>>> Waveform.parse("constant:2.5@3.3").power(10.0)
2.5
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from power_meter.sample import MeterError


class WaveformError(MeterError):
    """A waveform specification or file that cannot be used."""


@dataclass(frozen=True)
class Waveform:
    """Piecewise-constant power (W) and voltage (V) over emulated time (s)."""

    t_s: np.ndarray
    power_w: np.ndarray
    voltage_v: np.ndarray

    def __post_init__(self) -> None:
        values = (self.t_s, self.power_w, self.voltage_v)
        if not all(np.all(np.isfinite(np.asarray(x, dtype=float))) for x in values):
            raise WaveformError("waveform: times, power and voltage must be finite numbers")
        if len(self.t_s) == 0 or self.t_s[0] != 0:
            raise WaveformError("waveform: the first step must start at t=0")
        if np.any(np.diff(self.t_s) <= 0):
            raise WaveformError("waveform: step times must increase")
        if np.any(self.power_w < 0) or np.any(self.voltage_v <= 0):
            raise WaveformError("waveform: power must be >= 0 W and voltage > 0 V")

    @classmethod
    def constant(cls, power_w: float, voltage_v: float = 5.0) -> Waveform:
        """One step forever."""
        return cls.steps([0.0], [power_w], [voltage_v])

    @classmethod
    def steps(
        cls, t_s: list[float], power_w: list[float], voltage_v: list[float] | float = 5.0
    ) -> Waveform:
        """Steps at times `t_s` (the first at 0)."""
        t = np.asarray(t_s, dtype=float)
        v = np.broadcast_to(np.asarray(voltage_v, dtype=float), t.shape).copy()
        return cls(t, np.asarray(power_w, dtype=float), v)

    @classmethod
    def from_csv(cls, path: str | Path, voltage_v: float = 5.0) -> Waveform:
        """Read `time_s,power_w[,voltage_v]` rows (a header line is required)."""
        path = Path(path)
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows or "time_s" not in rows[0] or "power_w" not in rows[0]:
            raise WaveformError(f"{path}: expected a header with time_s,power_w[,voltage_v]")
        try:
            t = [float(r["time_s"]) for r in rows]
            p = [float(r["power_w"]) for r in rows]
            v = [float(r.get("voltage_v") or voltage_v) for r in rows]
        except ValueError as exc:
            raise WaveformError(f"{path}: a row is not numeric ({exc})") from None
        try:
            return cls.steps(t, p, v)
        except WaveformError as exc:
            raise WaveformError(f"{path}: {exc}") from None

    @classmethod
    def parse(cls, spec: str, voltage_v: float = 5.0) -> Waveform:
        """`constant:W[@V]`, `steps:T=W,T=W,...` or a CSV file path.

        >>> Waveform.parse("constant:nan")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        power_meter.waveform.WaveformError: waveform 'constant:nan': times, ... finite numbers
        """
        try:
            return cls._parse(spec, voltage_v)
        except WaveformError as exc:
            msg = str(exc).removeprefix("waveform: ")
            if msg.startswith(("waveform ", spec)):
                raise
            raise WaveformError(f"waveform {spec!r}: {msg}") from None

    @classmethod
    def _parse(cls, spec: str, voltage_v: float) -> Waveform:
        if spec.startswith("constant:"):
            body = spec.split(":", 1)[1]
            p, _, v = body.partition("@")
            try:
                pw, vv = float(p), float(v) if v else voltage_v
            except ValueError:
                raise WaveformError(f"waveform {spec!r}: expected constant:WATTS[@VOLTS]") from None
            return cls.constant(pw, vv)
        if spec.startswith("steps:"):
            try:
                pairs = [x.split("=") for x in spec.split(":", 1)[1].split(",")]
                t, pw = [float(a) for a, _ in pairs], [float(b) for _, b in pairs]
            except ValueError:
                raise WaveformError(f"waveform {spec!r}: expected steps:T=W,T=W,...") from None
            return cls.steps(t, pw, voltage_v)
        return cls.from_csv(spec, voltage_v)

    def _step(self, t: np.ndarray | float) -> np.ndarray:
        return np.clip(np.searchsorted(self.t_s, t, side="right") - 1, 0, len(self.t_s) - 1)

    def power(self, t: float) -> float:
        """Power at time `t`."""
        return float(self.power_w[self._step(t)])

    def voltage(self, t: float) -> float:
        """Voltage at time `t`."""
        return float(self.voltage_v[self._step(t)])

    def cumulative_energy(self, t: np.ndarray | float) -> np.ndarray:
        """Energy (J) from 0 to `t`, vectorised."""
        t = np.asarray(t, dtype=float)
        starts = np.concatenate([[0.0], np.cumsum(np.diff(self.t_s) * self.power_w[:-1])])
        k = self._step(t)
        return starts[k] + (np.maximum(t, 0) - self.t_s[k]) * self.power_w[k]

    def energy(self, t0: float, t1: float) -> float:
        """Energy (J) between `t0` and `t1`."""
        return float(self.cumulative_energy(t1) - self.cumulative_energy(t0))

    def mean_power(self, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        """Mean power over each interval [t0, t1) (vectorised)."""
        return (self.cumulative_energy(t1) - self.cumulative_energy(t0)) / (
            np.asarray(t1) - np.asarray(t0)
        )
