"""The verdict: what rt3 ran, whether switching bought anything, and rt3 against each
baseline in hours, on-time inferences and accuracy, with 95 % intervals where measured.

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
from reports.intervals import Intervals


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


def _hours(h: float) -> str:
    return f"{h:,.1f} h"


@dataclass(frozen=True)
class Gain:
    """rt3 against one baseline: ratios of on-time inferences and hours, accuracy cost."""

    baseline: str
    on_time_ratio: float | None  # None when the baseline has no on-time inference
    hours_ratio: float | None
    accuracy_points: float | None  # baseline's accuracy minus rt3's, in points
    rt3_on_time: int = 0
    baseline_on_time: int = 0
    rt3_hours: float | None = None
    baseline_hours: float | None = None

    def _accuracy(self) -> str:
        if self.accuracy_points is None:
            return "accuracy not comparable"
        if abs(self.accuracy_points) < 0.05:
            return "the same accuracy"
        if self.accuracy_points > 0:
            return f"{self.accuracy_points:.1f} points less accurate"
        return f"{-self.accuracy_points:.1f} points more accurate"

    def _inferences(self) -> str:
        if self.on_time_ratio is not None:
            return f"{self.on_time_ratio:.2f}x the on-time inferences"
        if self.rt3_on_time:
            return f"{self.rt3_on_time:,} on-time inferences where it has none"
        return "no on-time inference either way"

    def sentence(self) -> str:
        """One clause, e.g. ``against dense-max: 1.50x the on-time inferences, ...``.

        >>> Gain("dense-max", 1.5, 0.9, 2.0).sentence()
        'against dense-max: 1.50x the on-time inferences, 0.90x the hours, 2.0 points less accurate'
        >>> Gain("oracle", None, 1.0, None, 5, 0).sentence()[:52]
        'against oracle: 5 on-time inferences where it has no'
        """
        hrs = "hours n/a" if self.hours_ratio is None else f"{self.hours_ratio:.2f}x the hours"
        return f"against {self.baseline}: {self._inferences()}, {hrs}, {self._accuracy()}"

    def statement(self, intervals: Intervals | None = None) -> str:
        """The verdict's clause: hours and on-time inferences, each as a ratio with both
        figures and, where the run measured one, the ratio's 95 % interval.

        >>> print(Gain("dense-max", 2.0, 2.5, 0.5, 800, 400, 10.0, 4.0).statement())
        against dense-max: 2.50x the hours (10.0 h against 4.0 h) and 2.00x the on-time
        inferences (800 against 400), 0.5 points less accurate
        """
        iv = intervals or Intervals()
        hours = "hours n/a"
        if self.hours_ratio is not None:
            said = []
            if self.rt3_hours is not None and self.baseline_hours is not None:
                said.append(f"{_hours(self.rt3_hours)} against {_hours(self.baseline_hours)}")
            if self.baseline in iv.hours:
                said.append(iv.hours[self.baseline].words())
            hours = f"{self.hours_ratio:.2f}x the hours" + (f" ({'; '.join(said)})" if said else "")
        inf = self._inferences()
        said = [f"{self.rt3_on_time:,} against {self.baseline_on_time:,}"]
        if self.on_time_ratio is not None and self.baseline in iv.on_time:
            said.append(iv.on_time[self.baseline].words())
        if self.on_time_ratio is not None:
            inf += f" ({'; '.join(said)})"
        return f"against {self.baseline}: {hours} and {inf}, {self._accuracy()}"


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
        life = (rt3["battery_life_s"] / 3600, b["battery_life_s"] / 3600)
        out.append(Gain(name, ratio, hours, acc, ours, theirs, *life))
    return out


def _table(r: dict[str, Any]) -> dict[int, str]:
    """A result's level -> variant table with integer kHz keys (JSON makes them strings)."""
    return {int(k): str(v) for k, v in (r.get("variant_at_level") or {}).items()}


