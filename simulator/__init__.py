"""Simulator: a discrete-event battery and DVFS simulator that drives pattern-set switching.

No torch here, ever. ``import simulator`` is light: pandas, simpy and scipy are imported
only when a simulation runs.

>>> import simulator
>>> simulator.POLICIES
('rt3', 'dense-max', 'dvfs-only', 'static-sparse', 'oracle')
"""

from simulator.api import MODES, check_run, simulate
from simulator.battery import BATTERY_MODELS
from simulator.bundle import variants_from_bundle
from simulator.errors import SimulatorInputError
from simulator.policies import POLICIES
from simulator.results import SimulationResult, write_run

__all__ = [
    "BATTERY_MODELS",
    "MODES",
    "POLICIES",
    "SimulationResult",
    "SimulatorInputError",
    "check_run",
    "simulate",
    "variants_from_bundle",
    "write_run",
]
