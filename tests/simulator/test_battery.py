"""Battery models against their closed forms, scipy's ODE solver and PyBaMM."""

import math
import os

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from device_profiles import load_profile
from simulator.battery import (
    IdealBattery,
    KiBaMBattery,
    Load,
    PeukertBattery,
    TheveninBattery,
    make_battery,
)
from simulator.errors import SimulatorInputError


def test_ideal_is_energy_counting():
    b = IdealBattery(1000, 3.7)
    dt, why = b.advance_until(Load(((2.0, 0.25), (0.4, 0.75))), 1e9)
    assert why == "empty"
    assert dt == pytest.approx(1000 * 3.6 * 3.7 / (2.0 * 0.25 + 0.4 * 0.75), rel=1e-12)


def test_peukert_matches_its_law():
    # t = H (C / (I H))^k, C in Ah, H in hours, I in A.
    b = PeukertBattery(3000, 1.0, k=1.1, rated_hours=20)
    dt, why = b.advance_until(Load.constant(1.5), 1e9)
    assert why == "empty"
    expected_h = 20 * (3.0 / (1.5 * 20)) ** 1.1
    assert dt / 3600 == pytest.approx(expected_h, rel=1e-12)


def _kibam_ode(c, k, current, y1, y2, t_end):
    def rhs(_t, y):
        h1, h2 = y[0] / c, y[1] / (1 - c)
        return [-current + k * (h2 - h1), -k * (h2 - h1)]

    sol = solve_ivp(rhs, (0, t_end), [y1, y2], method="DOP853", rtol=1e-12, atol=1e-12)
    return sol.y[:, -1]


@pytest.mark.parametrize("current", [0.0, 0.3, 2.0])
@pytest.mark.parametrize("t", [0.01, 5.0, 600.0, 5000.0])
def test_kibam_closed_form_matches_ode(current, t):
    b = KiBaMBattery(3000, 1.0, c=0.166, k_per_s=2.7833e-4)
    b.y1, b.y2 = 0.7 * b.y1, 0.9 * b.y2  # out of equilibrium
    y1, y2 = b.wells_after(current, t)
    r1, r2 = _kibam_ode(b.c, b.k, current, b.y1, b.y2, t)
    assert y1 == pytest.approx(r1, rel=1e-6, abs=1e-9)
    assert y2 == pytest.approx(r2, rel=1e-6, abs=1e-9)


def test_kibam_empty_time_matches_ode_event():
    b = KiBaMBattery(1000, 1.0, c=0.3, k_per_s=1e-3)
    dt, why = b.advance_until(Load.constant(2.0), 1e9)
    assert why == "empty"

    def rhs(_t, y):
        h1, h2 = y[0] / 0.3, y[1] / 0.7
        return [-2.0 + 1e-3 * (h2 - h1), -1e-3 * (h2 - h1)]

    def empty(_t, y):
        return y[0]

    empty.terminal = True
    sol = solve_ivp(rhs, (0, 1e6), [0.3 * 3600, 0.7 * 3600], events=empty, rtol=1e-12, atol=1e-10)
    assert dt == pytest.approx(sol.t_events[0][0], rel=1e-6)


def test_kibam_rate_capacity_effect_and_recovery():
    def delivered(amps):
        b = KiBaMBattery(1000, 1.0, c=0.166, k_per_s=2.7833e-4)
        dt, _ = b.advance_until(Load.constant(amps), 1e9)
        return amps * dt, b

    low, _ = delivered(0.1)
    high, b = delivered(3.0)
    assert high < 0.8 * low  # a heavy load gets less charge out
    assert b.advance_until(Load.constant(3.0), 1e9) == (0.0, "empty")
    b.advance(Load.constant(0.0), 3600.0)  # rest: bound charge flows back
    assert b.y1 > 0
    dt, why = b.advance_until(Load.constant(3.0), 1e9)
    assert why == "empty" and dt > 10.0


def test_thevenin_constant_current_rc_step_is_exact():
    b = TheveninBattery(3000, [0.0, 1.0], [3.0, 4.2], 0.01, [(0.02, 100.0)], 2.5)
    # after 25 time constants V_RC sits at R I, with I the constant-power current
    b.advance(Load.constant(2.1), 50.0)
    amps = 2.1 / b.voltage(2.1)
    assert b.vrc[0] == pytest.approx(0.02 * amps * (1 - math.exp(-50 / 2.0)), rel=1e-4)
    # and the terminal voltage solves P = V I with V = OCV - V_RC - I R0
    assert b.voltage(2.1) == pytest.approx(b.ocv(b.z) - b.vrc[0] - amps * 0.01, rel=1e-12)


