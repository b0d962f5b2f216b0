"""The device as the simulator sees it: levels, power, deadlines, variants and switch costs.

A variant's latency at each level comes from the profile's table when it has one (the table
must then cover every level the governor uses), else from the profile's op-count latency
model applied to the variant's non-zero operation counts (marked ``modelled``).

An early-exit variant (``simulator.exits``) has a latency distribution at a level: the
profile's measured ``distribution`` there when it gives one, else its exits' host
latencies (``Variant.early_exit``) scaled so their histogram-weighted mean is the level's
latency (marked ``modelled``). Its ``latency`` at a level is the distribution's mean,
which the policies rank and check deadlines by.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from simulator.errors import SimulatorInputError
from simulator.exits import ExitDistribution

if TYPE_CHECKING:
    from device_profiles.schema import DeviceProfile, EarlyExit, LevelLatency, Variant

_RANK = {"measured": 0, "published": 1, "modelled": 2}


@dataclass(frozen=True)
class VariantSpec:
    """A variant ready to simulate: latency (s) per level and where it came from;
    ``exits``: an early-exit variant's distribution at each level where it has more than
    one point (its ``latency_s`` there is the distribution's mean)."""

    name: str
    accuracy: float | None
    sparsity: float | None
    latency_s: dict[int, float]
    latency_source: str
    exits: dict[int, ExitDistribution] = field(default_factory=dict)

    def latency(self, khz: int) -> float:
        """Latency (s) at ``khz`` (an early-exit variant's mean)."""
        return self.latency_s[khz]

    def drawn(self, khz: int, point: int | None) -> float:
        """Latency (s) at ``khz`` of an inference whose exit draw is ``point`` (None, or a
        level with one point: the plain latency)."""
        dist = self.exits.get(khz)
        if dist is None or point is None:
            return self.latency_s[khz]
        return dist.latency_at(point)

    def fastest(self, khz: int) -> float:
        """The shortest latency (s) an inference can take at ``khz``."""
        dist = self.exits.get(khz)
        return self.latency_s[khz] if dist is None else min(dist.latency_s)


@dataclass(frozen=True)
class Device:
    """Power, deadlines, variants and costs at the levels a governor can use."""

    profile: str
    levels: tuple[int, ...]
    busy_w: dict[int, float]
    idle_w: dict[int, float]
    constraint_s: dict[int, float | None]
    variants: tuple[VariantSpec, ...]
    transition_s: float
    switch_s: float
    switch_energy_j: float | None
    energy_j: float
    provenance: dict[str, str]

    def variant(self, name: str) -> VariantSpec:
        """The variant called ``name``."""
        for v in self.variants:
            if v.name == name:
                return v
        raise SimulatorInputError(
            f"variant: unknown {name!r}, expected one of {[v.name for v in self.variants]}"
        )


def _kind(profile: DeviceProfile, ref: object) -> str:
    return profile.resolve(ref).kind if ref is not None else "modelled"


def _merge(profile: DeviceProfile, extra: list[Variant]) -> list[tuple[Variant, Variant | None]]:
    """(variant, profile variant of the same name) pairs; extras override by name."""
    own = {v.name: v for v in profile.variants}
    out = [(v, None) for v in profile.variants if v.name not in {e.name for e in extra}]
    out += [(e, own.get(e.name)) for e in extra]
    return out


def _shape(early_exit: EarlyExit | None) -> ExitDistribution | None:
    """The host's exit latencies as a distribution (None: not early exit, or one exit)."""
    if early_exit is None:
        return None
    points = [
        (ms / 1e3, h)
        for ms, h in zip(early_exit.latency_ms, early_exit.histogram, strict=True)
        if h > 0
    ]
    return ExitDistribution.of(points) if len(points) > 1 else None


def _measured(row: LevelLatency) -> ExitDistribution | None:
    points = row.distribution or []
    return (
        ExitDistribution.of([(p.latency_ms / 1e3, p.share) for p in points])
        if len(points) > 1
        else None
    )


def _latencies(
    profile: DeviceProfile, v: Variant, table_of: Variant, levels: list[int], own: Variant | None
) -> tuple[dict[int, float], str, dict[int, ExitDistribution]]:
    ee = v.early_exit or (own.early_exit if own is not None else None)
    shape = _shape(ee)
    exits: dict[int, ExitDistribution] = {}
    if table_of.latency:
        have = {row.freq_khz: row for row in table_of.latency}
        missing = [k for k in levels if k not in have]
        if missing:
            raise SimulatorInputError(
                f"profile {profile.name!r}: variants[{table_of.name!r}].latency has no entry "
                f"for level(s) {missing} kHz; it must cover every level the governor uses "
                f"{levels}"
            )
        kinds = {_kind(profile, have[k].provenance) for k in levels}
        lat = {k: have[k].latency_ms / 1e3 for k in levels}
        for k in levels:
            measured = _measured(have[k])
            if measured is not None:
                exits[k] = measured
            elif have[k].distribution is None and shape is not None:
                exits[k] = shape.scaled(lat[k])
                kinds.add("modelled")
        source = max(kinds, key=lambda s: _RANK[s])
        return lat, source, exits
    model = profile.latency_model
    if model is None or v.nonzero_mults is None or v.nonzero_adds is None:
        raise SimulatorInputError(
            f"profile {profile.name!r}: variant {v.name!r} has no latency table and no "
            "op counts with a latency_model to model one"
        )
    lat = {k: model.latency_ms(v.nonzero_mults, v.nonzero_adds, k) / 1e3 for k in levels}
    if shape is not None:
        exits = {k: shape.scaled(s) for k, s in lat.items() if s > 0}
    return lat, "modelled", exits


def build_device(
    profile: DeviceProfile, levels: list[int], extra_variants: list[Variant] | None = None
) -> Device:
    """The device at ``levels`` (those the governor uses) with the profile's and extra variants."""
    pairs = _merge(profile, list(extra_variants or []))
    if not pairs:
        raise SimulatorInputError(f"profile {profile.name!r}: no variants to simulate")
    specs = []
    for v, own in pairs:
        table_of = own if (own is not None and own.latency and not v.latency) else v
        lat, source, exits = _latencies(profile, v, table_of, levels, own)
        for k, seconds in lat.items():
            if not seconds > 0:
                raise SimulatorInputError(
                    f"variant {v.name!r}: latency at {k} kHz is {seconds * 1e3} ms; "
                    "expected > 0 (are its operation counts zero?)"
                )
        specs.append(VariantSpec(v.name, v.accuracy, v.sparsity, lat, source, exits))
    busy, idle = {}, {}
    for k in levels:
        busy[k], idle[k] = profile.power_at(k)
    entry = next(p for p in profile.power if p.cluster == profile.inference_cluster)
    power_ref = entry.model.provenance if entry.model else entry.levels[0].provenance
    cost = profile.switch_cost
    trans_us = profile.cluster(profile.inference_cluster).transition_latency_us or 0.0
    lat_source = max((s.latency_source for s in specs), key=lambda s: _RANK[s])
    acc_kinds = {_kind(profile, v.provenance) for v, _ in pairs if v.accuracy is not None}
    acc_source = max(acc_kinds, key=lambda s: _RANK[s]) if acc_kinds else "none"
    return Device(
        profile=profile.name,
        levels=tuple(levels),
        busy_w=busy,
        idle_w=idle,
        constraint_s={
            k: (None if profile.deadline_ms(k) is None else profile.deadline_ms(k) / 1e3)
            for k in levels
        },
        variants=tuple(specs),
        transition_s=trans_us / 1e6,
        switch_s=0.0 if cost is None else cost.time_ms / 1e3,
        switch_energy_j=None if cost is None else cost.energy_j,
        energy_j=profile.battery.energy_j,
        provenance={
            "latency": lat_source,
            "power": _kind(profile, power_ref),
            "battery": _kind(profile, profile.battery.provenance),
            "switch_cost": "none" if cost is None else _kind(profile, cost.provenance),
            "accuracy": acc_source,
        },
    )
