"""What a deadline study says in words: where switching buys battery life, and where it buys
only accuracy. Torch-free.

At a point, switching **buys battery life** when the 95 % interval of rt3's hours over
``static-sparse``'s lies wholly above 1.0. It **buys only accuracy** when that interval does
not (or is undefined) and rt3's mean accuracy is above static-sparse's (point estimates:
both run on the same test sequences). A range is a run of consecutive points (in increasing
deadline) where the condition holds, given by its first and last top-level deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

BASELINE = "static-sparse"


def buys_life(point: dict[str, Any]) -> bool:
    """rt3's hours over static-sparse: the 95 % interval lies above 1.0.

    >>> buys_life({"gains": {"static-sparse": {"hours": {"ci95": [1.02, 1.3]}}}})
    True
    """
    ci = point.get("gains", {}).get(BASELINE, {}).get("hours", {}).get("ci95")
    return ci is not None and ci[0] > 1.0


def buys_accuracy_only(point: dict[str, Any]) -> bool:
    """Not :func:`buys_life`, and rt3 is more accurate than static-sparse.

    >>> p = {"gains": {}, "policies": {"rt3": {"mean_accuracy": 0.3},
    ...                                "static-sparse": {"mean_accuracy": 0.2}}}
    >>> buys_accuracy_only(p)
    True
    """
    pol = point.get("policies", {})
    ours = (pol.get("rt3") or {}).get("mean_accuracy")
    theirs = (pol.get(BASELINE) or {}).get("mean_accuracy")
    return not buys_life(point) and ours is not None and theirs is not None and ours > theirs


def ranges(points: Sequence[dict[str, Any]], holds: Callable[[dict[str, Any]], bool]) -> list:
    """Consecutive runs of ``points`` (in order) where ``holds``, as
    ``[first top_deadline_ms, last top_deadline_ms]``.

    >>> pts = [{"top_deadline_ms": t, "ok": ok} for t, ok in [(1, 1), (2, 1), (3, 0), (4, 1)]]
    >>> ranges(pts, lambda p: p["ok"])
    [[1, 2], [4, 4]]
    """
    out: list[list[float]] = []
    prev = False
    for p in points:
        now = bool(holds(p))
        if now and prev:
            out[-1][1] = p["top_deadline_ms"]
        elif now:
            out.append([p["top_deadline_ms"], p["top_deadline_ms"]])
        prev = now
    return out


def _words(spans: list[list[float]]) -> str:
    return ", ".join(f"{a:.4g} ms" if a == b else f"{a:.4g}-{b:.4g} ms" for a, b in spans)


def summarise(points: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The study's summary: both kinds of range and a sentence for each.

    >>> s = summarise([{"top_deadline_ms": 1.0, "gains": {}, "policies": {}}])
    >>> s["battery_life_ranges_ms"], s["sentences"][0]  # doctest: +ELLIPSIS
    ([], 'No top-level deadline of this study on this host where switching buys battery ...')
    """
    life = ranges(points, buys_life)
    acc = ranges(points, buys_accuracy_only)
    what = "rt3 over static-sparse in hours, 95 % interval above 1.0"
    sentences = [
        f"Switching buys battery life ({what}) at top-level deadlines {_words(life)}."
        if life
        else f"No top-level deadline of this study on this host where switching buys battery "
        f"life ({what}).",
        f"Switching buys only accuracy (hours not above static-sparse's, mean accuracy "
        f"above it) at top-level deadlines {_words(acc)}."
        if acc
        else "No top-level deadline of this study where switching buys only accuracy.",
    ]
    return {
        "battery_life_ranges_ms": life,
        "accuracy_only_ranges_ms": acc,
        "baseline": BASELINE,
        "sentences": sentences,
    }
