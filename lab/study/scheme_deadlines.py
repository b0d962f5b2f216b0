"""A small deadline map for ``rt3lab study schemes``: every scheme's policies at a few
top-level deadlines, on the variants as compressed.

The points (`map_points`): the top-level deadline at ``FACTORS`` of each scheme's own
``dense-top`` deadline (the dense model at full clock, from its profile), then one where
the dense model meets every level (``grid.loose_top_ms``); RT3's ratios between levels are
kept (``grid.level_deadlines``) and the headline workload sends one request per top-level
deadline, as ``study deadlines`` does. At each point every policy is simulated with 95 %
intervals (the same bootstrap over the same timed runs and test sequences as the study's
headline) and the scheme's best within the accuracy bound is found again.

Unlike ``study deadlines`` nothing is compressed again: each scheme's variants stay the
ones chosen for its ``dense-top`` deadlines, so a point asks how that bundle's policies
fare under a tighter or looser application deadline, not what a bundle made for that
deadline would do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lab.study.grid import level_deadlines, loose_top_ms, timing_constraints
from lab.study.schemes import best_within, policy_figures

if TYPE_CHECKING:
    from device_profiles import DeviceProfile, Variant

FACTORS = (0.5, 0.75, 1.0)
NOTE = (
    "each scheme's variants as compressed (for its dense-top deadlines), simulated at other "
    "top-level deadlines: FACTOR x dense-top, then the dense model meeting every level; "
    "rt3lab study deadlines re-runs RT3's search per deadline instead"
)


def map_points(dense_top_ms: float, constraints: Mapping[int, float]) -> list[dict[str, Any]]:
    """The points' top-level deadlines (ms) and what each is.

    >>> rt3 = {1400000: 115.0, 1000000: 104.0, 800000: 94.0}
    >>> for p in map_points(1.0, rt3):
    ...     print(round(p["top_deadline_ms"], 3), p["anchor"])
    0.5 0.5 x dense-top
    0.75 0.75 x dense-top
    1.0 dense-top
    3.211 dense at every level
    """
    points = [
        {"top_deadline_ms": dense_top_ms * f, "anchor": f"{f:g} x dense-top"} for f in FACTORS
    ]
    points[FACTORS.index(1.0)]["anchor"] = "dense-top"
    loose = loose_top_ms(dense_top_ms, constraints)
    return [*points, {"top_deadline_ms": loose, "anchor": "dense at every level"}]


def at_deadline(profile: DeviceProfile, top_ms: float) -> DeviceProfile:
    """``profile`` with every level's deadline scaled so the top level's is ``top_ms``."""
    wl = profile.workload
    assert wl is not None and wl.timing_constraints  # a host profile always has them
    kind = type(wl.timing_constraints[0])
    scaled = level_deadlines(top_ms, timing_constraints(profile))
    constraints = [kind(freq_khz=k, deadline_ms=ms) for k, ms in sorted(scaled.items())]
    return profile.model_copy(
        update={"workload": wl.model_copy(update={"timing_constraints": constraints})}
    )


def scheme_map(
    profile: DeviceProfile,
    variants: list[Variant],
    evaluation: dict[str, Any],
    samples: Mapping[str, Mapping[int, Sequence[float]]],
    policies: Sequence[str],
    bound: float,
    resamples: int,
    seed: int,
) -> list[dict[str, Any]]:
    """One scheme's points (see the module's docstring): each point's deadlines, every
    policy's figures with intervals and the best within ``bound`` points of dense."""
    from lab.study.intervals import demo_intervals

    constraints = timing_constraints(profile)
    dense = (evaluation.get("dense") or {}).get("accuracy")
    out = []
    for point in map_points(constraints[max(constraints)], constraints):
        moved = at_deadline(profile, point["top_deadline_ms"])
        data = demo_intervals(
            moved, variants, evaluation, samples, policies, "periodic", n=resamples, seed=seed,
            points=bound,
        )  # fmt: skip
        figures = {p["policy"]: policy_figures(p, dense, bound) for p in data["policies"]}
        out.append(
            {
                **point,
                "deadlines_ms": {str(k): moved.deadline_ms(k) for k in sorted(constraints)},
                "workload": data["workload"],
                "policies": figures,
                "best_within_accuracy": best_within(figures, bound),
            }
        )
    return out


def map_sentences(entries: Mapping[str, Mapping[str, Any]], bound: float) -> list[str]:
    """Per point of the map, which scheme's best within ``bound`` lasts longest, and
    whether its interval overlaps another's (``schemes.compare_schemes``).

    >>> best = {"policy": "rt3", "battery_life_h": 5.0, "ci95": [4.0, 6.0]}
    >>> pts = [{"anchor": "dense-top", "best_within_accuracy": best}]
    >>> map_sentences({"rt3": {"deadline_map": pts}}, 1.0)
    ['At dense-top: rt3 lasts longest within 1 point(s) of dense: 5.00 h [4.00, 6.00] (rt3).']
    """
    from lab.study.schemes import compare_schemes, hours_text

    maps = {s: e.get("deadline_map") or [] for s, e in entries.items()}
    count = min((len(m) for m in maps.values()), default=0)
    out = []
    for i in range(count):
        anchor = next(iter(maps.values()))[i]["anchor"]
        bests = {s: m[i]["best_within_accuracy"] for s, m in maps.items()}
        c = compare_schemes(bests, bound)
        if c["winner"] is None:
            out.append(f"At {anchor}: no scheme has a policy within {bound:g} point(s) of dense.")
            continue
        b = bests[c["winner"]]
        said = (
            f"At {anchor}: {c['winner']} lasts longest within {bound:g} point(s) of dense: "
            f"{hours_text(b)} ({b['policy']})"
        )
        tie = f"; its interval overlaps {', '.join(c['overlapping'])}'s" if c["overlapping"] else ""
        out.append(f"{said}{tie}.")
    return out
