"""How to add a battery model and a policy: each toy part is defined and registered here,
outside the simulator, and runs through the real CLI, a sweep's validation and a report
without an edit to simulator/, reports/ or device_profiles/."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from cli_runner import rt3lab

from device_profiles import load_profile, profile_from_dict
from simulator import SimulatorInputError, register_battery_model, register_policy, simulate
from simulator.battery import BatteryModel, Load, unregister_battery_model
from simulator.policies import PolicyInputs, by_accuracy, unregister_policy
from simulator.sweep import Cell, SweepConfigError, load_sweep_config, run_cell


class LeakyBattery(BatteryModel):
    """A toy model: energy counting, but only ``efficiency`` of the nominal energy ever
    reaches the load."""

    name = "toy"

    def __init__(self, energy_j: float, volts: float, initial_soc: float, efficiency: float):
        self.full_j = energy_j * efficiency
        self.left_j = self.full_j * initial_soc
        self.volts = volts

    def soc(self) -> float:
        return self.left_j / self.full_j

    def voltage(self, power_w: float) -> float:
        return self.volts

    def snapshot(self) -> tuple[float, ...]:
        return (self.left_j,)

    def restore(self, state: tuple[float, ...]) -> None:
        (self.left_j,) = state

    def advance_until(
        self, load: Load, t_max: float, soc_floor: float | None = None
    ) -> tuple[float, str | None]:
        floor_j = 0.0 if soc_floor is None else soc_floor * self.full_j
        rate = load.mean_w
        t_hit = math.inf if rate <= 0 else max(0.0, (self.left_j - floor_j) / rate)
        if t_hit > t_max:
            self.left_j -= rate * t_max
            return t_max, None
        self.left_j = floor_j
        return t_hit, "empty" if soc_floor is None or floor_j == 0.0 else "soc"


def leaky(profile, capacity_mah: float, initial_soc: float) -> LeakyBattery:
    """The factory: reads only what every profile has (capacity, nominal voltage)."""
    volts = profile.battery.nominal_voltage_v
    return LeakyBattery(capacity_mah * 3.6 * volts, volts, initial_soc, efficiency=0.5)


@pytest.fixture
def toy_battery():
    register_battery_model("toy", leaky)
    yield "toy"
    unregister_battery_model("toy")


def test_a_toy_battery_model_runs_through_simulate_on_the_cli(toy_battery):
    args = ["simulate", "--profile", "rt3-paper", "--capacity-mah", "0.5", "--governor", "max",
            "--json"]  # fmt: skip
    toy = rt3lab(*args, "--battery-model", "toy")
    assert toy.code == 0, toy.stderr
    ideal = json.loads(rt3lab(*args, "--battery-model", "ideal").stdout)
    got = json.loads(toy.stdout)
    assert got["battery_model"] == "toy" and got["inferences"] > 0
    # half the energy reaches the load: at one fixed level, half the life
    assert got["battery_life_s"] == pytest.approx(ideal["battery_life_s"] / 2, rel=0.02)


def test_a_profile_may_name_a_registered_model_as_its_own(toy_battery):
    d = load_profile("rt3-paper").model_dump(mode="json", exclude_none=True)
    d["battery"]["model"] = "toy"  # no parameter section: the toy needs none
    r = simulate(profile_from_dict(d), capacity_mah=0.5)
    assert r.battery_model == "toy" and r.inferences > 0


def test_a_profile_naming_no_registered_model_is_refused_when_simulated():
    d = load_profile("rt3-paper").model_dump(mode="json", exclude_none=True)
    d["battery"]["model"] = "tevenin"  # the schema cannot know what the simulator registers
    with pytest.raises(
        SimulatorInputError, match=r"'rt3-paper': battery\.model: unknown 'tevenin'"
    ):
        simulate(profile_from_dict(d), capacity_mah=0.5)


def test_a_toy_battery_model_passes_a_sweep_files_validation_and_runs_a_cell(toy_battery, tmp_path):
    cfg_path = tmp_path / "sweep.yaml"
    axes = {"profiles": ["rt3-paper"], "policies": ["rt3"], "capacities_mah": [0.5]}
    cfg_path.write_text(yaml.safe_dump({**axes, "battery_models": ["toy", "kibam"]}))
    cfg = load_sweep_config(cfg_path)
    assert cfg.battery_models == ["toy", "kibam"]
    row = run_cell(Cell("rt3-paper", "toy", 0.5, "continuous", "rt3", 0, "fast"))
    assert row["error"] is None and row["inferences"] > 0


def test_an_unregistered_battery_model_is_refused_by_name(tmp_path):
    cfg_path = tmp_path / "sweep.yaml"
    cfg_path.write_text(yaml.safe_dump({"profiles": ["rt3-paper"], "policies": ["rt3"],
                                        "battery_models": ["toy"]}))  # fmt: skip
    with pytest.raises(SweepConfigError, match=r"battery_models\[0\]: unknown battery model 'toy'"):
        load_sweep_config(cfg_path)
    out = rt3lab("simulate", "--battery-model", "toy", "--capacity-mah", "0.5")
    assert out.code == 2 and "battery model: unknown 'toy'" in out.stderr


def fastest_at_the_bottom(inp: PolicyInputs) -> dict[int, str]:
    """A toy policy: the sparsest variant at the lowest level, the most accurate above."""
    ranked = by_accuracy(inp.device.variants)
    low = min(inp.levels)
    return {k: (ranked[-1] if k == low else ranked[0]).name for k in inp.levels}


@pytest.fixture
def toy_policy():
    register_policy("toy", fastest_at_the_bottom)
    yield "toy"
    unregister_policy("toy")


def test_a_toy_policy_is_compared_and_reported(toy_policy, tmp_path):
    run, report = tmp_path / "run", tmp_path / "report"
    sim = rt3lab("simulate", "--profile", "rt3-paper", "--workload", "periodic:5",
                 "--capacity-mah", "0.3", "--compare", "--out", str(run), "--json")  # fmt: skip
    assert sim.code == 0, sim.stderr
    policies = [r["policy"] for r in json.loads(sim.stdout)]
    assert policies[0] == "rt3" and policies[-1] == "toy"
    toy = json.loads((run / "results.json").read_text())[-1]
    assert set(toy["variant_at_level"].values()) == {"dense", "bp"}
    out = rt3lab("report", str(run), "--out", str(report))
    assert out.code == 0, out.stderr
    md = (report / "report.md").read_text(encoding="utf-8")
    assert any(line.startswith("| toy |") for line in md.splitlines()), md
    assert "against toy:" in md  # the verdict compares rt3 against it, after the baselines
    assert md.index("against oracle:") < md.index("against toy:")
