"""Calibration: fit ``P = P_static + C * V^2 * f`` per cluster and ``latency = a + b / f``
per variant, by least squares, with residuals; compare with a published profile.

>>> f = [600000, 1000000, 1400000]
>>> v = [0.9, 1.0, 1.1]
>>> p = [0.5 + 1e-9 * vv**2 * ff * 1e3 for vv, ff in zip(v, f)]
>>> fit = fit_power(f, p, v)
>>> round(fit.p_static_w, 6), round(fit.c_eff_f * 1e9, 6)
(0.5, 1.0)
>>> lat = fit_latency([1000000, 2000000], [12.0, 7.0])
>>> round(lat.a_ms, 6), round(lat.b_ms_ghz, 6), round(lat.latency_ms(500000), 6)
(2.0, 10.0, 22.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


class CalibrationError(ValueError):
    """Too few or inconsistent points for a fit."""


@dataclass(frozen=True)
class PowerFit:
    """``P = p_static_w + c_eff_f * V^2 * f[Hz]`` (``c_eff_f`` None without voltages, then
    ``slope_w_per_ghz`` is the linear fit's slope)."""

    cluster: str
    p_static_w: float
    c_eff_f: float | None
    slope_w_per_ghz: float | None
    freq_khz: tuple[int, ...]
    measured_w: tuple[float, ...]
    residuals_w: tuple[float, ...]
    voltages_v: tuple[float, ...] | None

    def predict_w(self, freq_khz: int, volts: float | None = None) -> float:
        """Modelled busy power at a level."""
        if self.c_eff_f is not None:
            if volts is None:
                raise CalibrationError(f"power fit needs a voltage at {freq_khz} kHz")
            return self.p_static_w + self.c_eff_f * volts**2 * freq_khz * 1e3
        assert self.slope_w_per_ghz is not None
        return self.p_static_w + self.slope_w_per_ghz * freq_khz / 1e6

    @property
    def max_abs_residual_w(self) -> float:
        """Largest |measured - fitted|."""
        return max((abs(r) for r in self.residuals_w), default=0.0)

    def formula(self) -> str:
        """The fit as a one-line formula with its numbers and residuals."""
        res = ", ".join(f"{r:+.4f}" for r in self.residuals_w)
        if self.c_eff_f is not None:
            return (
                f"least-squares fit P = P_static + C*V^2*f over {len(self.freq_khz)} levels: "
                f"P_static = {self.p_static_w:.6g} W, C = {self.c_eff_f:.6g} F "
                f"(residuals W: {res})"
            )
        return (
            f"least-squares fit P = P_static + k*f (no voltages known) over "
            f"{len(self.freq_khz)} levels: P_static = {self.p_static_w:.6g} W, "
            f"k = {self.slope_w_per_ghz:.6g} W/GHz (residuals W: {res})"
        )


def fit_power(
    freq_khz: Sequence[int],
    power_w: Sequence[float],
    voltages_v: Sequence[float] | None = None,
    cluster: str = "cpu",
) -> PowerFit:
    """Least-squares ``P = P_static + C V^2 f`` (or ``P_static + k f`` without voltages)."""
    if len(freq_khz) != len(power_w):
        raise CalibrationError("one power per level expected")
    if len({int(f) for f in freq_khz}) < 2:
        raise CalibrationError(
            f"a power fit needs at least two distinct levels, got {list(freq_khz)} kHz"
        )
    f_hz = np.asarray(freq_khz, dtype=float) * 1e3
    p = np.asarray(power_w, dtype=float)
    if voltages_v is not None:
        x = np.asarray(voltages_v, dtype=float) ** 2 * f_hz
    else:
        x = f_hz / 1e9
    design = np.column_stack([np.ones_like(x), x])
    (p0, k), *_ = np.linalg.lstsq(design, p, rcond=None)
    resid = p - (p0 + k * x)
    return PowerFit(
        cluster,
        float(p0),
        float(k) if voltages_v is not None else None,
        None if voltages_v is not None else float(k),
        tuple(int(f) for f in freq_khz),
        tuple(float(v) for v in p),
        tuple(float(r) for r in resid),
        None if voltages_v is None else tuple(float(v) for v in voltages_v),
    )


@dataclass(frozen=True)
class LatencyFit:
    """``latency_ms = a_ms + b_ms_ghz / f[GHz]`` for one variant."""

    variant: str
    a_ms: float
    b_ms_ghz: float
    freq_khz: tuple[int, ...]
    measured_ms: tuple[float, ...]
    residuals_ms: tuple[float, ...]
    assumption: str = ""
    notes: list[str] = field(default_factory=list)

    def latency_ms(self, freq_khz: int) -> float:
        """Modelled latency at ``freq_khz``."""
        return self.a_ms + self.b_ms_ghz / (freq_khz / 1e6)

    def formula(self) -> str:
        """The model with its numbers."""
        res = ", ".join(f"{r:+.4f}" for r in self.residuals_ms)
        text = f"latency_ms = a + b/f[GHz], a = {self.a_ms:.6g} ms, b = {self.b_ms_ghz:.6g} ms*GHz"
        if self.assumption:
            text += f" ({self.assumption})"
        if len(self.freq_khz) > 1:
            text += f"; least squares over {len(self.freq_khz)} levels, residuals ms: {res}"
        return text


def fit_latency(
    freq_khz: Sequence[int],
    latency_ms: Sequence[float],
    variant: str = "",
    memory_fraction: float | None = None,
) -> LatencyFit:
    """Fit ``a + b/f``. With one frequency, ``a`` is ``memory_fraction`` of the measured
    latency (default 0: all of it scales with the clock), and the assumption is recorded."""
    if len(freq_khz) != len(latency_ms) or not freq_khz:
        raise CalibrationError("one latency per level expected, at least one level")
    f = np.asarray(freq_khz, dtype=float) / 1e6
    lat = np.asarray(latency_ms, dtype=float)
    distinct = len({int(x) for x in freq_khz})
    if distinct == 1 or memory_fraction is not None:
        m = 0.0 if memory_fraction is None else float(memory_fraction)
        if not 0.0 <= m < 1.0:
            raise CalibrationError(f"--memory-fraction: must be in [0, 1), got {m}")
        med = float(np.median(lat * 1.0))
        f0 = float(np.median(f))
        a = m * med
        b = (1 - m) * med * f0
        how = (
            f"one frequency measured ({f0 * 1e6:.0f} kHz): a = {m:g} x measured latency "
            + ("(assumed: all of it scales with the clock)" if memory_fraction is None
               else "(the given memory-bound fraction)")
        )  # fmt: skip
    else:
        design = np.column_stack([np.ones_like(f), 1.0 / f])
        (a, b), *_ = np.linalg.lstsq(design, lat, rcond=None)
        a, b = float(a), float(b)
        how = ""
    resid = lat - (a + b / f)
    fit = LatencyFit(
        variant,
        a,
        b,
        tuple(int(x) for x in freq_khz),
        tuple(float(x) for x in lat),
        tuple(float(r) for r in resid),
        how,
    )
    if a < 0 and distinct > 1:
        fit.notes.append(f"fitted a = {a:.4g} ms < 0: latency falls faster than 1/f")
    return fit


@dataclass(frozen=True)
class Comparison:
    """Measured (or fitted) against published busy power at each level."""

    freq_khz: int
    measured_w: float
    published_w: float

    @property
    def rel_diff(self) -> float:
        """(measured - published) / published."""
        return (
            (self.measured_w - self.published_w) / self.published_w
            if self.published_w
            else math.nan
        )


def compare_power(measured: dict[int, float], published: dict[int, float]) -> list[Comparison]:
    """Rows for the levels both have."""
    return [Comparison(k, measured[k], published[k]) for k in sorted(measured) if k in published]


def compare_with_bench(rows: list[dict[str, float | str]], bench: dict) -> list[dict]:
    """Our medians (with their 95% CI) against ``rt3lab bench runtime --json`` medians.

    ``rows`` are ``{variant, median_ms, ci_low_ms, ci_high_ms}``; a variant agrees when the
    bench's median lies inside our CI (the noise we measured). ``dense`` is compared with
    the bench's ``dense_latency_ms``.

    >>> bench = {"dense_latency_ms": 10.2, "sets": {"bp": {"latency_ms": 7.9}}}
    >>> rows = [{"variant": "dense", "median_ms": 10.0, "ci_low_ms": 9.8, "ci_high_ms": 10.3},
    ...         {"variant": "bp", "median_ms": 7.0, "ci_low_ms": 6.9, "ci_high_ms": 7.1}]
    >>> [(r["variant"], r["agrees"]) for r in compare_with_bench(rows, bench)]
    [('dense', True), ('bp', False)]
    """
    out = []
    sets = bench.get("sets", {})
    for r in rows:
        name = r["variant"]
        if name in sets:
            theirs = sets[name].get("latency_ms")
        elif name == "dense":
            theirs = bench.get("dense_latency_ms")
        else:
            continue
        if theirs is None:
            continue
        out.append(
            {
                "variant": name,
                "profile_median_ms": r["median_ms"],
                "profile_ci_ms": [r["ci_low_ms"], r["ci_high_ms"]],
                "bench_median_ms": theirs,
                "rel_diff": (r["median_ms"] - theirs) / theirs if theirs else math.nan,
                "agrees": r["ci_low_ms"] <= theirs <= r["ci_high_ms"],
            }
        )
    return out
