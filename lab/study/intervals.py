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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from device_profiles.schema import DeviceProfile, Variant
    from lab.compression.evaluation import Evaluation
    from simulator.uncertainty import BootstrapRuns

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
    member = demo_member("the demo's bundle", profile, variants, evaluation, samples, workload)
    runs = member_runs(member, policies, n, seed)
    return _with_life(runs.result().to_dict(), member, policies, points)


@dataclass(frozen=True)
class PoolMember:
    """One bundle of a pool: its profile, variants (None: the profile's), the workload
    it is simulated under, its per-run latencies ({variant: {kHz: [ms, ...]}}) and
    per-sequence accuracies ({variant: [...]}, weighted as ``accuracy_samples`` weighs
    them), all the bootstrap takes."""

    name: str
    profile: DeviceProfile
    variants: list[Variant] | None
    workload: str
    latency: dict[str, dict[int, list[float]]]
    accuracy: dict[str, list[float]]


def demo_member(
    name: str,
    profile: DeviceProfile | str | Path,
    variants: list[Variant] | None,
    evaluation: Evaluation | Mapping[str, Any] | None,
    samples: Mapping[str, Mapping[int, Sequence[float]]] | None,
    workload: str = "periodic",
) -> PoolMember:
    """A pool member from what ``demo_intervals`` takes (samples of variants or levels
    the profile does not simulate are left out)."""
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
    latency = {k: v for k, v in latency.items() if v}
    return PoolMember(name, prof, variants, workload, latency, accuracy)


def member_runs(
    member: PoolMember, policies: Sequence[str] | None, n: int, seed: int
) -> BootstrapRuns:
    """``member``'s bootstrap outcomes: ``n`` resamples seeded by ``seed``."""
    from simulator.uncertainty import bootstrap_runs

    return bootstrap_runs(
        member.profile, member.variants, member.latency, member.accuracy,
        policies=policies, workload=member.workload, seed=seed, resamples=n,
    )  # fmt: skip


def member_counts(members: int, n: int, seed: int) -> list[int]:
    """How many of ``n`` resamples come from each of ``members`` bundles: each resample
    draws its bundle uniformly (seeded by ``seed``); all ``n`` from a pool of one.

    >>> member_counts(1, 200, 0)
    [200]
    >>> sum(member_counts(3, 200, 0))
    200
    """
    import numpy as np

    if members == 1:
        return [n]
    draws = np.random.default_rng([seed, members]).integers(0, members, n)
    return [int(c) for c in np.bincount(draws, minlength=members)]


POOL_SOURCES = (
    "the demo's own bundle and {replicas} replica(s) of it (one commit and seed), each "
    "compressed again from a latency table measured anew (the one source of run-to-run "
    "variation of compress); each resample draws one of the {bundles} bundle(s) uniformly, "
    "then resamples its timed runs and its test sequences"
)


def pooled_intervals(
    members: Sequence[PoolMember],
    policies: Sequence[str] | None = None,
    n: int = 200,
    seed: int = 0,
    points: float = WITHIN_POINTS,
) -> dict[str, Any]:
    """``demo_intervals``'s result over a pool of bundles (the first the demo's own, whose
    figures are the point estimates and the life within ``points`` of dense): each of the
    ``n`` resamples draws a member uniformly (``member_counts``), then resamples that
    member's timed runs and test sequences as ``demo_intervals`` does (member ``i`` seeded
    ``seed + i``). Adds ``bundles`` (the pool's size), ``members`` (per member each
    policy's table and point values, each variant's accuracy, its resamples drawn and its
    bootstrap's warnings; ``warnings`` keeps the first's) and ``sources`` (what the
    intervals include).
    A pool of one gives ``demo_intervals``'s result with those three keys added."""
    from simulator.uncertainty import pool_runs

    counts = member_counts(len(members), n, seed)
    each = [member_runs(m, policies, max(c, 1), seed + i)
            for i, (m, c) in enumerate(zip(members, counts, strict=True))]  # fmt: skip
    for runs, c in zip(each, counts, strict=True):
        if c == 0:  # run for its point values (the first's are the point estimates) alone
            runs.header["resamples"] = 0
            for r in runs.runs.values():
                r.draws.clear()
    out = _with_life(pool_runs(each).result().to_dict(), members[0], policies, points)
    out["warnings"] = list(each[0].header["warnings"])  # the others' go with their members
    out["bundles"] = len(members)
    out["members"] = [
        member_summary(m, r, c) for m, r, c in zip(members, each, counts, strict=True)
    ]
    out["sources"] = POOL_SOURCES.format(bundles=len(members), replicas=len(members) - 1)
    return out


def member_summary(member: PoolMember, runs: BootstrapRuns, drawn: int) -> dict[str, Any]:
    """A member's figures: rt3's sets by level, each variant's accuracy, each policy's
    point values (hours, on-time inferences, mean accuracy) and its resamples drawn."""
    pols = {}
    for p, r in runs.runs.items():
        table, out = r.point if r.point is not None else (None, None)
        pols[p] = {
            "table": None if table is None else {str(k): v for k, v in sorted(table.items())},
            "battery_life_h": None if out is None else out.battery_life_s / 3600.0,
            "on_time_inferences": None if out is None else out.on_time_inferences,
            "mean_accuracy": None if out is None else out.mean_accuracy,
        }
    acc = {v.name: v.accuracy for v in member.variants or member.profile.variants}
    acc.update({k: sum(s) / len(s) for k, s in member.accuracy.items() if s})
    return {"name": member.name, "profile": member.profile.name, "resamples_drawn": drawn,
            "accuracy": acc, "policies": pols,
            "warnings": list(runs.header["warnings"])}  # fmt: skip


def _with_life(
    out: dict[str, Any], member: PoolMember, policies: Sequence[str] | None, points: float
) -> dict[str, Any]:
    """``out`` with each policy's battery life within ``points`` of dense on ``member``."""
    from simulator import life_within_dense
    from simulator.errors import SimulatorInputError

    prof, variants, workload = member.profile, member.variants, member.workload
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
