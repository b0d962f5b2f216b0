"""Switching policies: which variant (pattern set) runs at each frequency level.

Every policy here is a table level -> variant fixed before the run, plus the governor it
runs under:

- ``rt3``: at each level, the most accurate of the reconfigurable model's variants (every
  variant but the unpruned one: RT3 switches among pattern sets of one BP backbone and
  cannot run the separate dense model) whose latency meets the deadline there; when none
  does, the fastest, with its misses counted and a warning.
- ``dense-max``: the unpruned model (the variant named ``dense``, else the one with
  sparsity 0) at the highest level, always: no DVFS (the governor is fixed at the top
  level) and no pruning.
- ``dvfs-only``: one fixed variant, the most accurate (``dvfs-only:NAME`` picks another),
  under the profile's governor. ``dvfs-only:bp`` (the BP model following the governor) is
  RT3's own comparison; ``dvfs-only:dense`` the unpruned model following the governor.
- ``static-sparse``: the sparsest variant throughout, under the profile's governor.
- ``oracle``: see ``simulator.oracle``: with perfect knowledge of the whole discharge, the
  per-level choice that maximises accuracy-weighted completed inferences.

"Most accurate" ranks by accuracy when every variant has one; otherwise by sparsity (least
sparse = most accurate) and the result's ``mean_accuracy`` is None.
The deadline at a level is the profile's timing constraint there for continuous, Poisson
and trace workloads; for a periodic workload it is the period, or the profile's constraint
when that is smaller.
"""

from __future__ import annotations

from simulator.device import Device, VariantSpec
from simulator.errors import SimulatorInputError

POLICIES: tuple[str, ...] = ("rt3", "dense-max", "dvfs-only", "static-sparse", "oracle")
# The baselines every headline compares rt3 against, by these names everywhere (tables,
# plots, JSON); defined in simulator/README.md.
BASELINES: tuple[str, ...] = (
    "dense-max",
    "dvfs-only:bp",
    "dvfs-only:dense",
    "static-sparse",
    "oracle",
)


def headline_policies(variant_names: list[str] | tuple[str, ...]) -> list[str]:
    """``rt3`` and the baselines this set of variants can run (``dvfs-only:NAME`` needs NAME).

    >>> headline_policies(["dense", "bp", "pp-1"])
    ['rt3', 'dense-max', 'dvfs-only:bp', 'dvfs-only:dense', 'static-sparse', 'oracle']
    >>> headline_policies(["dense", "a"])
    ['rt3', 'dense-max', 'dvfs-only:dense', 'static-sparse', 'oracle']
    """
    names = set(variant_names)
    out = ["rt3"]
    for pol in BASELINES:
        arg = pol.partition(":")[2]
        if not arg or arg in names:
            out.append(pol)
    return out


def unpruned(device: Device) -> VariantSpec:
    """The unpruned model: the variant named ``dense``, else the one with sparsity 0."""
    for v in device.variants:
        if v.name == "dense":
            return v
    for v in device.variants:
        if v.sparsity == 0.0:
            return v
    raise SimulatorInputError(
        "policy dense-max: needs the unpruned model (a variant named 'dense' or with "
        f"sparsity 0); variants are {[v.name for v in device.variants]}"
    )


def deadline_s(device: Device, khz: int, workload_deadline_s: float | None) -> float | None:
    """The deadline at ``khz``: the smaller of the profile's constraint and the workload's."""
    options = [d for d in (device.constraint_s.get(khz), workload_deadline_s) if d is not None]
    return min(options) if options else None


def by_accuracy(variants: tuple[VariantSpec, ...]) -> list[VariantSpec]:
    """Variants from most to least accurate (accuracy, else least sparse first)."""
    if all(v.accuracy is not None for v in variants):
        return sorted(variants, key=lambda v: -v.accuracy)
    missing = [v.name for v in variants if v.sparsity is None]
    if missing:
        raise SimulatorInputError(
            f"variants {missing}: need an accuracy or a sparsity to be ranked"
        )
    return sorted(variants, key=lambda v: v.sparsity)


def reconfigurable(device: Device) -> tuple[VariantSpec, ...]:
    """The variants RT3 can switch among: all but the unpruned model (all of them when
    there is nothing else)."""
    try:
        dense = unpruned(device)
    except SimulatorInputError:
        return device.variants
    sets = tuple(v for v in device.variants if v is not dense)
    return sets or device.variants


def rt3_choice(
    device: Device, khz: int, workload_deadline_s: float | None
) -> tuple[VariantSpec, bool]:
    """(the variant RT3 runs at ``khz``, whether it meets the deadline)."""
    limit = deadline_s(device, khz, workload_deadline_s)
    options = reconfigurable(device)
    for v in by_accuracy(options):
        if limit is None or v.latency(khz) <= limit:
            return v, True
    return min(options, key=lambda v: v.latency(khz)), False


def plan_table(
    policy: str, device: Device, levels: list[int], workload_deadline_s: float | None
) -> dict[int, str]:
    """The level -> variant table of a (non-oracle) policy."""
    base, _, arg = policy.partition(":")
    ranked = by_accuracy(device.variants)
    if base == "rt3" and not arg:
        return {k: rt3_choice(device, k, workload_deadline_s)[0].name for k in levels}
    if base == "dense-max" and not arg:
        return {k: unpruned(device).name for k in levels}
    if base == "dvfs-only":
        name = device.variant(arg).name if arg else ranked[0].name
        return {k: name for k in levels}
    if base == "static-sparse" and not arg:
        return {k: ranked[-1].name for k in levels}
    raise SimulatorInputError(
        f"policy: unknown {policy!r}, expected one of {', '.join(POLICIES)} (or dvfs-only:NAME)"
    )


def deadline_warnings(
    device: Device, table: dict[int, str], workload_deadline_s: float | None
) -> list[str]:
    """One warning per level whose chosen variant misses the deadline."""
    out = []
    for khz, name in table.items():
        limit = deadline_s(device, khz, workload_deadline_s)
        lat = device.variant(name).latency(khz)
        if limit is not None and lat > limit:
            meets = [v.name for v in device.variants if v.latency(khz) <= limit]
            what = "no variant meets it" if not meets else f"variants that meet it: {meets}"
            out.append(
                f"{khz} kHz: {name!r} takes {lat * 1e3:.3f} ms, over the "
                f"{limit * 1e3:.3f} ms deadline ({what}); every inference there misses"
            )
    return out
