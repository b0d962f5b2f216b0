"""The verdict: rt3 against each baseline, in on-time inferences, hours and accuracy.

Reads result dicts (``results.json`` rows) only. Every ratio uses on-time inferences (a late
answer is no answer). The policies compared are those in the rows
(``contracts.policies.compared_policies``): the baselines, named as in
``simulator/README.md``, in their order, then any other (registered) policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.policies import REFERENCE, compared_policies
from contracts.results import on_time


def accounting(r: dict[str, Any]) -> dict[str, Any]:
    """The on-time fields of a result dict: its own, else derived from its counts
    (``contracts.results.on_time``; a run written before the fields existed lacks them).

    >>> accounting({"inferences": 10, "deadline_misses": 4, "dropped": 1})["miss_rate"]
    0.36363636363636365
    """
    return {k: v if r.get(k) is None else r[k] for k, v in on_time(r).items()}


def on_time_count(r: dict[str, Any]) -> int:
    """On-time inferences of a result dict.

    >>> on_time_count({"inferences": 10, "deadline_misses": 4, "dropped": 1})
    7
    """
    return int(accounting(r)["on_time_inferences"])


@dataclass(frozen=True)
class Gain:
    """rt3 against one baseline: ratios of on-time inferences and hours, accuracy cost."""

    baseline: str
    on_time_ratio: float | None  # None when the baseline has no on-time inference
    hours_ratio: float | None
    accuracy_points: float | None  # baseline's accuracy minus rt3's, in points
    rt3_on_time: int = 0
    baseline_on_time: int = 0

    def sentence(self) -> str:
        """One clause, e.g. ``against dense-max: 1.50x the on-time inferences, ...``.

        >>> Gain("dense-max", 1.5, 0.9, 2.0).sentence()
        'against dense-max: 1.50x the on-time inferences, 0.90x the hours, 2.0 points less accurate'
        >>> Gain("oracle", None, 1.0, None, 5, 0).sentence()[:52]
        'against oracle: 5 on-time inferences where it has no'
        """
        if self.on_time_ratio is not None:
            inf = f"{self.on_time_ratio:.2f}x the on-time inferences"
        elif self.rt3_on_time:
            inf = f"{self.rt3_on_time:,} on-time inferences where it has none"
        else:
            inf = "no on-time inference either way"
        hrs = "hours n/a" if self.hours_ratio is None else f"{self.hours_ratio:.2f}x the hours"
        if self.accuracy_points is None:
            acc = "accuracy not comparable"
        elif abs(self.accuracy_points) < 0.05:
            acc = "the same accuracy"
        elif self.accuracy_points > 0:
            acc = f"{self.accuracy_points:.1f} points less accurate"
        else:
            acc = f"{-self.accuracy_points:.1f} points more accurate"
        return f"against {self.baseline}: {inf}, {hrs}, {acc}"


def gains(records: list[dict[str, Any]]) -> list[Gain]:
    """rt3 against every other policy present in ``records`` (``compared_policies``);
    empty without an rt3 record."""
    by = {r.get("policy"): r for r in records}
    rt3 = by.get(REFERENCE)
    if rt3 is None:
        return []
    out = []
    for name in compared_policies(p for p in by if isinstance(p, str)):
        b = by[name]
        ours, theirs = on_time_count(rt3), on_time_count(b)
        ratio = None if theirs == 0 else ours / theirs
        hours = rt3["battery_life_s"] / b["battery_life_s"] if b.get("battery_life_s") else None
        acc = None
        if rt3.get("mean_accuracy") is not None and b.get("mean_accuracy") is not None:
            acc = 100.0 * (b["mean_accuracy"] - rt3["mean_accuracy"])
        out.append(Gain(name, ratio, hours, acc, ours, theirs))
    return out


def verdict_paragraph(
    records: list[dict[str, Any]], workload_label: str = "", measured: str = ""
) -> str:
    """One paragraph: rt3's gain against each baseline, its misses, what was measured."""
    by = {r.get("policy"): r for r in records}
    rt3 = by.get(REFERENCE)
    if rt3 is None:
        return "No rt3 run in this directory: nothing to compare."
    parts = []
    if workload_label:
        parts.append(f"Workload: {workload_label}.")
    missed = int(rt3.get("deadline_misses") or 0)
    total = on_time_count(rt3) + missed
    if missed:
        parts.append(
            f"rt3 completed {on_time_count(rt3):,} inferences on time and missed {missed:,} "
            f"({100.0 * missed / total:.1f} % of requests); only on-time inferences count."
        )
    else:
        parts.append(f"rt3 completed {on_time_count(rt3):,} inferences, every one on time.")
    g = gains(records)
    if g:
        parts.append("rt3 " + "; ".join(x.sentence() for x in g) + ".")
    if measured:
        parts.append(measured)
    return " ".join(parts)


def provenance_sentence(record: dict[str, Any]) -> str:
    """What was measured and what modelled, from a result's provenance dict.

    >>> provenance_sentence({"provenance": {"latency": "measured", "power": "modelled"}})
    'Measured: latency. Modelled: power.'
    """
    prov = record.get("provenance") or {}
    groups: dict[str, list[str]] = {}
    for what, kind in prov.items():
        if kind in ("measured", "published", "modelled"):
            groups.setdefault(kind, []).append(what.replace("_", " "))
    return " ".join(
        f"{kind.capitalize()}: {', '.join(sorted(whats))}."
        for kind in ("measured", "published", "modelled")
        if (whats := groups.get(kind))
    )
