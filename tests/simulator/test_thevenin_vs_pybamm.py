"""``thevenin_vs_pybamm``: the ratio is a speed (PyBaMM's seconds over ours), and the two
times to cutoff agree within 0.1 %."""

import pytest

from simulator.bench import thevenin_vs_pybamm


def test_thevenin_over_pybamm_is_a_speed_ratio_and_lives_agree():
    pytest.importorskip("pybamm")
    r = thevenin_vs_pybamm(repeats=1)
    assert r["thevenin_over_pybamm"] == r["pybamm_solve_s"] / r["thevenin_s"]
    assert r["thevenin_over_pybamm_is"].startswith("speed: pybamm_solve_s / thevenin_s")
    assert r["life_rel_diff"] <= 1e-3
    assert type(r["life_s"]) is float  # the cell of Python floats the simulator builds
