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
# A depth set's (depth, decoder) or an early-exit set's (the others) fields on its row of
# bundle.json (absent for RT3's sets; the simulator refuses exit fields on other schemes):
ENTRY_FIELDS = {
    "exits": "the layer count after which each exit sits, increasing (the last: the set's depth)",
    "threshold": "the confidence an input needs to stop before the last exit (early exit)",
    "exit_histogram": "share of the test split's sequences stopping at each exit (sums to 1)",
    "exit_latency_ms": "host-measured latency of a sequence stopping at each exit (ms)",
    "depth": "the encoder layers the variant runs (depth scheme)",
    "decoder": "the decoder it reads: 'decoder' (shared) or 'exit_heads.K' (its own)",
}


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


def _numbers(value: object, lo: float, hi: float) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and lo <= v <= hi for v in value
    )


def check_entry_fields(row: dict[str, Any], where: str) -> dict[str, Any]:
    """A set row's :data:`ENTRY_FIELDS` (those present), checked; raises ``BundleError``.

    >>> check_entry_fields({"exits": [1, 2], "exit_histogram": [0.25, 0.75]}, "sets[0]")
    {'exits': [1, 2], 'exit_histogram': [0.25, 0.75]}
    """
    from lab.runtime.bundle import BundleError

    got = {k: row[k] for k in ENTRY_FIELDS if k in row}
    exits = got.get("exits")
    n = len(exits) if isinstance(exits, list) else 0
    if "exits" in got and (
        not n
        or any(_whole(k, 0, 1 << 16) is None for k in exits)  # type: ignore[union-attr]
        or any(b <= a for a, b in itertools.pairwise(exits))  # type: ignore[arg-type]
    ):
        raise BundleError(f"{where}.exits is {exits!r}, expected increasing layer counts")
    for key, hi in (("exit_histogram", 1.0), ("exit_latency_ms", math.inf)):
        if key in got and (not _numbers(got[key], 0.0, hi) or len(got[key]) != n):
            raise BundleError(
                f"{where}.{key} is {got[key]!r}, expected one number in [0, {hi}] per exit"
            )
    if "exit_histogram" in got and abs(sum(got["exit_histogram"]) - 1.0) > 1e-6:
        raise BundleError(f"{where}.exit_histogram sums to {sum(got['exit_histogram'])}, not 1")
    if "threshold" in got and not _numbers([got["threshold"]], 0.0, 1.0):
        raise BundleError(f"{where}.threshold is {got['threshold']!r}, expected a number in [0, 1]")
    if "depth" in got and _whole(got["depth"], 0, 1 << 16) is None:
        raise BundleError(f"{where}.depth is {got['depth']!r}, expected a layer count")
    if "decoder" in got and not isinstance(got["decoder"], str):
        raise BundleError(f"{where}.decoder is {got['decoder']!r}, expected a decoder's name")
    return got


def check_entry_plan(
    fields: dict[str, Any], meta: dict[str, Any], where: str, error: type[ValueError]
) -> None:
    """A set row's ``exits`` and ``threshold`` must be its set file's (``meta``)."""
    for key in ("exits", "threshold"):
        if key in fields and fields[key] != meta.get(key):
            raise error(
                f"{where}: {key} {fields[key]!r} in bundle.json but {meta.get(key)!r} in its "
                "set file"
            )


def check_monotone(
    rows: list[tuple[str, int | None, float | None]], where: str, error: type[ValueError]
) -> None:
    """Early exit's thresholds must not rise as the frequency drops (a slower level stops
    inputs no later): ``rows`` are (set, freq_khz, threshold); those without both are
    skipped.

    >>> check_monotone([("a", 1400, 0.9), ("b", 1000, 0.5), ("c", 800, 0.5)], "b", ValueError)
    >>> try:
    ...     check_monotone([("a", 1400, 0.5), ("b", 1000, 0.9)], "b", ValueError)
    ... except ValueError as e:
    ...     print(e)
    b: thresholds must not rise as the frequency drops: set 'b' at 1000 kHz has 0.9,
    set 'a' at 1400 kHz 0.5
    """
    known = sorted(((f, t, n) for n, f, t in rows if f is not None and t is not None), reverse=True)
    for (f_hi, t_hi, n_hi), (f_lo, t_lo, n_lo) in itertools.pairwise(known):
        if t_lo > t_hi:
            raise error(
                f"{where}: thresholds must not rise as the frequency drops: set {n_lo!r} at "
                f"{f_lo} kHz has {t_lo}, set {n_hi!r} at {f_hi} kHz {t_hi}"
            )
