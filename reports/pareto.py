"""Accuracy against battery life: each policy a point, the Pareto-optimal ones joined and
labelled, rt3 drawn on top so that a fixed-set run at the same point cannot hide it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.policies import REFERENCE
from reports.axes import place_labels, plain_ticks, pyplot
from reports.plots import Drawn, labels, simulated, spans_decades
from reports.provenance import merge_kinds
from reports.run import RunData


def pareto_front(points: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """The non-dominated (label, life, accuracy) points: more life and more accuracy win.

    >>> [p[0] for p in pareto_front([("a", 1, 0.9), ("b", 2, 0.8), ("c", 1, 0.7)])]
    ['a', 'b']
    """
    front = [
        p
        for p in points
        if not any((q[1] >= p[1] and q[2] >= p[2]) and (q[1] > p[1] or q[2] > p[2]) for q in points)
    ]
    return sorted(front, key=lambda p: p[1])


# A policy that misses more than this share of its requests is drawn hollow and left off
# the front: its hours come partly from work it dropped.
MISS_OK = 0.01


@dataclass(frozen=True)
class Point:
    """One policy: its label, hours, accuracy, whether it met its deadlines (missing at
    most ``MISS_OK`` of its requests) and whether it is rt3."""

    label: str
    hours: float
    accuracy: float
    on_time: bool
    reference: bool = False


def _points(run: RunData) -> list[Point]:
    from reports.verdict import on_time_count

    out = []
    for r, base in zip(run.records, labels(run.records), strict=True):
        if r.get("mean_accuracy") is None:
            continue
        used = [k for k, n in (r.get("inferences_per_variant") or {}).items() if n]
        named = len(used) == 1 and used[0] not in base
        label = base + (f" ({used[0]})" if named else "")
        on = on_time_count(r)
        missed = int(r.get("deadline_misses") or 0)
        kept = on > 0 and missed <= MISS_OK * (on + missed)
        out.append(Point(label, r["battery_life_s"] / 3600, float(r["mean_accuracy"]), kept,
                         r.get("policy") == REFERENCE))  # fmt: skip
    return out


def _together(points: list[Point]) -> dict[tuple[float, float], list[str]]:
    """Labels by position: policies at the same point share one label (``a = b``)."""
    at: dict[tuple[float, float], list[str]] = {}
    for p in points:
        at.setdefault((round(p.hours, 9), round(p.accuracy, 12)), []).append(p.label)
    return at


def _scatter(ax: Any, points: list[Point]) -> None:
    """Every policy a marker in the legend; rt3 a large star drawn last, on top; hollow
    markers for policies that missed deadlines."""
    import matplotlib as mpl

    colours = mpl.colormaps["tab10"].colors
    others = [p for p in points if not p.reference]
    for i, p in enumerate(others):
        colour = colours[(i + 1) % len(colours)]
        face = colour if p.on_time else "none"
        ax.scatter(p.hours, p.accuracy, s=36, marker="o", facecolors=face, edgecolors=colour,
                   linewidths=1.4, label=p.label, zorder=3)  # fmt: skip
    for p in points:
        if p.reference:
            ax.scatter(p.hours, p.accuracy, s=170, marker="*", color="tab:red", edgecolors="k",
                       linewidths=0.6, label=p.label, zorder=5)  # fmt: skip


def draw_accuracy_vs_life(run: RunData) -> Drawn | None:
    """Mean accuracy against battery life (hours), one point per policy; the Pareto-optimal
    points among the policies that met their deadlines joined and labelled."""
    points = _points(run)
    if not points:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.6))
    _scatter(ax, points)
    useful = [(p.label, p.hours, p.accuracy) for p in points if p.on_time]
    front = pareto_front(useful)
    if front:
        ax.step([p[1] for p in front], [p[2] for p in front], where="post", color="grey",
                ls="--", lw=1, zorder=2)  # fmt: skip
    if spans_decades([p.hours for p in points]):
        ax.set_xscale("log")
    ax.set_xlabel("battery life (h)")
    ax.set_ylabel("mean next-token accuracy")
    ax.grid(alpha=0.3)
    plain_ticks(ax)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), title="policy",
              title_fontsize=7)  # fmt: skip
    fig.tight_layout()
    at = _together(points)
    on_front = {(round(h, 9), round(a, 12)) for _, h, a in front}
    place_labels(ax, [(" = ".join(at[k]), k[0], k[1]) for k in sorted(on_front)])
    acc_kind = merge_kinds(run.records).get("accuracy", "as the variants state")
    return Drawn(
        "pareto",
        fig,
        "Accuracy against battery life",
        "Each point is one simulated policy (with the pattern set it ran, when it ran only "
        "one); rt3 is the red star. Hollow markers: the policy missed more than "
        f"{100 * MISS_OK:g} % of its deadlines, so part of its hours come from work it "
        "dropped. The dashed line joins the Pareto-optimal points among the others, which "
        "are labelled (policies at the same point share a label).",
        simulated(run),
        extra=f"accuracy: {acc_kind}",
    )
