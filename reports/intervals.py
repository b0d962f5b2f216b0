"""95 % intervals a run carries, read where present (the simulator's bootstrap adds them).

A result row may carry ``battery_life_h_ci95`` and ``on_time_inferences_ci95`` (each a
``[low, high]`` pair) and rt3's row a ``gains`` list; a run directory may hold
``uncertainty.json`` (``simulator.uncertainty``'s result as JSON: ``policies`` with those
fields, and ``gains``). Each gain is ``{"baseline", "hours", "on_time"}``, the last two
``{"point", "ci95", "straddles_one"}``: rt3's ratio over the baseline, its interval and
whether the interval holds 1. A run without them has no interval, and the verdict says so.

>>> found = read_intervals([{"policy": "rt3", "battery_life_h_ci95": [9.5, 10.5]}])
>>> found.policy("rt3").battery_life_h, found.measured
((9.5, 10.5), True)
>>> read_intervals([{"policy": "rt3"}]).measured
False
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

Pair = tuple[float, float]


@dataclass(frozen=True)
class PolicyInterval:
    """One policy's 95 % intervals of battery hours and on-time inferences (None: none)."""

    battery_life_h: Pair | None = None
    on_time_inferences: Pair | None = None


@dataclass(frozen=True)
class RatioInterval:
    """rt3's ratio over a baseline: its 95 % interval and whether it holds 1."""

    ci95: Pair
    straddles_one: bool

    def words(self) -> str:
        """``95 % interval 2.31x-2.60x, above 1`` (or ``below 1``, or ``straddles 1: ...``).

        >>> RatioInterval((0.9, 1.2), True).words()
        '95 % interval 0.90x-1.20x, which straddles 1: the gain may be none'
        """
        lo, hi = self.ci95
        where = (
            "which straddles 1: the gain may be none"
            if self.straddles_one
            else ("above 1" if lo > 1 else "below 1: a loss")
        )
        return f"95 % interval {lo:.2f}x-{hi:.2f}x, {where}"


@dataclass(frozen=True)
class Intervals:
    """Every interval found: per policy, and per baseline rt3's hours and on-time ratios."""

    policies: dict[str, PolicyInterval] = field(default_factory=dict)
    hours: dict[str, RatioInterval] = field(default_factory=dict)
    on_time: dict[str, RatioInterval] = field(default_factory=dict)

    @property
    def measured(self) -> bool:
        """Whether any interval was found."""
        return bool(self.hours or self.on_time) or any(
            p.battery_life_h or p.on_time_inferences for p in self.policies.values()
        )

    def policy(self, name: str) -> PolicyInterval:
        """The intervals of policy ``name`` (none when it has none)."""
        return self.policies.get(name, PolicyInterval())


def _pair(value: Any) -> Pair | None:
    if not isinstance(value, list | tuple) or len(value) != 2:
        return None
    try:
        lo, hi = float(value[0]), float(value[1])
    except (TypeError, ValueError):
        return None
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None


def _ratio(value: Any) -> RatioInterval | None:
    if not isinstance(value, dict) or (ci := _pair(value.get("ci95"))) is None:
        return None
    straddles = value.get("straddles_one")
    return RatioInterval(ci, ci[0] <= 1.0 <= ci[1] if straddles is None else bool(straddles))


def read_intervals(
    records: list[dict[str, Any]], uncertainty: dict[str, Any] | None = None
) -> Intervals:
    """The intervals in result rows and an ``uncertainty.json`` (its entries win)."""
    rows = [*records, *((uncertainty or {}).get("policies") or [])]
    policies: dict[str, PolicyInterval] = {}
    gains: list[Any] = []
    for r in rows:
        if not isinstance(r, dict) or not isinstance(r.get("policy"), str):
            continue
        found = PolicyInterval(
            _pair(r.get("battery_life_h_ci95")), _pair(r.get("on_time_inferences_ci95"))
        )
        if found != PolicyInterval():
            policies[r["policy"]] = found
        if isinstance(r.get("gains"), list):
            gains += r["gains"]
    gains += (uncertainty or {}).get("gains") or []
    hours, on_time = {}, {}
    for g in gains:
        if isinstance(g, dict) and isinstance(g.get("baseline"), str):
            if (h := _ratio(g.get("hours"))) is not None:
                hours[g["baseline"]] = h
            if (o := _ratio(g.get("on_time"))) is not None:
                on_time[g["baseline"]] = o
    return Intervals(policies, hours, on_time)
