"""Uncertainty carried into the answer: a bootstrap over what was measured.

A headline (rt3's hours, on-time inferences and mean accuracy against each baseline) is
one point computed from measured latencies and accuracies; whether a pattern set meets a
level's deadline can flip with a few % of latency noise, and a set's accuracy moves with
the test sequences it was scored on. ``bootstrap`` resamples those measurements and
re-runs every policy's choice of sets and its discharge on each resample:

- latency, per variant and level with samples (per-run ms): the median of a bootstrap
  resample of the runs (the point estimate: the median of all of them);
- accuracy, per variant with samples (per-sequence accuracies on the test split, whose
  mean is the accuracy): the mean of a bootstrap resample of the sequences, the SAME
  sequence indices for every variant (they were scored on the same sequences, so their
  differences keep their pairing; the point estimate: the mean of all of them);
- anything without samples is held fixed at the profile's value (the result lists what
  was resampled and what was held);
- an early-exit variant's latency at a level is a distribution over its exits
  (``simulator.exits``); its samples are per-run latencies as any variant's (each run a
  pass over the inputs, so their median is the distribution's mean): a resample moves the
  mean and keeps the shape (the shares, and each exit's latency in proportion to the
  mean).

Each resample runs every policy's table choice (rt3's deadline check, the oracle's
search, an accuracy bound's search) and its discharge in ``fast`` mode (``mean`` for
Poisson's closed form), each distinct table once per resample and governor. The result
gives, per policy, the point estimate and the 2.5 / 97.5 percentiles of battery hours,
on-time inferences and mean accuracy, the share of resamples in which it ran each set at
each level, and per baseline rt3's gain (hours ratio and on-time ratio) with its
interval and whether that interval straddles 1.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts.policies import REFERENCE, compared_policies
from contracts.workloads import PERIODIC
from simulator.accuracy_bound import (
    NoTableWithinBound,
    TableOutcome,
    check_accuracy_loss,
    choose_table,
)
from simulator.api import Discharge, discharge_for
from simulator.device import Device
from simulator.errors import SimulatorInputError
from simulator.headline import headline_workload
from simulator.policies import find_policy, headline_policies
from simulator.workload import parse_workload

if TYPE_CHECKING:
    from device_profiles.schema import DeviceProfile, Variant

DEFAULT_RESAMPLES = 200
LatencySamples = Mapping[str, Mapping[int, Sequence[float]]]
AccuracySamples = Mapping[str, Sequence[float]]


@dataclass(frozen=True)
class Draws:
    """The resampled inputs, one value per resample: ``latency_ms[(variant, kHz)]`` the
    median of resampled runs, ``accuracy[variant]`` the mean of resampled sequences (the
    same sequences for every variant in a resample)."""

    latency_ms: dict[tuple[str, int], list[float]]
    accuracy: dict[str, list[float]]


@dataclass(frozen=True)
class PolicySpread:
    """One policy over the resamples: the point estimate (the unresampled data), its 95%
    interval (2.5 / 97.5 percentiles over the resamples with a table), the share of
    those resamples running each set at each level, and ``without_table``: resamples in
    which it had no table within the accuracy bound (0 without one)."""

    policy: str
    table: dict[int, str] | None
    battery_life_h: float | None
    on_time_inferences: int | None
    mean_accuracy: float | None
    battery_life_h_ci95: tuple[float, float] | None
    on_time_inferences_ci95: tuple[float, float] | None
    mean_accuracy_ci95: tuple[float, float] | None
    variant_share: dict[int, dict[str, float]]
    without_table: int = 0


@dataclass(frozen=True)
class RatioSpread:
    """A ratio of rt3 to a baseline: its point estimate, 95% interval over the
    ``defined`` resamples (both had a table, the baseline's figure > 0) and whether the
    interval holds 1 (the gain could be none, or a loss)."""

    point: float | None
    ci95: tuple[float, float] | None
    straddles_one: bool | None
    defined: int


@dataclass(frozen=True)
class GainSpread:
    """rt3's gain over one baseline: hours and on-time inferences, as ratios."""

    baseline: str
    hours: RatioSpread
    on_time: RatioSpread


@dataclass(frozen=True)
class BootstrapResult:
    """What ``bootstrap`` found: per policy its spread, per baseline rt3's gain, what was
    resampled (``latency_resampled`` as ``variant@kHz``, ``accuracy_resampled`` by
    variant) and what was held fixed, and warnings (a sample statistic that differs from
    the profile's value; the point estimate uses the statistic)."""

    profile: str
    workload: str
    battery_model: str
    mode: str
    resamples: int
    seed: int
    max_accuracy_loss: float | None
    latency_resampled: list[str]
    latency_fixed: list[str]
    accuracy_resampled: list[str]
    accuracy_fixed: list[str]
    policies: list[PolicySpread]
    gains: list[GainSpread]
    warnings: list[str] = field(default_factory=list)

    def policy(self, name: str) -> PolicySpread:
        """The spread of policy ``name``."""
        for p in self.policies:
            if p.policy == name:
                return p
        raise KeyError(name)

    def gain(self, baseline: str) -> GainSpread:
        """rt3's gain over ``baseline``."""
        for g in self.gains:
            if g.baseline == baseline:
                return g
        raise KeyError(baseline)

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts, lists and numbers (``json.dumps`` takes it; level keys become
        strings there)."""
        return _plain(asdict(self))


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def _checked_latency(samples: LatencySamples) -> dict[tuple[str, int], list[float]]:
    out = {}
    for name, levels in samples.items():
        for khz, runs in levels.items():
            runs = list(runs)
            if not runs or not all(
                isinstance(x, int | float) and math.isfinite(x) and x > 0 for x in runs
            ):
                raise SimulatorInputError(
                    f"latency_samples_ms[{name!r}][{khz}]: expected per-run latencies in ms, "
                    f"at least one, each finite and > 0; got {runs[:5]!r}"
                )
            out[(name, int(khz))] = [float(x) for x in runs]
    return out


def _checked_accuracy(samples: AccuracySamples) -> dict[str, list[float]]:
    out = {}
    for name, seqs in samples.items():
        seqs = list(seqs)
        if not seqs or not all(
            isinstance(x, int | float) and math.isfinite(x) and 0 <= x <= 1 for x in seqs
        ):
            raise SimulatorInputError(
                f"accuracy_samples[{name!r}]: expected per-sequence accuracies, at least one, "
                f"each a fraction in [0, 1]; got {seqs[:5]!r}"
            )
        out[name] = [float(x) for x in seqs]
    lengths = {name: len(seqs) for name, seqs in out.items()}
    if len(set(lengths.values())) > 1:
        raise SimulatorInputError(
            "accuracy_samples: every variant must be scored on the same test sequences "
            f"(resampled in pairs); sequences per variant: {lengths}"
        )
    return out


def draw_resamples(
    latency_samples_ms: LatencySamples,
    accuracy_samples: AccuracySamples,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Draws:
    """``resamples`` bootstrap draws of the samples, seeded: per (variant, level) the
    median of a resample of its runs; per variant the mean of a resample of its
    sequences, the same sequence indices for every variant.

    >>> d = draw_resamples({"a": {800: [10.0, 10.0]}}, {"a": [0.2, 0.3], "b": [0.1, 0.2]}, 3)
    >>> d.latency_ms[("a", 800)]
    [10.0, 10.0, 10.0]
    >>> [round(a - b, 12) for a, b in zip(d.accuracy["a"], d.accuracy["b"])]
    [0.1, 0.1, 0.1]
    """
    import numpy as np

    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise SimulatorInputError(f"resamples: expected an integer >= 1, got {resamples!r}")
    latency = _checked_latency(latency_samples_ms)
    accuracy = _checked_accuracy(accuracy_samples)
    rng = np.random.default_rng(seed)
    lat_draws = {}
    for key in sorted(latency):
        runs = np.asarray(latency[key])
        idx = rng.integers(0, len(runs), (resamples, len(runs)))
        lat_draws[key] = np.median(runs[idx], axis=1).tolist()
    acc_draws = {}
    if accuracy:
        m = len(next(iter(accuracy.values())))
        idx = rng.integers(0, m, (resamples, m))  # one draw of sequences for every variant
        acc_draws = {name: np.asarray(s)[idx].mean(axis=1).tolist() for name, s in accuracy.items()}
    return Draws(lat_draws, acc_draws)


def resampled_device(
    device: Device, latency_ms: Mapping[tuple[str, int], float], accuracy: Mapping[str, float]
) -> Device:
    """``device`` with these latencies (ms, by variant and level; others kept; an
    early-exit variant's distribution moved to the new mean, its shape kept) and
    accuracies (by variant; others kept)."""
    specs = []
    for v in device.variants:
        lat = {
            k: latency_ms[(v.name, k)] / 1e3 if (v.name, k) in latency_ms else s
            for k, s in v.latency_s.items()
        }
        exits = {k: d.scaled(lat[k]) if lat[k] != v.latency_s[k] else d for k, d in v.exits.items()}
        acc = accuracy.get(v.name, v.accuracy)
        specs.append(replace(v, latency_s=lat, accuracy=acc, exits=exits))
    return replace(device, variants=tuple(specs))


@dataclass
class _Runs:
    """One policy's outcomes: the point's, then one per resample (None: no table)."""

    point: tuple[dict[int, str], TableOutcome] | None = None
    draws: list[tuple[dict[int, str], TableOutcome] | None] = field(default_factory=list)


def _ci95(values: list[float]) -> tuple[float, float] | None:
    import numpy as np

    if not values:
        return None
    lo, hi = np.percentile(np.asarray(values, dtype=float), [2.5, 97.5])
    return float(lo), float(hi)


def _spread(policy: str, runs: _Runs) -> PolicySpread:
    done = [d for d in runs.draws if d is not None]
    counts: dict[int, Counter] = {}
    for table, _ in done:
        for khz, name in table.items():
            counts.setdefault(khz, Counter())[name] += 1
    share = {k: {n: c / len(done) for n, c in sorted(counts[k].items())} for k in sorted(counts)}
    table, out = runs.point if runs.point is not None else (None, None)
    accs = [o.mean_accuracy for _, o in done if o.mean_accuracy is not None]
    return PolicySpread(
        policy=policy,
        table=table,
        battery_life_h=None if out is None else out.battery_life_s / 3600.0,
        on_time_inferences=None if out is None else out.on_time_inferences,
        mean_accuracy=None if out is None else out.mean_accuracy,
        battery_life_h_ci95=_ci95([o.battery_life_s / 3600.0 for _, o in done]),
        on_time_inferences_ci95=_ci95([float(o.on_time_inferences) for _, o in done]),
        mean_accuracy_ci95=_ci95(accs) if len(accs) == len(done) else None,
        variant_share=share,
        without_table=len(runs.draws) - len(done),
    )


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or den is None or den <= 0 else num / den


def _ratio_spread(rt3: _Runs, base: _Runs, figure: str) -> RatioSpread:
    def value(run: tuple[dict[int, str], TableOutcome] | None) -> float | None:
        return None if run is None else float(getattr(run[1], figure))

    ratios = [_ratio(value(a), value(b)) for a, b in zip(rt3.draws, base.draws, strict=True)]
    defined = [r for r in ratios if r is not None]
    ci = _ci95(defined)
    return RatioSpread(
        point=_ratio(value(rt3.point), value(base.point)),
        ci95=ci,
        straddles_one=None if ci is None else ci[0] <= 1.0 <= ci[1],
        defined=len(defined),
    )


def _point_inputs(
    device: Device, latency: dict[tuple[str, int], list[float]], accuracy: dict[str, list[float]]
) -> tuple[dict[tuple[str, int], float], dict[str, float], list[str]]:
    """The point estimate's inputs (the samples' median and mean) and a warning for each
    that differs from the profile's value."""
    import numpy as np

    lat = {key: float(np.median(runs)) for key, runs in latency.items()}
    acc = {name: float(np.mean(seqs)) for name, seqs in accuracy.items()}
    warnings = []
    for (name, khz), ms in lat.items():
        have = device.variant(name).latency_s.get(khz)
        if have is not None and not math.isclose(have * 1e3, ms, rel_tol=1e-9):
            warnings.append(
                f"latency {name}@{khz}: the samples' median is {ms:.4f} ms, the profile "
                f"says {have * 1e3:.4f} ms; the point estimate uses the median"
            )
    for name, a in acc.items():
        have = device.variant(name).accuracy
        if have is not None and not math.isclose(have, a, rel_tol=0, abs_tol=1e-9):
            warnings.append(
                f"accuracy {name}: the sequences' mean is {a:.6f}, the profile says "
                f"{have:.6f}; the point estimate uses the mean"
            )
    return lat, acc, warnings


def _check_names(device: Device, levels: Sequence[int], latency: dict, accuracy: dict) -> None:
    names = {v.name for v in device.variants}
    for name, khz in latency:
        if name not in names or khz not in levels:
            raise SimulatorInputError(
                f"latency_samples_ms[{name!r}][{khz}]: expected a variant of {sorted(names)} "
                f"at a level of {sorted(levels)} kHz"
            )
    unknown = sorted(set(accuracy) - names)
    if unknown:
        raise SimulatorInputError(
            f"accuracy_samples: unknown variant(s) {unknown}, expected some of {sorted(names)}"
        )


@dataclass(frozen=True)
class _Setup:
    """What every resample shares: each policy's discharge (by its governor) and the
    workload's deadline."""

    workload: str
    seed: int
    mode: str
    deadline_s: float | None
    discharges: dict[str, Discharge]
    governor_of: dict[str, str]
    max_accuracy_loss: float | None

    def run_all(
        self, policies: list[str], latency_ms: Mapping, accuracy: Mapping
    ) -> dict[str, tuple[dict[int, str], TableOutcome] | None]:
        """Every policy's table and outcome on these inputs (None: no table within the
        bound); each distinct table simulated once per governor."""
        out: dict[str, tuple[dict[int, str], TableOutcome] | None] = {}
        for spec, base in self.discharges.items():
            device = resampled_device(base.device, latency_ms, accuracy)
            run = replace(base, device=device)
            measure = run.measure(self.workload, self.seed, self.mode)
            levels = list(device.levels)
            for p in (p for p in policies if self.governor_of[p] == spec):
                try:
                    choice = choose_table(
                        p, device, levels, self.deadline_s, measure, self.max_accuracy_loss
                    )
                except NoTableWithinBound:
                    out[p] = None
                    continue
                out[p] = (choice.table, measure(choice.table))
        return out


def bootstrap_runs(
    profile: DeviceProfile | str | Path,
    variants: list[Variant] | None = None,
    latency_samples_ms: LatencySamples | None = None,
    accuracy_samples: AccuracySamples | None = None,
    *,
    policies: Sequence[str] | None = None,
    workload: str = PERIODIC,
    battery_model: str | None = None,
    capacity_mah: float | None = None,
    governor: str = "profile",
    mode: str = "fast",
    seed: int = 0,
    resamples: int = DEFAULT_RESAMPLES,
    max_accuracy_loss: float | None = None,
    queue: str = "none",
    governor_step: str = "finish",
) -> BootstrapRuns:
    """``bootstrap``'s every outcome, before it is summarised: the point estimate's and
    each resample's, per policy (``BootstrapRuns.result()`` is ``bootstrap``'s result;
    ``pool_runs`` joins the resamples of several)."""
    from simulator.api import _check, _profile

    if mode not in ("fast", "mean"):
        raise SimulatorInputError(f"mode: expected fast or mean for a bootstrap, got {mode!r}")
    if max_accuracy_loss is not None:
        max_accuracy_loss = check_accuracy_loss(max_accuracy_loss)
    prof = _profile(profile)
    workload = headline_workload(prof, workload)
    opts = dict(queue=queue, governor_step=governor_step)
    top = discharge_for(prof, governor, variants, battery_model, capacity_mah, **opts)
    _check(prof, top.device, parse_workload(workload, seed), workload, mode, capacity_mah, None)
    names = [v.name for v in top.device.variants]
    chosen = list(policies) if policies is not None else headline_policies(names)
    governor_of = {p: find_policy(p)[0].governor or governor for p in chosen}
    discharges = {
        spec: discharge_for(prof, spec, variants, battery_model, capacity_mah, **opts)
        for spec in dict.fromkeys(governor_of.values())
    }
    draws = draw_resamples(latency_samples_ms or {}, accuracy_samples or {}, resamples, seed)
    latency = _checked_latency(latency_samples_ms or {})
    accuracy = _checked_accuracy(accuracy_samples or {})
    _check_names(top.device, prof.levels_khz, latency, accuracy)
    point_lat, point_acc, warnings = _point_inputs(top.device, latency, accuracy)
    deadline = parse_workload(workload, seed).deadline_s
    setup = _Setup(workload, seed, mode, deadline, discharges, governor_of, max_accuracy_loss)
    runs = {p: _Runs() for p in chosen}
    for p, got in setup.run_all(chosen, point_lat, point_acc).items():
        runs[p].point = got
    for i in range(resamples):
        lat = {key: values[i] for key, values in draws.latency_ms.items()}
        acc = {name: values[i] for name, values in draws.accuracy.items()}
        for p, got in setup.run_all(chosen, lat, acc).items():
            runs[p].draws.append(got)
    used = sorted({k for d in discharges.values() for k in d.device.levels})
    every = [(v.name, k) for v in top.device.variants for k in used]
    header = {
        "profile": prof.name,
        "workload": workload,
        "battery_model": battery_model or prof.battery.model,
        "mode": mode,
        "resamples": resamples,
        "seed": seed,
        "max_accuracy_loss": max_accuracy_loss,
        "latency_resampled": [f"{n}@{k}" for n, k in every if (n, k) in latency],
        "latency_fixed": [f"{n}@{k}" for n, k in every if (n, k) not in latency],
        "accuracy_resampled": [n for n in names if n in accuracy],
        "accuracy_fixed": [n for n in names if n not in accuracy],
        "warnings": warnings,
    }
    return BootstrapRuns(header, chosen, runs)


@dataclass
class BootstrapRuns:
    """Every policy's outcomes (``runs``: the point estimate's and one per resample) and
    what ``BootstrapResult`` says besides them (``header``: its other fields)."""

    header: dict[str, Any]
    chosen: list[str]
    runs: dict[str, _Runs]

    def result(self) -> BootstrapResult:
        """The outcomes summarised: per policy its spread, per baseline rt3's gain."""
        runs = self.runs
        baselines = compared_policies(self.chosen) if REFERENCE in runs else []
        return BootstrapResult(
            **self.header,
            policies=[_spread(p, runs[p]) for p in self.chosen],
            gains=[
                GainSpread(
                    b,
                    _ratio_spread(runs[REFERENCE], runs[b], "battery_life_s"),
                    _ratio_spread(runs[REFERENCE], runs[b], "on_time_inferences"),
                )
                for b in baselines
            ],
        )


def pool_runs(members: Sequence[BootstrapRuns]) -> BootstrapRuns:
    """One pool of several bootstraps' outcomes (the same policies): the first member's
    point estimate and header, every member's resamples one after another (``resamples``
    their count; warnings of all, once each)."""
    if not members:
        raise SimulatorInputError("pool_runs: expected at least one bootstrap's outcomes")
    first = members[0]
    for m in members[1:]:
        if m.chosen != first.chosen:
            raise SimulatorInputError(
                f"pool_runs: every member must simulate the same policies; {first.chosen} "
                f"and {m.chosen}"
            )
    runs = {
        p: _Runs(first.runs[p].point, [d for m in members for d in m.runs[p].draws])
        for p in first.chosen
    }
    warnings = list(dict.fromkeys(w for m in members for w in m.header["warnings"]))
    total = sum(int(m.header["resamples"]) for m in members)
    header = {**first.header, "resamples": total, "warnings": warnings}
    return BootstrapRuns(header, list(first.chosen), runs)


def bootstrap(
    profile: DeviceProfile | str | Path,
    variants: list[Variant] | None = None,
    latency_samples_ms: LatencySamples | None = None,
    accuracy_samples: AccuracySamples | None = None,
    **options: Any,
) -> BootstrapResult:
    """Bootstrap the headline over the measurements (see the module's docstring).

    Its ``options`` are ``bootstrap_runs``'s keywords:
    ``policies``, ``workload``, ``battery_model``, ``capacity_mah``, ``governor``, ``mode``,
    ``seed``, ``resamples``, ``max_accuracy_loss``, ``queue`` and ``governor_step``.
    ``profile`` and ``variants`` as ``simulate`` takes them; ``latency_samples_ms`` maps a
    variant's name to {level kHz: per-run latencies in ms}; ``accuracy_samples`` maps a
    variant's name to its per-sequence accuracies (every variant the same sequences, in
    the same order). ``policies`` default to rt3 and every baseline the variants allow
    (``headline_policies``); ``workload`` defaults to the headline's ``periodic``;
    ``seed`` seeds both the resampling and random arrivals; ``max_accuracy_loss`` bounds
    every policy's table as ``simulate`` does (a resample without a table within it
    counts in ``without_table``).

    >>> r = bootstrap("rt3-paper", capacity_mah=1, resamples=5,
    ...               latency_samples_ms={"bp": {800000: [200.0, 202.0, 204.0]}})
    >>> r.latency_resampled, r.policy("rt3").variant_share
    (['bp@800000'], {800000: {'bp': 1.0}, 1000000: {'bp': 1.0}, 1400000: {'bp': 1.0}})
    """
    return bootstrap_runs(
        profile, variants, latency_samples_ms, accuracy_samples, **options
    ).result()
