"""Every shipped profile validates, round-trips, and carries provenance for every number."""

import math

import pytest

from device_profiles import (
    dump_profile,
    load_profile,
    parse_profile,
    shipped_profiles,
    unprovenanced_numbers,
)

NAMES = sorted(shipped_profiles())


def test_the_four_boards_ship():
    assert {"rt3-paper", "odroid-xu4", "raspberry-pi-4", "pixel-3"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_number_has_provenance(name):
    profile = load_profile(name)
    assert unprovenanced_numbers(profile) == []


@pytest.mark.parametrize("name", NAMES)
def test_dump_and_load_round_trip(name):
    profile = load_profile(name)
    assert parse_profile(dump_profile(profile)) == profile


@pytest.mark.parametrize("name", NAMES)
def test_power_defined_at_every_level(name):
    profile = load_profile(name)
    for khz in profile.levels_khz:
        busy, idle = profile.power_at(khz)
        assert busy > 0 and 0 <= idle <= busy and math.isfinite(busy)


def test_rt3_paper_matches_rt3s_hardware_model():
    p = load_profile("rt3-paper")
    assert p.levels_khz == [800000, 1000000, 1400000]
    # P = f * V^2 * 1e-10: about 0.215, 0.114 and 0.079 W (rt3.md)
    assert p.power_at(1400000)[0] == pytest.approx(1.4e9 * 1.240**2 * 1e-10)
    assert p.power_at(1000000)[0] == pytest.approx(0.1137, abs=1e-4)
    assert p.power_at(800000)[0] == pytest.approx(0.0788, abs=1e-4)
    assert p.battery.energy_j == pytest.approx(37800.0, rel=1e-12)
    assert [p.deadline_ms(f) for f in (1400000, 1000000, 800000)] == [115, 104, 94]
    assert p.governor.basis == "energy"
    assert [(s.battery_below, s.cap_khz) for s in p.governor.steps] == [
        (0.5, 1000000),
        (0.2, 800000),
    ]


@pytest.mark.parametrize("name", ["dense", "bp"])
def test_rt3_paper_variant_latencies_follow_the_op_count_model(name):
    p = load_profile("rt3-paper")
    v = p.variant(name)
    assert p.latency_model is not None
    for khz in p.levels_khz:
        modelled = p.latency_model.latency_ms(v.nonzero_mults, v.nonzero_adds, khz)
        assert v.latency_at(khz) == pytest.approx(modelled, rel=1e-8)


def test_rt3_paper_reproduces_rt3s_quoted_latencies():
    # rt3.md: BP about 115 / 160 / 200 ms at 1.4 / 1.0 / 0.8 GHz, dense about 321 ms at 1.4.
    p = load_profile("rt3-paper")
    bp = p.variant("bp")
    assert bp.latency_at(1400000) == pytest.approx(115, abs=1.5)
    assert bp.latency_at(1000000) == pytest.approx(160, abs=2.5)
    assert bp.latency_at(800000) == pytest.approx(200, abs=2.5)
    assert p.variant("dense").latency_at(1400000) == pytest.approx(321, abs=1.5)
