"""One point of a deadline study, simulated: every policy on a host-calibrated profile with
the point's deadlines, and the 95 % intervals of ``simulator.bootstrap``. Torch-free (a
dask task on any worker).

The profile is built the way ``rt3lab profile --power none`` builds one in host mode: the
bundle's profile (``provenance.profile``) keeps its power, battery, governor and switch
cost; each variant's latency at every level is its median host time projected by
``a + b/f`` with ``a = 0``; the timing constraints are the point's (RT3's ratios, the top
level's the point's deadline). The variants are the dense model, BP (its mask on the
point's fine-tuned backbone) and the point's sets, with the accuracies measured on the test
split. The workload is the headline's: one request per top-level deadline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lab.study.grid import level_deadlines, timing_constraints
from lab.study.timing import at_level, median_ms

if TYPE_CHECKING:
    from device_profiles import DeviceProfile


@dataclass(frozen=True)
class SimVariant:
    """A variant of a point's profile: its figures and every timed run (host ms)."""

    name: str
    accuracy: float
    sparsity: float
    nonzero_mults: int
    runs_ms: tuple[float, ...]


@dataclass(frozen=True)
class SimSpec:
    """What a worker needs to simulate one point."""

    index: int
    profile: dict[str, Any]  # the bundle's profile (model_dump), sent whole to any worker
    top_ms: float
    host_khz: int
    host: str
    variants: tuple[SimVariant, ...]
    sequences: dict[str, list[float]] = field(default_factory=dict)
    resamples: int = 200
    seed: int = 0


def point_profile(spec: SimSpec) -> DeviceProfile:
    """The point's host-calibrated profile (see the module's docstring)."""
    import copy
    from datetime import UTC, datetime

    from device_profiles.loader import profile_from_dict
    from lab import __version__

    base = profile_from_dict(spec.profile, source="the bundle's profile")
    data = copy.deepcopy(spec.profile)
    how = (
        f"median of the runs timed end to end on {spec.host} at {spec.host_khz} kHz by "
        "rt3lab study deadlines, projected by a + b/f with a = 0"
    )
    measured = {
        "kind": "measured",
        "meter": "accuracy on the test split, as rt3lab evaluate scores it",
        "date": datetime.now(UTC).date().isoformat(),
        "tool": f"rt3lab {__version__} study deadlines",
        "board": spec.host,
    }
    data["variants"] = [
        {
            "name": v.name,
            "provenance": measured,
            "accuracy": v.accuracy,
            "sparsity": v.sparsity,
            "nonzero_mults": v.nonzero_mults,
            "nonzero_adds": v.nonzero_mults,
            "latency": [
                {
                    "freq_khz": k,
                    "latency_ms": at_level(median_ms(list(v.runs_ms)), spec.host_khz, k),
                    "provenance": {"kind": "modelled", "formula": "b / f", "inputs": how},
                }
                for k in base.levels_khz
            ],
        }
        for v in spec.variants
    ]
    deadlines = level_deadlines(spec.top_ms, timing_constraints(base))
    data["workload"]["timing_constraints"] = [
        {"freq_khz": k, "deadline_ms": ms} for k, ms in sorted(deadlines.items())
    ]
    data["workload"]["provenance"] = {
        "kind": "modelled",
        "formula": f"{base.name}'s timing constraints x one factor, the top level's "
        f"{spec.top_ms:.6g} ms (a point of rt3lab study deadlines)",
    }
    data["name"] = f"{base.name}-study-{spec.index}"
    return profile_from_dict(data, source=f"deadline study point {spec.index}")


def point_samples(spec: SimSpec, levels_khz: list[int]) -> dict[str, dict[int, list[float]]]:
    """Every timed run of each variant projected to each level (ms), as the point's
    bootstrap resamples them."""
    return {
        v.name: {k: [at_level(ms, spec.host_khz, k) for ms in v.runs_ms] for k in levels_khz}
        for v in spec.variants
    }


def _policy_row(result: Any, spread: Any) -> dict[str, Any]:
    """A policy's figures (the simulation) and their intervals (the bootstrap)."""
    return {
        "battery_life_h": result.battery_life_h,
        "battery_life_h_ci95": spread.battery_life_h_ci95,
        "on_time_inferences": result.on_time_inferences,
        "on_time_inferences_ci95": spread.on_time_inferences_ci95,
        "inferences": result.inferences,
        "missed_inferences": result.missed_inferences,
        "miss_rate": result.miss_rate,
        "mean_accuracy": result.mean_accuracy,
        "mean_accuracy_ci95": spread.mean_accuracy_ci95,
        "table": {str(k): v for k, v in sorted(result.variant_at_level.items(), reverse=True)},
        "variant_share": {str(k): v for k, v in spread.variant_share.items()},
    }


def _ratio(r: Any) -> dict[str, Any]:
    return {"point": r.point, "ci95": r.ci95, "straddles_one": r.straddles_one,
            "defined": r.defined}  # fmt: skip


def simulate_point(spec: SimSpec) -> dict[str, Any]:
    """Every policy (rt3 and the baselines the variants allow) simulated on the point's
    profile, with 95 % intervals over the timed runs (and the test sequences, where
    given); rt3's gains over each baseline."""
    from simulator import bootstrap, headline_policies, headline_workload, simulate

    profile = point_profile(spec)
    names = [v.name for v in spec.variants]
    policies = headline_policies(names)
    workload = headline_workload(profile)
    results = {p: simulate(profile, policy=p, workload=workload) for p in policies}
    samples = point_samples(spec, profile.levels_khz)
    b = bootstrap(profile, None, samples, spec.sequences or None, policies=policies,
                  workload=workload, resamples=spec.resamples, seed=spec.seed)  # fmt: skip
    return {
        "workload": workload,
        "policies": {p: _policy_row(results[p], b.policy(p)) for p in policies},
        "gains": {
            g.baseline: {"hours": _ratio(g.hours), "on_time": _ratio(g.on_time)} for g in b.gains
        },
        "resampled": {"latency": b.latency_resampled, "accuracy": b.accuracy_resampled},
        "warnings": sorted({w for r in results.values() for w in r.warnings} | set(b.warnings)),
    }
