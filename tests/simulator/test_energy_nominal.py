"""``simulate --json`` carries the battery's nominal energy (issue 33): capacity x nominal
voltage. An ideal battery delivers exactly that; Peukert and Thevenin deliver more or less,
and the report says why."""

from __future__ import annotations

import json

import pytest
from cli_runner import rt3lab

from device_profiles import load_profile


def _run(*extra: str) -> list[dict]:
    out = rt3lab("simulate", "--profile", "rt3-paper", "--capacity-mah", "5", "--compare",
                 "--json", *extra)  # fmt: skip
    assert out.code == 0, out.stderr
    return json.loads(out.stdout)


def test_an_ideal_battery_delivers_its_nominal_energy_within_float_noise():
    bat = load_profile("rt3-paper").battery
    nominal = 5 * 3.6 * bat.nominal_voltage_v
    results = _run("--battery-model", "ideal")
    for r in results:
        assert r["nominal_energy_j"] == pytest.approx(nominal, rel=1e-12)
        assert r["energy_j"] == pytest.approx(r["nominal_energy_j"], rel=1e-9), r["policy"]


@pytest.mark.parametrize("model", ["peukert", "thevenin"])
def test_peukert_and_thevenin_deliver_more_than_nominal_on_rt3_paper(model):
    """On rt3-paper's full cell the load draws below Peukert's rated current (C / 20 h), and
    the open-circuit voltage stays above the nominal voltage for most of the discharge
    (Thevenin): both give more than C x V_nominal (about 40,360 J against 37,800 J)."""
    out = rt3lab("simulate", "--profile", "rt3-paper", "--battery-model", model, "--json")
    assert out.code == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["nominal_energy_j"] == pytest.approx(37800.0)
    assert 1.05 < r["energy_j"] / r["nominal_energy_j"] < 1.1


def test_peukert_above_its_rated_current_delivers_less():
    """A 5 mAh cell's rated current (0.25 mA) is far below the load's: less than nominal."""
    for r in _run("--battery-model", "peukert"):
        assert r["energy_j"] < 0.9 * r["nominal_energy_j"], r["policy"]
