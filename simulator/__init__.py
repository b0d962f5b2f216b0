"""Simulator: a discrete-event battery and DVFS simulator that drives pattern-set switching.

No torch here, ever. ``import simulator`` is light: its names (and pydantic, pandas, simpy,
scipy) are imported on first use, so a CLI that never simulates never pays for them.

>>> import simulator
>>> simulator.POLICIES
('rt3', 'dense-max', 'dvfs-only', 'static-sparse', 'oracle')
>>> simulator.BASELINES
('dense-max', 'dvfs-only:bp', 'dvfs-only:dense', 'static-sparse', 'oracle')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from contracts.lazy import lazy_exports

if TYPE_CHECKING:
    from contracts.policies import BASELINES, POLICIES
    from contracts.workloads import workload_label
    from simulator.accuracy_bound import NoTableWithinBound
    from simulator.api import MODES, check_run, simulate
    from simulator.battery import battery_models, register_battery_model
    from simulator.bundle import variants_from_bundle
    from simulator.errors import SimulatorInputError
    from simulator.headline import LifeWithinDense, headline_workload, life_within_dense
    from simulator.policies import headline_policies, policy_names, register_policy
    from simulator.results import SimulationResult, write_run
    from simulator.uncertainty import BootstrapResult, bootstrap

# Public names and the module defining each: imported on first use (PEP 562), so that
# importing the package (as the CLI does at start-up) stays light.
_LAZY: dict[str, str] = {
    "MODES": "simulator.api",
    "simulate": "simulator.api",
    "check_run": "simulator.api",
    "battery_models": "simulator.battery",
    "register_battery_model": "simulator.battery",
    "variants_from_bundle": "simulator.bundle",
    "SimulatorInputError": "simulator.errors",
    "POLICIES": "contracts.policies",
    "BASELINES": "contracts.policies",
    "headline_policies": "simulator.policies",
    "policy_names": "simulator.policies",
    "register_policy": "simulator.policies",
    "headline_workload": "simulator.headline",
    "life_within_dense": "simulator.headline",
    "LifeWithinDense": "simulator.headline",
    "NoTableWithinBound": "simulator.accuracy_bound",
    "bootstrap": "simulator.uncertainty",
    "BootstrapResult": "simulator.uncertainty",
    "workload_label": "contracts.workloads",
    "SimulationResult": "simulator.results",
    "write_run": "simulator.results",
}

__all__ = [
    "BASELINES",
    "MODES",
    "POLICIES",
    "BootstrapResult",
    "LifeWithinDense",
    "NoTableWithinBound",
    "SimulationResult",
    "SimulatorInputError",
    "battery_models",
    "bootstrap",
    "check_run",
    "headline_policies",
    "headline_workload",
    "life_within_dense",
    "policy_names",
    "register_battery_model",
    "register_policy",
    "simulate",
    "variants_from_bundle",
    "workload_label",
    "write_run",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
