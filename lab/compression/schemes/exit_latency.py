"""Latency of depth and early-exit variants, measured on the runtime, and the choice of one
variant per DVFS level.

**Measured** (:func:`measure_exits`): every variant is a set of one ``ReconfigurableModel``
(the native engine where it runs the model: the runtime ``evaluate`` and ``profile`` run),
timed with its serving call (``serving_call``) in interleaved rounds, the fastest run of
each kept (:func:`lab.compression.latency.timing.fastest_ms`). An early-exit variant is
timed once per exit with ``force_exit``: a sequence stopping at exit ``i`` runs the layers
up to it and scores every earlier exit, as a real input stopping there does. Host
milliseconds are projected to a level by ``latency = a + b/f`` with ``a = 0`` (one host
frequency measured), as the latency table projects (:mod:`lab.compression.latency.table`).

**Deadlines** (:func:`exit_deadlines`): ``--deadlines auto`` or ``dense-top`` scale the
profile's constraints so that the dense model (every layer and the decoder, no exit head)
meets the highest level's exactly, as RT3's bundles anchor (so the schemes' deadlines are
comparable): a depth bundle's full-depth variant, which is that computation, or for early
exit the model run without a set, timed in the same rounds (``dense``). An early exit's
last exit costs more than that (it scored the earlier exits on the way). ``profile`` and explicit
milliseconds as for RT3; ``scaled`` anchors on BP, which these schemes do not have, and is
refused.

**Depth** (:func:`choose_depths`): per level the deepest variant whose projected latency
meets the deadline; where none does, the rule of every scheme
(:mod:`lab.compression.schemes.unmet_deadline`): refused under deadlines the user gave,
else the fastest variant, recorded as missing it.

**Early exit** (:func:`choose_thresholds`): per level the highest threshold whose miss
share is at most :data:`MISS_BOUND`; the miss share of a threshold is the share of the
validation windows that stop at an exit whose projected latency exceeds the level's
deadline (the exit histogram on validation times the per-exit latency). A higher threshold
stops no window earlier, so the miss share only grows with it and the highest feasible
threshold falls with the frequency; it is also clamped to the level above's, so the
thresholds never rise as the frequency drops. Where even threshold 0 (every window at the
first exit, the fastest variant) misses more often, no variant meets the level: the same
rule, and under derived deadlines the level gets 0, recorded as missing its bound. A
threshold fixed by ``--thresholds`` that misses its bound where 0 would not is the user's
choice: recorded as missing it (``meets_deadline`` false), without a note.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lab.compression.sparsifier import CompressionError

if TYPE_CHECKING:
    from torch import nn

    from lab.compression.compressor import Compressor
    from lab.compression.latency.timing import TimingSetup
    from lab.compression.schemes.exit_training import ExitScores
    from lab.compression.search.calibration import Deadlines
    from lab.runtime.exits import ExitPlan

MISS_BOUND = 0.05  # the share of inputs an early-exit level may finish after its deadline
DENSE = "dense"  # ExitTimes' key of the model run without a set (every layer, the decoder)


def parse_thresholds(spec: str | None, scheme: str, n_levels: int) -> tuple[float, ...] | None:
    """``--thresholds``: one number in [0, 1] per governor level, highest frequency first,
    never rising as the frequency drops; early exit only (``CompressionError``, one line).

    >>> parse_thresholds("0.9,0.5,0.5", "early-exit", 3)
    (0.9, 0.5, 0.5)
    >>> try:
    ...     parse_thresholds("0.2,0.5,0.9", "early-exit", 3)
    ... except CompressionError as e:
    ...     print(e)
    --thresholds 0.2,0.5,0.9: must not rise as the frequency drops (0.2 then 0.5)
    """
    import itertools
    import math

    if spec is None:
        return None
    if scheme != "early-exit":
        raise CompressionError(f"--thresholds: applies to --scheme early-exit, not {scheme}")
    try:
        values = tuple(float(x) for x in spec.split(","))
    except ValueError:
        values = ()
    if len(values) != n_levels or not all(math.isfinite(v) and 0 <= v <= 1 for v in values):
        raise CompressionError(
            f"--thresholds {spec}: expected {n_levels} numbers in [0, 1], comma-separated, "
            "highest frequency first"
        )
    for hi, lo in itertools.pairwise(values):
        if lo > hi:
            raise CompressionError(
                f"--thresholds {spec}: must not rise as the frequency drops ({hi} then {lo})"
            )
    return values


@dataclass(frozen=True)
class ExitTimes:
    """Host milliseconds per variant and exit, the host frequency, and what ran them."""

    host_ms: dict[str, list[float]]
    host_khz: int
    runtime: str

    def at(self, name: str, freq_khz: int) -> list[float]:
        """Variant ``name``'s per-exit latency projected to ``freq_khz`` (``a + b/f``)."""
        from lab.profiling.calibrate import fit_latency

        return [
            max(fit_latency([self.host_khz], [ms]).latency_ms(freq_khz), 0.0)
            for ms in self.host_ms[name]
        ]