def _mhz(levels: list[int]) -> str:
    """``1400, 1000 and 800 MHz``."""
    names = [f"{k / 1000:g}" for k in sorted(levels, reverse=True)]
    return (", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]) + " MHz"


def ran_sentence(rt3: dict[str, Any]) -> str:
    """What rt3 ran at each level and how often it switched pattern sets.

    >>> ran_sentence({"variant_at_level": {"1400000": "a", "800000": "b", "1000000": "a"},
    ...               "switches": 1})
    'rt3 ran a at 1400 and 1000 MHz and b at 800 MHz, switching pattern sets once.'
    >>> ran_sentence({"variant_at_level": {"1400000": "a", "800000": "a"}, "switches": 0})
    'rt3 ran a at every level (1400 and 800 MHz) and never switched pattern sets.'
    """
    table, n = _table(rt3), int(rt3.get("switches") or 0)
    if not table:
        return f"rt3 switched pattern sets {n:,} time(s)."
    by_set: dict[str, list[int]] = {}
    for khz in sorted(table, reverse=True):
        by_set.setdefault(table[khz], []).append(khz)
    times = "once" if n == 1 else f"{n:,} times"
    switched = "never switched pattern sets" if n == 0 else f"switching pattern sets {times}"
    if len(by_set) == 1:
        ((name, levels),) = by_set.items()
        return f"rt3 ran {name} at every level ({_mhz(levels)}) and {switched}."
    ran = [f"{name} at {_mhz(levels)}" for name, levels in by_set.items()]
    return f"rt3 ran {', '.join(ran[:-1])} and {ran[-1]}, {switched}."


SAME_FIELDS = ("battery_life_s", "inferences", "deadline_misses", "dropped", "mean_accuracy")


def equal_rows(records: list[dict[str, Any]]) -> list[str]:
    """The policies whose table and headline numbers equal rt3's (its row, word for word)."""
    rt3 = next((r for r in records if r.get("policy") == REFERENCE), None)
    if rt3 is None:
        return []
    same = [k for k in SAME_FIELDS if k in rt3]
    return [
        str(r.get("policy"))
        for r in records
        if r is not rt3 and _table(r) == _table(rt3) and all(r.get(k) == rt3.get(k) for k in same)
    ]


def switching_sentence(records: list[dict[str, Any]]) -> str:
    """Whether switching bought anything: rt3's row against the rows equal to it."""
    rt3 = next((r for r in records if r.get("policy") == REFERENCE), None)
    if rt3 is None:
        return ""
    one_set = len(set(_table(rt3).values())) == 1 and not rt3.get("switches")
    equal = equal_rows(records)
    if equal:
        names = ", ".join(equal)
        tail = ": switching bought nothing in this run." if one_set else "."
        return f"Its row equals {names}'s (the same table, the same numbers){tail}"
    if one_set:
        return (
            "It ran one pattern set throughout, as a fixed-set policy would: switching "
            "bought nothing in this run."
        )
    return ""


@dataclass(frozen=True)
class Verdict:
    """The verdict in sentences: the lead (workload, what rt3 ran, whether switching
    bought anything, its misses), one clause per compared policy, and closing notes
    (intervals, provenance)."""

    lead: list[str]
    gains: list[str]
    notes: list[str]

    def text(self) -> str:
        """Everything as one paragraph."""
        body = ["rt3 " + "; ".join(self.gains) + "."] if self.gains else []
        return " ".join([*self.lead, *body, *self.notes])


def _misses_sentence(rt3: dict[str, Any]) -> str:
    on, missed = on_time_count(rt3), int(rt3.get("deadline_misses") or 0)
    if missed and not on:
        return (
            f"rt3 met no deadline: all {missed:,} requests missed, so no policy's hours or "
            "gain below count for anything (a board needs pattern sets that meet its "
            "deadlines: `rt3lab profile --bundle`)."
        )
    if missed:
        share = 100.0 * missed / (on + missed)
        pct = f"{share:.1f}" if share >= 0.1 else f"{share:.1g}"
        return (
            f"rt3 completed {on:,} inferences on time and missed {missed:,} ({pct} % of "
            "requests); only on-time inferences count."
        )
    return f"rt3 completed {on:,} inferences, every one on time."


def build_verdict(
    records: list[dict[str, Any]],
    workload_label: str = "",
    measured: str = "",
    intervals: Intervals | None = None,
) -> Verdict:
    """The verdict of a run's rows (``intervals``: what ``read_intervals`` found)."""
    rt3 = next((r for r in records if r.get("policy") == REFERENCE), None)
    if rt3 is None:
        return Verdict(["No rt3 run in this directory: nothing to compare."], [], [])
    iv = intervals or Intervals()
    lead = [f"Workload: {workload_label}."] if workload_label else []
    lead += [ran_sentence(rt3), switching_sentence(records), _misses_sentence(rt3)]
    clauses = [g.statement(iv) for g in gains(records)]
    notes = []
    if clauses and not iv.measured:
        notes.append(
            "No interval was measured: each figure is one simulated discharge of the "
            "profile's point estimates."
        )
    if measured:
        notes.append(measured)
    return Verdict([x for x in lead if x], clauses, notes)


def verdict_paragraph(
    records: list[dict[str, Any]], workload_label: str = "", measured: str = ""
) -> str:
    """The verdict as one paragraph (``build_verdict(...).text()``)."""
    return build_verdict(records, workload_label, measured).text()


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