@pytest.mark.parametrize("n_rc", [1, 2])
def test_thevenin_matches_pybamm_time_to_cutoff(n_rc):
    os.environ["PYBAMM_DISABLE_TELEMETRY"] = "true"
    pybamm = pytest.importorskip("pybamm")
    th = load_profile("pixel-3").battery.thevenin
    power = 5.0
    pairs = [(th.rc[0].r_ohm, th.rc[0].c_f), (0.008, 200.0)][:n_rc]
    model = pybamm.equivalent_circuit.Thevenin(
        options={"number of rc elements": n_rc, "operating mode": "power"}
    )
    pv = pybamm.ParameterValues("ECM_Example")
    soc, ocv = np.array(th.ocv.soc), np.array(th.ocv.ocv_v)
    pv.update(
        {
            "Cell capacity [A.h]": 2.915,
            "Initial SoC": 0.99,
            "R0 [Ohm]": th.r0_ohm,
            "R1 [Ohm]": th.rc[0].r_ohm,
            "C1 [F]": th.rc[0].c_f,
            "Open-circuit voltage [V]": lambda sto: pybamm.Interpolant(
                soc, ocv, sto, interpolator="linear"
            ),
            "Lower voltage cut-off [V]": th.cutoff_v,
            "Entropic change [V/K]": 0.0,
            "Power function [W]": power,
        },
        check_already_exists=False,
    )
    if n_rc == 2:
        pv.update(
            {"R2 [Ohm]": 0.008, "C2 [F]": 200.0, "Element-2 initial overpotential [V]": 0.0},
            check_already_exists=False,
        )
    sol = pybamm.Simulation(model, parameter_values=pv).solve([0, 20000])
    t_ref = float(sol["Time [s]"].entries[-1])
    assert "Minimum voltage" in sol.termination
    b = TheveninBattery(2915, list(soc), list(ocv), th.r0_ohm, pairs, th.cutoff_v, 0.99)
    dt, why = b.advance_until(Load.constant(power), 1e9)
    assert why == "empty"
    assert dt == pytest.approx(t_ref, rel=0.01)
    assert b.voltage(power) == pytest.approx(th.cutoff_v, abs=1e-3)


def test_thevenin_two_rc_pairs_and_power_beyond_the_cell():
    b = TheveninBattery(3000, [0.0, 1.0], [3.0, 4.2], 0.01, [(0.01, 100.0), (0.02, 2000.0)], 3.0)
    assert b.advance_until(Load.constant(1e6), 10.0) == (0.0, "empty")
    dt, why = b.advance_until(Load.constant(5.0), 1e9)
    assert why == "empty" and 0 < dt < 3 * 3600 * 4.2 / 5.0


def test_make_battery_uses_profile_parameters_and_rejects_bad_input():
    p = load_profile("pixel-3")
    assert make_battery(p).name == "thevenin"
    assert make_battery(p, "kibam").c == p.battery.kibam.c
    with pytest.raises(SimulatorInputError, match="capacity_mah"):
        make_battery(p, capacity_mah=0)
    with pytest.raises(SimulatorInputError, match="unknown 'lead'"):
        make_battery(p, "lead")


@pytest.mark.parametrize("phases", [((0.2, 0.037), (0.01, 0.296)), ((0.5, 0.2), (0.0, 20.0))])
def test_kibam_exact_cycle_map_matches_stepping(phases):
    fast = KiBaMBattery(1.0, 1.0, 0.166, 2.7833e-4)
    slow = KiBaMBattery(1.0, 1.0, 0.166, 2.7833e-4)
    n = fast.safe_cycles(phases, 10**9)
    assert n > 3
    for _ in range(n):
        for p, d in phases:
            assert slow.advance_until(Load.constant(p), d)[1] is None
    assert (fast.y1, fast.y2) == pytest.approx((slow.y1, slow.y2), rel=1e-9, abs=1e-12)
    # and the next cycle is the one that empties it
    hits = [slow.advance_until(Load.constant(p), d)[1] for p, d in phases]
    assert "empty" in hits
