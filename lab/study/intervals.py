"""The demo's answer with the uncertainty of what it measured (issue 29); ``study schemes``
gives every scheme's the same way (it lives in ``study``, below ``demo``, for both).

`demo_intervals` hands the demo's measurements to ``simulator.bootstrap``: every timed
run of each set at each level (``lab.profiling.samples``: the host profile's runs,
projected to the board's levels as the profile projects their median) and each test
sequence's accuracy of dense and every set (``Evaluation.per_sequence``, the same
sequences for all, so their differences stay paired). Per policy it gives the 95%
intervals of battery hours, on-time inferences and mean accuracy and the share of
resamples running each set at each level; per baseline rt3's gains with their intervals
and whether they straddle 1 (the data do not show a gain); and, beside them, each
policy's battery life within 1 point of dense (``simulator.life_within_dense``).

An evaluation's accuracy is correct predictions over predictions, so a shorter last
window weighs less; the bootstrap takes the plain mean of a resample. The sequences are
therefore handed over as ``accuracy x tokens / mean tokens`` (`accuracy_samples`): their
plain mean is the accuracy exactly, and a resample's mean is its correct predictions over
the split's predictions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from device_profiles.schema import DeviceProfile, Variant
    from lab.compression.evaluation import Evaluation

WITHIN_POINTS = 1.0  # "battery life within 1 point of dense"


def accuracy_samples(
    per_sequence: Mapping[str, Sequence[float]], tokens: Sequence[int]
) -> dict[str, list[float]]:
    """Per set, its sequences' accuracies weighted by their tokens so that the plain mean
    is the token-weighted mean (the evaluation's accuracy); as they are when every
    sequence has the same tokens, or when a weighted value would exceed 1 (a sequence far
    more accurate than the split: the bootstrap then warns that the mean differs).

    >>> accuracy_samples({"bp": [0.5, 0.25]}, [4, 2])
    {'bp': [0.6666666666666666, 0.16666666666666666]}
    >>> accuracy_samples({"bp": [0.5, 0.25]}, [4, 4])
    {'bp': [0.5, 0.25]}
    """
    if not tokens or len(set(tokens)) == 1:
        return {n: list(s) for n, s in per_sequence.items()}
    mean = sum(tokens) / len(tokens)
    weighted = {
        name: [a * t / mean for a, t in zip(s, tokens, strict=True)]
        for name, s in per_sequence.items()
    }
    if any(x > 1.0 for s in weighted.values() for x in s):
        return {n: list(s) for n, s in per_sequence.items()}
    return weighted


def evaluation_sequences(
    evaluation: Evaluation | Mapping[str, Any] | None,
) -> tuple[dict[str, list[float]], list[int]]:
    """Each sequence's accuracy by set and each sequence's tokens, from an ``Evaluation``
    or its ``to_dict(per_sequence=True)`` (``rt3lab evaluate --json --per-sequence``);
    nothing from None or an evaluation without them."""
    if evaluation is None:
        return {}, []
    if isinstance(evaluation, Mapping):
        seq = evaluation.get("per_sequence") or {}
        tokens = list(seq.get("tokens") or [])
        correct = seq.get("correct") or {}
        return {
            n: [c / t for c, t in zip(cs, tokens, strict=True)] for n, cs in correct.items()
        }, tokens
    return dict(evaluation.per_sequence), list(evaluation.sequence_tokens)


def demo_intervals(
    profile: DeviceProfile | str | Path,
    variants: list[Variant] | None,
    evaluation: Evaluation | Mapping[str, Any] | None,
    samples: Mapping[str, Mapping[int, Sequence[float]]] | None,
    policies: Sequence[str] | None = None,
    workload: str = "periodic",
    n: int = 200,
    seed: int = 0,
    points: float = WITHIN_POINTS,
) -> dict[str, Any]:
    """``simulator.bootstrap``'s result (``to_dict()``) over the per-run latencies
    ``samples`` ({variant: {level kHz: [ms, ...]}}, e.g. ``read_latency_samples`` of the
    profile) and ``evaluation``'s per-sequence accuracies, ``n`` resamples seeded by
    ``seed``, plus ``life_within_dense``: each policy's battery life within ``points``
    (default 1) of dense (``LifeWithinDense.to_dict()``; empty, with
    ``life_within_dense_unavailable`` saying why, where a variant has no accuracy).
    Samples of variants or levels the profile does not simulate are left out."""
    from simulator import bootstrap, life_within_dense
    from simulator.errors import SimulatorInputError

    prof = _profile(profile)
    names = {v.name for v in (variants if variants is not None else prof.variants)}
    levels = set(prof.levels_khz)
    latency = {
        name: {int(k): list(runs) for k, runs in by.items() if int(k) in levels}
        for name, by in (samples or {}).items()
        if name in names
    }
    per_seq, tokens = evaluation_sequences(evaluation)
    accuracy = accuracy_samples({k: s for k, s in per_seq.items() if k in names}, tokens)
    result = bootstrap(
        prof,
        variants,
        {k: v for k, v in latency.items() if v},
        accuracy,
        policies=policies,
        workload=workload,
        seed=seed,
        resamples=n,
    )
    out = result.to_dict()
    try:
        rows = life_within_dense(prof, variants, points, policies=policies, workload=workload)
    except SimulatorInputError as exc:
        out["life_within_dense"] = []
        out["life_within_dense_unavailable"] = str(exc)
    else:
        out["life_within_dense"] = [r.to_dict() for r in rows]
    return out


def _profile(profile: DeviceProfile | str | Path) -> DeviceProfile:
    from device_profiles import load_profile

    return profile if not isinstance(profile, str | Path) else load_profile(profile)