def measure_exits(model: nn.Module, variants: dict[str, ExitPlan], setup: TimingSetup) -> ExitTimes:
    """Time every exit of every variant on the runtime (see the module)."""
    from lab.compression.latency.timing import fastest_ms
    from lab.model.training import torch_threads
    from lab.runtime.measure import host_freq_khz, make_inputs, timed_rounds
    from lab.runtime.pattern_set import PatternSet
    from lab.runtime.reconfigurable import ReconfigurableModel

    sets = [PatternSet(name, {}, plan.to_meta()) for name, plan in variants.items()]
    with torch_threads(setup.threads):
        base = copy.deepcopy(model).eval()
        inputs = make_inputs(base, setup.batch, setup.seq_len)
        rm = ReconfigurableModel(base, sets, engine_threads=setup.threads)
        run = rm.serving_call(*inputs["args"])

        def setup_for(name: str | None, i: int | None) -> Any:
            def select() -> None:
                rm.switch(name)
                rm.force_exit(i)

            return select

        fns = {DENSE: (setup_for(None, None), run)}  # the model without a set: dense
        fns.update(
            (f"{name}|{i}", (setup_for(name, i), run))
            for name, plan in variants.items()
            for i in range(len(plan.exits))
        )
        raw: dict[str, list[float]] = {}
        timed_rounds(fns, setup.rounds, setup.per_round, warmup=2, raw=raw)
        rm.force_exit(None)
    timed = fastest_ms(raw)
    host = {
        name: [timed[f"{name}|{i}"] for i in range(len(plan.exits))]
        for name, plan in variants.items()
    }
    host[DENSE] = [timed[DENSE]]
    freq = host_freq_khz() or 0
    return ExitTimes(host, freq if freq > 0 else 1_000_000, rm.executor)


def exit_deadlines(c: Compressor, full_ms_top: float) -> Deadlines:
    """Set ``c.levels_spec``'s deadlines (see the module); ``full_ms_top``: the dense
    model's latency at the highest level."""
    from dataclasses import replace

    from lab.compression.search.calibration import Deadlines, anchored, deadline_rule

    rule = deadline_rule(c.opts.deadlines, "measured")
    constraints = tuple(lv.deadline_ms for lv in c.levels_spec)
    if c.explicit_deadlines is not None:
        given = c.explicit_deadlines
        c.levels_spec = [
            replace(lv, deadline_ms=d) for lv, d in zip(c.levels_spec, given, strict=True)
        ]
        return Deadlines("explicit", None, constraints)
    if rule == "profile":
        return Deadlines(rule, 1.0, constraints)
    if rule != "dense-top":
        raise CompressionError(
            f"--deadlines {c.opts.deadlines}: anchors on BP, which --scheme {c.opts.scheme} does "
            "not have; use auto, dense-top, profile or milliseconds per level"
        )
    c.levels_spec, scale = anchored(c.levels_spec, full_ms_top)
    return Deadlines(rule, scale, constraints, "dense", full_ms_top)


@dataclass(frozen=True)
class LevelChoice:
    """One level's variant: its name (depth) or threshold (early exit), its latency at the
    level (mean over the validation histogram for early exit), and whether it meets the
    deadline (early exit: the miss share within :data:`MISS_BOUND`); ``unmet``: the level's
    record when no variant meets its deadline (derived deadlines)."""

    freq_khz: int
    deadline_ms: float
    variant: str
    threshold: float | None
    latency_ms: float
    miss_share: float
    meets: bool
    unmet: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        """The choice as the bundle's provenance records it."""
        return {
            "freq_khz": self.freq_khz,
            "deadline_ms": self.deadline_ms,
            "variant": self.variant,
            "threshold": self.threshold,
            "latency_ms": self.latency_ms,
            "miss_share": self.miss_share,
            "meets_deadline": self.meets,
            "note": None if self.unmet is None else self.unmet["note"],
        }


