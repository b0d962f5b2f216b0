"""Invariants of the median CI, the stopping rule, and the fits."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lab.profiling.calibrate import CalibrationError, fit_latency, fit_power
from lab.profiling.stats import StopRule, measure_until_stable, median, median_ci, median_ci_ranks

finite = st.floats(0.01, 1e4, allow_nan=False)


@given(st.lists(finite, min_size=1, max_size=300))
def test_ci_brackets_the_sample_median(xs):
    lo, hi = median_ci(xs)
    assert lo <= median(xs) <= hi


@given(st.integers(6, 400))
def test_ranks_reach_the_confidence_and_are_the_tightest(n):
    j, k = median_ci_ranks(n)
    from math import comb

    def coverage(j, k):
        return sum(comb(n, i) for i in range(j + 1, k + 1)) / 2**n

    assert coverage(j, k) >= 0.95
    assert j + 1 > k - 1 or coverage(j + 1, k - 1) < 0.95


def test_too_few_samples_have_no_ci():
    assert median_ci_ranks(5) is None
    assert median_ci([1.0, 2.0]) == (-math.inf, math.inf)


def test_empirical_coverage_of_a_skewed_distribution():
    rng = random.Random(1)
    true_median = math.log(2)  # exponential(1)
    hits = 0
    for _ in range(400):
        lo, hi = median_ci([rng.expovariate(1.0) for _ in range(40)])
        hits += lo <= true_median <= hi
    assert hits / 400 >= 0.93


def test_stops_when_the_ci_is_tight_and_at_the_caps():
    t = [0.0]

    def clock():
        return t[0]

    def steady():
        t[0] += 0.010

    s = measure_until_stable(steady, StopRule(warmup=3, min_runs=10), clock=clock)
    assert s.converged and s.runs == 10 and s.median_ms == pytest.approx(10.0)
    rng = random.Random(0)

    def noisy():
        t[0] += rng.choice([0.001, 0.1])

    s = measure_until_stable(noisy, StopRule(warmup=0, max_runs=50), clock=clock)
    assert not s.converged and s.runs == 50
    s = measure_until_stable(noisy, StopRule(warmup=0, time_cap_s=0.5), clock=clock)
    assert not s.converged and s.elapsed_s >= 0.5 and s.runs < 50


@settings(max_examples=60)
@given(
    p0=st.floats(0.0, 10.0),
    c=st.floats(1e-11, 1e-8),
    levels=st.lists(st.integers(1, 30), min_size=2, max_size=10, unique=True),
)
def test_power_fit_recovers_noiseless_parameters(p0, c, levels):
    f = [k * 100000 for k in sorted(levels)]
    v = [0.8 + 0.02 * i for i in range(len(f))]
    p = [p0 + c * vv**2 * ff * 1e3 for vv, ff in zip(v, f, strict=True)]
    fit = fit_power(f, p, v)
    assert fit.p_static_w == pytest.approx(p0, abs=1e-6 * (1 + max(p)))
    assert fit.c_eff_f == pytest.approx(c, rel=1e-5)
    assert fit.max_abs_residual_w < 1e-6 * (1 + max(p))
    assert fit.predict_w(f[0], v[0]) == pytest.approx(p[0], rel=1e-6)


def test_power_fit_without_voltages_is_linear_and_says_so():
    fit = fit_power([1000000, 2000000], [3.0, 5.0])
    assert fit.c_eff_f is None and fit.slope_w_per_ghz == pytest.approx(2.0)
    assert "no voltages" in fit.formula()
    with pytest.raises(CalibrationError, match="two distinct levels"):
        fit_power([1000000, 1000000], [3.0, 3.0])


@given(
    a=st.floats(0.0, 50.0),
    b=st.floats(0.1, 500.0),
    levels=st.lists(st.integers(2, 30), min_size=2, max_size=8, unique=True),
)
def test_latency_fit_recovers_a_and_b(a, b, levels):
    f = [k * 100000 for k in levels]
    lat = [a + b / (k / 1e6) for k in f]
    fit = fit_latency(f, lat)
    assert fit.a_ms == pytest.approx(a, abs=1e-6 * (1 + max(lat)))
    assert fit.b_ms_ghz == pytest.approx(b, rel=1e-6)


@given(lat=st.floats(0.1, 1e3), m=st.floats(0.0, 0.9), khz=st.integers(100000, 4000000))
def test_one_frequency_projection_keeps_the_measured_point(lat, m, khz):
    fit = fit_latency([khz], [lat], memory_fraction=m)
    assert fit.latency_ms(khz) == pytest.approx(lat, rel=1e-9)
    assert fit.a_ms == pytest.approx(m * lat)
    half = fit.latency_ms(khz // 2)
    assume(khz % 2 == 0)
    assert half == pytest.approx(lat * (m + (1 - m) * 2), rel=1e-9)


def test_memory_fraction_out_of_range():
    with pytest.raises(CalibrationError, match=r"\[0, 1\)"):
        fit_latency([1000000], [5.0], memory_fraction=1.0)


def test_rounds_merge_to_median_of_medians_and_ci_envelope():
    from lab.profiling.procedure import Measurement, ProfileRun, merge_rounds

    def run(med, lo, hi, ok=True):
        row = Measurement(1000, "bp", "busy", 1000, 1000, ok, med, lo, hi, runs=10, converged=True)
        return ProfileRun([row], [0.01], {}, {}, None)

    merged = merge_rounds([run(1.0, 0.9, 1.1), run(1.5, 1.4, 1.7, ok=False), run(1.2, 1.1, 1.3)])
    (m,) = merged.rows
    assert (m.median_ms, m.ci_low_ms, m.ci_high_ms, m.runs) == (1.2, 0.9, 1.7, 30)
    assert m.freq_ok is False and merged.switch_ms == [0.01] * 3
    single = run(1.0, 0.9, 1.1)
    assert merge_rounds([single]) is single
