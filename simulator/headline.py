"""The headline workload: one request per top-level deadline, so hours depend on the model.

Under back-to-back inferences (``continuous``) the processor never idles: every policy at
a level draws the same power and the hours follow the power model alone. Under a periodic
workload a faster set finishes early and idles (at the profile's idle power) until the
next request, so a sparser model buys hours as well as inferences.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from contracts.workloads import PERIODIC
from simulator.errors import SimulatorInputError

if TYPE_CHECKING:
    from device_profiles.schema import DeviceProfile


def headline_workload(profile: DeviceProfile, spec: str = PERIODIC) -> str:
    """The workload spec to simulate: ``periodic`` alone means one request per deadline at
    the profile's highest level (``periodic:HZ`` with HZ = 1 / that deadline); any other
    spec is returned unchanged.

    >>> from device_profiles import load_profile
    >>> headline_workload(load_profile("rt3-paper"))
    'periodic:8.695652173913043'
    >>> headline_workload(load_profile("rt3-paper"), "continuous")
    'continuous'
    """
    if spec != PERIODIC:
        return spec
    top = max(profile.levels_khz)
    deadline_ms = profile.deadline_ms(top)
    if deadline_ms is None:
        raise SimulatorInputError(
            f"workload periodic: profile {profile.name!r} has no timing constraint at its top "
            f"level {top} kHz; give the rate as periodic:HZ"
        )
    return f"periodic:{1e3 / deadline_ms!r}"