def _unmet(c: Compressor, lv: Any, variant: str, ms: float) -> dict[str, Any]:
    """The rule of every scheme for a level no variant meets (see the module)."""
    from lab.compression.schemes.unmet_deadline import (
        UnmetDeadline,
        no_variant_meets,
        strict_deadlines,
    )

    miss = UnmetDeadline(lv.freq_khz, lv.deadline_ms, variant, ms, "measured")
    return no_variant_meets(miss, strict_deadlines(c.opts.deadlines), c.reporter)


def fastest_label(name: str, plan: ExitPlan) -> str:
    """How a variant at its fastest is named in a refusal or note: an early-exit variant at
    threshold 0 (every input at its first exit).

    >>> from lab.runtime.exits import ExitPlan
    >>> fastest_label("early-exit", ExitPlan((1, 2), ("exit_heads.1", "decoder"), 0.5))
    'early-exit at threshold 0'
    """
    return f"{name} at threshold 0" if plan.early else name


def check_reachable(c: Compressor, times: ExitTimes, labels: dict[str, str]) -> None:
    """Under deadlines the user gave, the first level that no variant (``labels``: name ->
    how a refusal names it at its fastest) meets even at its first exit is refused
    (``CompressionError``): the choice's rule (see the module) before any training."""
    from lab.compression.schemes.unmet_deadline import strict_deadlines

    if not strict_deadlines(c.opts.deadlines):
        return
    for lv in c.levels_spec:
        lat = {n: times.at(n, lv.freq_khz)[0] for n in labels}
        fastest = min(labels, key=lat.__getitem__)
        if lat[fastest] > lv.deadline_ms:
            _unmet(c, lv, labels[fastest], lat[fastest])


def choose_depths(c: Compressor, times: ExitTimes, depths: dict[str, int]) -> list[LevelChoice]:
    """Per level, the deepest variant (``depths``: name -> layers) meeting its deadline;
    none: the rule of :mod:`~lab.compression.schemes.unmet_deadline` (the fastest)."""
    out = []
    by_depth = sorted(depths, key=depths.__getitem__, reverse=True)
    for lv in c.levels_spec:
        lat = {n: times.at(n, lv.freq_khz)[0] for n in by_depth}
        fits = [n for n in by_depth if lat[n] <= lv.deadline_ms]
        if fits:
            name = fits[0]
            out.append(LevelChoice(lv.freq_khz, lv.deadline_ms, name, None, lat[name], 0.0, True))
            continue
        name = min(reversed(by_depth), key=lat.__getitem__)  # the shallowest on a tie
        unmet = _unmet(c, lv, name, lat[name])
        out.append(
            LevelChoice(lv.freq_khz, lv.deadline_ms, name, None, lat[name], 1.0, False, unmet)
        )
    return out


def miss_share(hist: list[float], lat: list[float], deadline_ms: float) -> float:
    """The share of inputs stopping at an exit slower than ``deadline_ms``.

    >>> miss_share([0.7, 0.3], [1.0, 2.0], 1.5)
    0.3
    """
    return float(sum(h for h, t in zip(hist, lat, strict=True) if t > deadline_ms))


def choose_thresholds(
    c: Compressor,
    times: ExitTimes,
    name: str,
    valid: ExitScores,
    fixed: tuple[float, ...] | None = None,
) -> list[LevelChoice]:
    """Per level, the threshold (see the module), or the ``fixed`` ones (``--thresholds``)."""
    cands = sorted({0.0, 1.0, *(x for cs in valid.confidence for x in cs)}, reverse=True)
    out: list[LevelChoice] = []
    cap = 1.0
    for i, lv in enumerate(c.levels_spec):
        lat = times.at(name, lv.freq_khz)
        unmet = None
        if miss_share(valid.histogram(0.0), lat, lv.deadline_ms) > MISS_BOUND:
            # not even threshold 0 (every window at the first exit, the fastest) meets it
            unmet = _unmet(c, lv, f"{name} at threshold 0", lat[0])
        if fixed is not None:
            t = fixed[i]
        else:
            ok = [
                x
                for x in cands
                if miss_share(valid.histogram(x), lat, lv.deadline_ms) <= MISS_BOUND
            ]
            t = min(ok[0] if ok else 0.0, cap)
        cap = t
        hist = valid.histogram(t)
        miss = miss_share(hist, lat, lv.deadline_ms)
        mean = sum(h * x for h, x in zip(hist, lat, strict=True))
        meets = miss <= MISS_BOUND
        out.append(LevelChoice(lv.freq_khz, lv.deadline_ms, name, t, mean, miss, meets, unmet))
    return out
