"""Simulator: a discrete-event battery and DVFS simulator that drives pattern-set switching.

No torch here, ever. ``import simulator`` is light: pandas, simpy and scipy are imported
only when a simulation runs.

>>> import simulator
>>> simulator.POLICIES
('rt3', 'dense-max', 'dvfs-only', 'static-sparse', 'oracle')
>>> simulator.BASELINES
('dense-max', 'dvfs-only:bp', 'dvfs-only:dense', 'static-sparse', 'oracle')
"""

from simulator.api import MODES, simulate
from simulator.battery import BATTERY_MODELS
from simulator.bundle import variants_from_bundle
from simulator.errors import SimulatorInputError
from simulator.headline import headline_workload, workload_label
from simulator.policies import BASELINES, POLICIES, headline_policies
from simulator.results import SimulationResult, write_run

__all__ = [
    "BASELINES",
    "BATTERY_MODELS",
    "MODES",
    "POLICIES",
    "SimulationResult",
    "SimulatorInputError",
    "headline_policies",
    "headline_workload",
    "simulate",
    "variants_from_bundle",
    "workload_label",
    "write_run",
]
