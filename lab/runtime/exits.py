"""A set's exits: how many layers it runs, which decoder reads them, when it stops early.

RT3's sets run every layer and the decoder. A **depth** variant runs the first ``k``
encoder layers and one decoder (the shared ``decoder`` or the exit head ``exit_heads.k``):
one exit. An **early-exit** variant lists several exits (layer counts, increasing, the last
one usually the model's depth) with the decoder each reads, and a ``threshold``: an input
stops at the first exit whose confidence (``lab.model.transformer.confidence``: the mean
over its positions of the largest softmax probability) reaches it; the last exit always
stops.

A set carries its plan in its ``meta`` (``exits``, ``heads``, ``threshold``); the export
writes them on the set's row of ``header.json`` and the engine (``engine.c``) reads them by
the rules of :func:`check_plan`, which ``read_export`` applies too.

>>> plan = ExitPlan((1, 2), ("exit_heads.1", "decoder"), 0.5)
>>> plan.to_meta()
{'exits': [1, 2], 'heads': ['exit_heads.1', 'decoder'], 'threshold': 0.5}
>>> ExitPlan.of_meta({}, layers=2)
ExitPlan(exits=(2,), heads=('decoder',), threshold=None)
>>> try:
...     check_plan([2, 1], ["decoder", "decoder"], 0.5, 2, [], "sets.a", ValueError)
... except ValueError as e:
...     print(e)
header field 'sets.a.exits': expected increasing layer counts up to model.layers (2)
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

MAX_EXITS = 64  # the engine's bound (engine.c MAX_EXITS)
PLAN_KEYS = ("exits", "heads", "threshold")


def _whole(value: object, lo: int, hi: int) -> int | None:
    """The engine's ``jint``: a JSON number with a whole value in ``lo..hi`` (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value != math.floor(value) or not lo <= value <= hi:
        return None
    return int(value)


def check_heads(raw: object, layers: int, error: type[ValueError]) -> list[int]:
    """``model.exit_heads`` by the engine's rule: at most 64 increasing layer counts below
    ``layers`` (none when absent)."""
    if raw is None:
        return []
    counts = [_whole(k, 0, layers - 1) for k in raw] if isinstance(raw, list) else [None]
    if (
        len(counts) > MAX_EXITS
        or None in counts
        or any(b <= a for a, b in itertools.pairwise(counts))  # type: ignore[operator]
    ):
        raise error(
            "header field 'model.exit_heads': expected a list of at most 64 increasing layer "
            f"counts below model.layers ({layers}), got {raw!r}"
        )
    return counts  # type: ignore[return-value]


def check_plan(
    exits: object,
    heads: object,
    threshold: object,
    layers: int,
    exit_heads: list[int],
    where: str,
    error: type[ValueError],
) -> ExitPlan | None:
    """A set's ``exits``, ``heads`` and ``threshold`` by the engine loader's rules (None when
    all three are absent: every layer, then the decoder). ``where``: the set's field prefix."""
    if exits is None and heads is None and threshold is None:
        return None
    if (
        not isinstance(exits, list)
        or not isinstance(heads, list)
        or not 1 <= len(exits) <= MAX_EXITS
        or len(heads) != len(exits)
    ):
        raise error(
            f"header field '{where}.exits': expected 1 to 64 layer counts and 'heads' of "
            "the same length"
        )
    at = [_whole(k, 0, layers) for k in exits]
    if None in at or any(b <= a for a, b in itertools.pairwise(at)):  # type: ignore[operator]
        raise error(
            f"header field '{where}.exits': expected increasing layer counts up to "
            f"model.layers ({layers})"
        )
    for k, head in zip(at, heads, strict=True):
        if head != "decoder" and not (head == f"exit_heads.{k}" and k in exit_heads):
            raise error(
                f"header field '{where}.heads': expected 'decoder' or the exit head at that "
                f"exit (exit_heads.{k}), got {head!r}"
            )
    ok = threshold is None or (
        isinstance(threshold, int | float)
        and not isinstance(threshold, bool)
        and 0.0 <= threshold <= 1.0
    )
    if not ok or (len(at) > 1 and threshold is None):
        raise error(
            f"header field '{where}.threshold': expected a number in [0, 1] (needed with two "
            "exits or more)"
        )
    return ExitPlan(tuple(at), tuple(heads), None if threshold is None else float(threshold))  # type: ignore[arg-type]


@dataclass(frozen=True)
class ExitPlan:
    """Exits (layer counts), the decoder of each, and the threshold (None: one exit)."""

    exits: tuple[int, ...]
    heads: tuple[str, ...]
    threshold: float | None = None

    @classmethod
    def of_meta(cls, meta: dict[str, Any], layers: int) -> ExitPlan:
        """The plan a set's ``meta`` records (RT3's, every layer then the decoder, if none)."""
        raw = [meta.get(k) for k in PLAN_KEYS]
        if raw == [None, None, None]:
            return cls((layers,), ("decoder",))
        return cls(tuple(raw[0]), tuple(raw[1]), None if raw[2] is None else float(raw[2]))

    @property
    def early(self) -> bool:
        """Whether inputs may stop before the last exit."""
        return len(self.exits) > 1

    def to_meta(self) -> dict[str, Any]:
        """The plan as a set's ``meta`` (and an export's set row) records it."""
        out: dict[str, Any] = {"exits": list(self.exits), "heads": list(self.heads)}
        if self.threshold is not None:
            out["threshold"] = self.threshold
        return out


def plan_of(meta: dict[str, Any]) -> dict[str, Any]:
    """The plan's keys of a set's ``meta`` (empty for RT3's sets)."""
    return {k: meta[k] for k in PLAN_KEYS if k in meta}
