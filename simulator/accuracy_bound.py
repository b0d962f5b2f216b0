"""Equal-accuracy comparisons: each policy's longest-lasting table within an accuracy bound.

``simulate(..., max_accuracy_loss=PTS)`` (``--max-accuracy-loss PTS``) bounds the run's
mean accuracy (weighted by completed inferences, as the result's ``mean_accuracy``) to at
most PTS points under the unpruned model's accuracy (1.0 = one percentage point = 0.01 in
the profile's accuracy fractions). Each policy then runs the longest-lasting table of its
``TableSpace`` (``simulator.policies``) whose mean accuracy stays within the bound:

- ``rt3``: any per-level table of the reconfigurable sets that meet each level's deadline
  (the fastest where none does);
- ``dvfs-only`` and ``static-sparse``: any one set at every level, under the governor
  (``dvfs-only:NAME``: NAME only, checked against the bound);
- ``oracle``: any of its tables (deadline-meeting variants per level): the longest life
  subject to the bound, instead of the most accuracy-weighted inferences;
- ``dense-max`` and a policy registered without a space: its own table, checked.

The mean accuracy of a table is known only by simulating it, so every table of the space
is simulated in ``fast`` mode (``mean`` in mean mode): exhaustively up to
``oracle.MAX_TABLES`` tables, else by coordinate ascent from the most accurate table (a
heuristic, said so in the reason). "Longest-lasting" is the longest battery life; lives
within ``LIFE_TIE`` (relative) of each other are a tie, broken by more on-time
inferences, then higher mean accuracy, then the order of the space (most accurate first).
A policy with no table within the bound raises ``NoTableWithinBound``; it has no hours.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from simulator.device import Device
from simulator.errors import SimulatorInputError
from simulator.oracle import MAX_TABLES, weighted_inferences
from simulator.policies import PolicyInputs, TableSpace, find_policy, plan_table, unpruned

# A mean accuracy this far below the floor still counts as within it (float rounding:
# a set's mean over its own inferences is its accuracy to the last bit or two).
ACCURACY_TOLERANCE = 1e-12
# Lives closer than this (relative) are a tie.
LIFE_TIE = 1e-9


@dataclass(frozen=True)
class TableOutcome:
    """What one discharge under a table came to: what the bound's search ranks by."""

    battery_life_s: float
    inferences: int
    on_time_inferences: int
    mean_accuracy: float | None
    per_variant: dict[str, int]


Measure = Callable[[dict[int, str]], TableOutcome]


@dataclass(frozen=True)
class TableChoice:
    """A policy's table, and under a bound why it was chosen (``reason``) and its search's
    outcome; without a bound ``reason`` and ``outcome`` are None."""

    table: dict[int, str]
    reason: str | None = None
    outcome: TableOutcome | None = None


class NoTableWithinBound(SimulatorInputError):
    """No table of the policy keeps the mean accuracy within the bound: the policy has no
    hours there. ``policy`` and ``reason`` say which and why."""

    def __init__(self, policy: str, reason: str) -> None:
        super().__init__(reason)
        self.policy = policy
        self.reason = reason


def check_accuracy_loss(points: object) -> float:
    """``points`` as a bound: a finite number >= 0 (accuracy points under dense).

    >>> check_accuracy_loss(1)
    1.0
    >>> check_accuracy_loss(float("nan"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    simulator.errors.SimulatorInputError: max_accuracy_loss: expected a finite number ..., got nan
    """
    ok = isinstance(points, int | float) and not isinstance(points, bool)
    if not ok or not math.isfinite(points) or points < 0:
        raise SimulatorInputError(
            "max_accuracy_loss: expected a finite number of accuracy points >= 0 "
            f"(1.0 = one percentage point under the unpruned model), got {points!r}"
        )
    return float(points)


def accuracy_floor(device: Device, points: float) -> tuple[float, float]:
    """(the unpruned model's accuracy, the lowest mean accuracy within ``points`` of it);
    refused when the unpruned model or any variant has no accuracy."""
    try:
        dense = unpruned(device)
    except SimulatorInputError:
        dense = None
    if dense is None or dense.accuracy is None:
        raise SimulatorInputError(
            "max_accuracy_loss: needs the unpruned model's accuracy as the reference (a "
            "variant named 'dense' or with sparsity 0, with an accuracy); variants are "
            f"{[v.name for v in device.variants]}"
        )
    blind = [v.name for v in device.variants if v.accuracy is None]
    if blind:
        raise SimulatorInputError(
            f"max_accuracy_loss: variant(s) {blind} have no accuracy; the bound needs "
            "every variant's"
        )
    return dense.accuracy, dense.accuracy - points / 100.0


