"""The headline: its workload, and battery life at (nearly) dense accuracy.

The workload: one request per top-level deadline, so hours depend on the model.

Under back-to-back inferences (``continuous``) the processor never idles: every policy at
a level draws the same power and the hours follow the power model alone. Under a periodic
workload a faster set finishes early and idles (at the profile's idle power) until the
next request, so a sparser model buys hours as well as inferences.

Equal accuracy: ``life_within_dense`` gives each policy's hours with its longest-lasting
table whose mean accuracy stays within 1 point (or another bound) of the unpruned
model's, so that rt3 and the baselines are compared at the same accuracy rather than
each at its own (see ``simulator.accuracy_bound``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts.workloads import PERIODIC
from simulator.errors import SimulatorInputError

if TYPE_CHECKING:
    from device_profiles.schema import DeviceProfile, Variant


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


@dataclass(frozen=True)
class LifeWithinDense:
    """One policy's battery life at (nearly) dense accuracy: its longest-lasting table
    whose mean accuracy stays within ``max_accuracy_loss`` points of the unpruned model's
    (``simulate(max_accuracy_loss=...)``). ``battery_life_h`` and the other figures are
    None where the policy has no such table; ``reason`` says which table and why, or why
    none; ``accuracy_loss_points`` = (dense accuracy - mean accuracy) x 100."""

    policy: str
    max_accuracy_loss: float
    dense_accuracy: float
    battery_life_h: float | None
    on_time_inferences: int | None
    mean_accuracy: float | None
    accuracy_loss_points: float | None
    table: dict[int, str] | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (``json.dumps`` takes it)."""
        return asdict(self)


def life_within_dense(
    profile: DeviceProfile | str | Path,
    variants: list[Variant] | None = None,
    points: float = 1.0,
    *,
    policies: Sequence[str] | None = None,
    workload: str = PERIODIC,
    **options: Any,
) -> list[LifeWithinDense]:
    """Battery life within ``points`` (default 1) accuracy points of dense, per policy:
    rt3 and every baseline the variants allow (``headline_policies``) unless
    ``policies`` are given, under the headline workload (``periodic``) unless another is
    given; ``options`` go to ``simulate`` (battery_model, capacity_mah, mode, ...).
    Needs an accuracy for every variant, the unpruned model's too.

    >>> from device_profiles import load_profile
    >>> from device_profiles.schema import Published, Variant
    >>> p = load_profile("rt3-paper")
    >>> scored = [v.model_copy(update={"accuracy": a}) for v, a in zip(p.variants, (0.31, 0.305))]
    >>> pp = Variant(name="pp", accuracy=0.302, sparsity=0.9, nonzero_mults=6e6,
    ...              nonzero_adds=6e6, provenance=Published(kind="published", source="x"))
    >>> rows = life_within_dense(p, [*scored, pp], capacity_mah=1)
    >>> [(r.policy, r.table and sorted(set(r.table.values()))) for r in rows][:3]
    [('rt3', ['pp']), ('dense-max', ['dense']), ('dvfs-only:bp', ['bp'])]
    >>> within = life_within_dense(p, [*scored, pp], 0.5, capacity_mah=1, policies=["rt3"])[0]
    >>> within.battery_life_h is None, within.reason.startswith("rt3: no table within 0.5")
    (True, True)
    """
    from simulator.accuracy_bound import NoTableWithinBound, accuracy_floor, check_accuracy_loss
    from simulator.api import _profile, discharge_for, simulate
    from simulator.policies import headline_policies

    points = check_accuracy_loss(points)
    prof = _profile(profile)
    device = discharge_for(prof, "profile", variants, None, None).device
    dense = accuracy_floor(device, points)[0]
    chosen = headline_policies([v.name for v in device.variants]) if policies is None else policies
    rows = []
    for policy in chosen:
        try:
            r = simulate(
                prof,
                policy=policy,
                workload=headline_workload(prof, workload),
                variants=variants,
                max_accuracy_loss=points,
                **options,
            )
        except NoTableWithinBound as none:
            rows.append(LifeWithinDense(policy, points, dense, *[None] * 5, none.reason))
            continue
        loss = None if r.mean_accuracy is None else (dense - r.mean_accuracy) * 100.0
        rows.append(
            LifeWithinDense(
                policy,
                points,
                dense,
                r.battery_life_h,
                r.on_time_inferences,
                r.mean_accuracy,
                loss,
                dict(r.variant_at_level),
                r.table_choice or "",
            )
        )
    return rows
