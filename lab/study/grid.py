"""The deadlines a deadline study sweeps: the top level's deadline from RT3's BP anchor
(``scaled``) to ``dense-top`` and past it, each point's per-level deadlines in RT3's ratios.

Torch-free: the anchors come in as milliseconds at the top level.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MIN_POINTS = 3
MAX_POINTS = 64
DEFAULT_POINTS = 8
# The last point's top-level deadline over the one at which the dense model (latency
# scaling as 1/f) just meets every level's deadline: loose enough that a few tens of percent
# of timing noise between the anchors' measurement and the sets' does not decide it.
LOOSE_MARGIN = 1.5


class StudyError(ValueError):
    """A study that cannot run as asked; the message names the option or field."""


def check_points(points: object) -> int:
    """``--points``: an integer from ``MIN_POINTS`` to ``MAX_POINTS``.

    >>> check_points(8)
    8
    >>> check_points(1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lab.study.grid.StudyError: --points 1: expected an integer from 3 to 64 ...
    """
    if (
        isinstance(points, bool)
        or not isinstance(points, int)
        or not MIN_POINTS <= points <= MAX_POINTS
    ):
        raise StudyError(
            f"--points {points}: expected an integer from {MIN_POINTS} to {MAX_POINTS} "
            "(the two anchors and a deadline past dense-top need 3)"
        )
    return points


def timing_constraints(profile: Any) -> dict[int, float]:
    """A device profile's timing constraints, kHz -> ms (none without a workload).

    >>> from device_profiles import load_profile
    >>> timing_constraints(load_profile("rt3-paper"))
    {1400000: 115.0, 1000000: 104.0, 800000: 94.0}
    """
    wl = profile.workload
    return {tc.freq_khz: tc.deadline_ms for tc in (wl.timing_constraints if wl else [])}


def level_deadlines(top_ms: float, constraints: Mapping[int, float]) -> dict[int, float]:
    """Every level's deadline (kHz -> ms) in the ratios of ``constraints`` (the profile's
    timing constraints, RT3's 115/104/94 ms), scaled so the highest level's is ``top_ms``.

    >>> level_deadlines(0.5, {1400000: 115.0, 1000000: 104.0, 800000: 94.0})[800000]
    0.40869565217391307
    """
    top = constraints[max(constraints)]
    return {k: top_ms * (ms / top) if k != max(constraints) else top_ms
            for k, ms in sorted(constraints.items(), reverse=True)}  # fmt: skip


def loose_top_ms(dense_top_ms: float, constraints: Mapping[int, float]) -> float:
    """A top-level deadline at which the dense model meets every level's deadline, its
    latency scaling as ``1/f`` from ``dense_top_ms`` at the highest level, with
    ``LOOSE_MARGIN`` to spare.

    >>> round(loose_top_ms(1.0, {1400000: 115.0, 1000000: 104.0, 800000: 94.0}), 4)
    3.2114
    """
    top_khz = max(constraints)
    top = constraints[top_khz]
    need = max(dense_top_ms * (top_khz / k) / (ms / top) for k, ms in constraints.items())
    return LOOSE_MARGIN * need


@dataclass(frozen=True)
class GridPoint:
    """One deadline of the sweep: the top level's, and which anchor it is (or None)."""

    top_ms: float
    anchor: str | None


def deadline_grid(
    scaled_ms: float,
    dense_top_ms: float,
    constraints: Mapping[int, float],
    points: int,
    by: str = "the latency estimate",
) -> list[GridPoint]:
    """``points`` top-level deadlines, increasing: ``points - 1`` evenly spaced from
    ``scaled`` (BP's latency at the top level: it meets the top level) to ``dense-top``
    (the dense model's), then one where the dense model meets every level
    (:func:`loose_top_ms`). The same ``points`` on other anchors give the same points in
    those units; ``by`` says where the anchors come from (for the error).

    >>> rt3 = {1400000: 115.0, 1000000: 104.0, 800000: 94.0}
    >>> [(round(p.top_ms, 3), p.anchor) for p in deadline_grid(0.5, 1.0, rt3, 4)]
    [(0.5, 'scaled'), (0.75, None), (1.0, 'dense-top'), (3.211, 'dense at every level')]
    """
    check_points(points)
    if not (scaled_ms > 0 and dense_top_ms > scaled_ms * (1 + 1e-9)):
        raise StudyError(
            f"the anchors do not span a range by {by}: BP at the top level {scaled_ms:.6g} ms, "
            f"the dense model {dense_top_ms:.6g} ms (BP must be faster than dense)"
        )
    n = points - 1
    grid = [GridPoint(scaled_ms + (dense_top_ms - scaled_ms) * i / (n - 1), None) for i in range(n)]
    grid[0], grid[-1] = GridPoint(scaled_ms, "scaled"), GridPoint(dense_top_ms, "dense-top")
    return [*grid, GridPoint(loose_top_ms(dense_top_ms, constraints), "dense at every level")]