def _longer(a: TableOutcome, b: TableOutcome) -> bool:
    """Whether ``a`` lasts longer than ``b`` (see the module's tie rule)."""
    scale = max(abs(a.battery_life_s), abs(b.battery_life_s), 1e-300)
    if abs(a.battery_life_s - b.battery_life_s) > LIFE_TIE * scale:
        return a.battery_life_s > b.battery_life_s
    if a.on_time_inferences != b.on_time_inferences:
        return a.on_time_inferences > b.on_time_inferences
    return (a.mean_accuracy or 0.0) > (b.mean_accuracy or 0.0)


@dataclass
class _Search:
    """The search's state: every table tried, the best within the bound so far."""

    measure: Measure
    floor: float
    tried: dict[tuple, TableOutcome]
    best: tuple[dict[int, str], TableOutcome] | None = None
    within: int = 0

    def visit(self, table: dict[int, str]) -> bool:
        """Simulate ``table`` (once); whether it became the best."""
        key = tuple(sorted(table.items()))
        if key in self.tried:
            return False
        out = self.tried[key] = self.measure(table)
        acc = out.mean_accuracy
        if acc is None or acc < self.floor - ACCURACY_TOLERANCE:
            return False
        self.within += 1
        if self.best is None or _longer(out, self.best[1]):
            self.best = (dict(table), out)
            return True
        return False

    def most_accurate(self) -> float | None:
        """The highest mean accuracy of any table tried."""
        accs = [o.mean_accuracy for o in self.tried.values() if o.mean_accuracy is not None]
        return max(accs) if accs else None


def longest_within(space: TableSpace, measure: Measure, floor: float) -> tuple[_Search, str]:
    """Search ``space`` for the longest-lasting table with mean accuracy >= ``floor``;
    the search and how it searched."""
    search = _Search(measure, floor, {})
    if space.count() <= MAX_TABLES:
        for table in space.tables():
            search.visit(table)
        return search, "exhaustively"
    table = next(space.tables())
    search.visit(table)
    if search.best is not None:
        table = search.best[0]
    improved = True
    while improved:
        improved = False
        for k, opts in zip(space.levels, space.options, strict=True):
            for name in opts:
                if search.visit({**table, k: name}):
                    table, improved = search.best[0], True
    return search, f"by coordinate ascent ({space.count()} tables, over {MAX_TABLES})"


def choose_table(
    policy: str,
    device: Device,
    levels: list[int],
    workload_deadline_s: float | None,
    measure: Measure,
    max_accuracy_loss: float | None = None,
) -> TableChoice:
    """``policy``'s table: its own rule without a bound (``plan_table``, the oracle
    scoring by ``measure``), else its longest-lasting table within the bound (raises
    ``NoTableWithinBound`` when there is none)."""

    def score(table: dict[int, str]) -> float:
        return weighted_inferences(device, measure(table).per_variant)

    if max_accuracy_loss is None:
        return TableChoice(plan_table(policy, device, levels, workload_deadline_s, score))
    points = check_accuracy_loss(max_accuracy_loss)
    reference, floor = accuracy_floor(device, points)
    found, arg = find_policy(policy)
    inputs = PolicyInputs(device, levels, workload_deadline_s, arg, score)
    own = found.space is None
    if own:
        table = plan_table(policy, device, levels, workload_deadline_s, score)
        space = TableSpace(tuple(levels), tuple((table[k],) for k in levels))
    else:
        space = found.space(inputs)
    search, how = longest_within(space, measure, floor)
    bound = f"{points:g} point(s) of dense ({reference:.4f}, floor {floor:.4f})"
    if search.best is None:
        best = search.most_accurate()
        reached = "no inference completed"
        if best is not None:
            reached = f"the most accurate reaches {best:.4f}, {(reference - best) * 100:.2f} under"
        raise NoTableWithinBound(
            policy,
            f"{policy}: no table within {bound}: of {len(search.tried)} searched {how}, {reached}",
        )
    table, out = search.best
    life = f"{out.battery_life_s / 3600:.3f} h at mean accuracy {out.mean_accuracy:.4f}"
    if own or space.count() == 1:
        reason = f"{policy}: its own table, within {bound}: {life}"
    else:
        reason = (
            f"{policy}: the longest-lasting of {search.within} table(s) within {bound}, "
            f"of {len(search.tried)} searched {how}: {life}"
        )
    return TableChoice(table, reason, out)
