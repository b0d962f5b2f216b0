"""One scheme's place on the map of ``rt3lab study schemes``: its variants, every policy's
figures with 95 % intervals (``lab.study.intervals.demo_intervals``, the demo's bootstrap),
its Pareto front of hours against accuracy and its best policy within the accuracy bound;
and the frontier figure, drawn by ``reports.schemes_map``."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.study.schemes import best_within, policy_figures

if TYPE_CHECKING:
    from device_profiles import DeviceProfile
    from lab.study.scheme_runs import SchemeRun
    from lab.study.schemes import SchemeStudyOptions

# a variant's fields copied from bundle.json's set row, where the scheme writes them
VARIANT_FIELDS = ("sparsity", "width", "depth", "decoder", "threshold", "exits", "exit_histogram")


def width_by_level(doc: dict[str, Any]) -> dict[int, float]:
    """A width bundle's multiplier per level (kHz), from ``provenance.width.levels``'
    ``chosen`` (``w0.75``); empty for another scheme.

    >>> width_by_level({"provenance": {"width": {"levels": [
    ...     {"freq_khz": 1400000, "chosen": "w0.75"}]}}})
    {1400000: 0.75}
    """
    levels = ((doc.get("provenance") or {}).get("width") or {}).get("levels") or []
    out = {}
    for lv in levels:
        chosen = lv.get("chosen") if isinstance(lv, dict) else None
        if isinstance(chosen, str) and chosen.startswith("w"):
            try:
                out[lv["freq_khz"]] = float(chosen[1:])
            except (KeyError, ValueError):
                continue
    return out


def variant_rows(
    bundle: Path, evaluation: dict[str, Any], profile: DeviceProfile
) -> list[dict[str, Any]]:
    """Each variant of the bundle, dense first: name, level (kHz), re-scored accuracy, its
    scheme's own fields (sparsity, width, depth, threshold, exits), the host latency
    ``evaluate`` measured end to end (ms, where it times the variant) and the latency the
    host profile gives it at each board level (``latency_ms``, kHz: ms; an early-exit set's
    is its distribution's mean)."""
    doc = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
    scored = {r["name"]: r for r in evaluation.get("sets", [])}
    rows = [
        {
            "name": "dense",
            "level_khz": None,
            "accuracy": (evaluation.get("dense") or {}).get("accuracy"),
            "sparsity": 0.0,
            "host_latency_ms": None,
        }
    ]
    widths = width_by_level(doc)
    for s in doc.get("sets", []):
        r = scored.get(s.get("name"), {})
        row = {
            "name": s.get("name"),
            "level_khz": s.get("freq_khz"),
            "accuracy": r.get("accuracy", s.get("accuracy")),
        }
        if s.get("freq_khz") in widths:
            row["width"] = widths[s["freq_khz"]]
        row.update({k: s[k] for k in VARIANT_FIELDS if k in s})
        row["host_latency_ms"] = r.get("latency_measured_ms")
        rows.append(row)
    simulated = {v.name: v for v in profile.variants}
    for row in rows:
        v = simulated.get(row["name"])
        row["latency_ms"] = {} if v is None else {str(p.freq_khz): p.latency_ms for p in v.latency}
    return rows


def scheme_entry(
    run: SchemeRun,
    o: SchemeStudyOptions,
    policies_of: Callable[[Sequence[str]], list[str]],
) -> dict[str, Any]:
    """The scheme's part of the study's JSON (see the module's docstring)."""
    from device_profiles import load_profile
    from lab.profiling.samples import ProfileSamplesError, read_latency_samples
    from lab.study.intervals import demo_intervals
    from reports.pareto import pareto_front
    from simulator import variants_from_bundle

    variants = variants_from_bundle(run.bundle)
    profile = load_profile(run.profile)
    notes = []
    try:
        runs = read_latency_samples(run.profile)
    except ProfileSamplesError as exc:
        notes.append(f"latencies held fixed: {exc}")
        runs = {}
    policies = policies_of([v.name for v in variants])
    data = demo_intervals(
        profile, variants, run.evaluation, runs, policies, "periodic",
        n=o.resamples, seed=o.seed, points=o.max_accuracy_loss,
    )  # fmt: skip
    dense = (run.evaluation.get("dense") or {}).get("accuracy")
    figures = {p["policy"]: policy_figures(p, dense, o.max_accuracy_loss) for p in data["policies"]}
    points = [
        (name, f["battery_life_h"], f["mean_accuracy"])
        for name, f in figures.items()
        if f["battery_life_h"] is not None and f["mean_accuracy"] is not None
    ]
    from lab.study.scheme_deadlines import scheme_map

    deadline_map = scheme_map(
        profile, variants, run.evaluation, runs, policies, o.max_accuracy_loss, o.resamples,
        o.seed,
    )  # fmt: skip
    return {
        "bundle": str(run.bundle),
        "profile": str(run.profile),
        "reused": list(run.reused),
        "workload": data["workload"],
        "deadlines_ms": {str(k): profile.deadline_ms(k) for k in sorted(profile.levels_khz)},
        "dense_accuracy": dense,
        "variants": variant_rows(run.bundle, run.evaluation, profile),
        "policies": figures,
        "front": [p[0] for p in pareto_front(points)],
        "best_within_accuracy": best_within(figures, o.max_accuracy_loss),
        "life_within_dense": data.get("life_within_dense", []),
        "gains": data["gains"],
        "latency_resampled": data["latency_resampled"],
        "accuracy_resampled": data["accuracy_resampled"],
        "warnings": [*notes, *data["warnings"]],
        "deadline_map": deadline_map,
        "unmet_deadlines": unmet_deadlines(run.bundle),
    }


def unmet_deadlines(bundle: Path) -> list[dict[str, Any]]:
    """The levels the bundle's compress found no variant to meet, under deadlines derived
    from the model's own timing (``provenance.unmet_deadlines``: each level's fastest
    variant runs there, and the simulation counts its misses); empty for a bundle written
    before the record."""
    doc = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
    unmet = (doc.get("provenance") or {}).get("unmet_deadlines")
    return unmet if isinstance(unmet, list) else []


def frontier(doc: dict[str, Any], path: Path) -> Path:
    """The frontier figure of the study's JSON ``doc`` saved at ``path``
    (``reports.schemes_map.frontier_figure``)."""
    from reports.axes import pyplot
    from reports.schemes_map import frontier_figure

    fig = frontier_figure(doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path
