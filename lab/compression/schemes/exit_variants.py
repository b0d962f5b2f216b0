"""The depth and early-exit schemes' common build: dense model, exit heads trained jointly,
every exit scored and timed, one variant per DVFS level, the bundle.

RT3's model has two encoder layers (``lab.compression.budget.SIZES``), so the granularity
is coarse and reported as it is: depth variants run 0 (the embedding straight to a
decoder), 1 or 2 layers; early exit stops after layer 1 or layer 2. A variant is a set of
the bundle with no masks and its exits (``lab.runtime.exits``): the sets of one
``ReconfigurableModel``, switched by a store (the engine's index), nothing reloaded.

The bundle (``bundle.json``'s ``scheme`` is ``depth`` or ``early-exit``): the backbone is the
trained model with its exit heads; ``dense.safetensors`` the dense model's weights with the
heads as they started (copies of its decoder). Each set's row gives, besides RT3's fields,
for depth ``depth`` and ``decoder``; for early exit ``exits``, ``exit_histogram`` (test
split), ``exit_latency_ms`` (host, per exit) and ``threshold`` (what the simulator reads of
an early-exit set; it refuses them on a set of another scheme). ``nonzero_mults`` and
``nonzero_adds`` are RT3's op count of what the variant runs (:func:`exit_ops`; early exit:
expected over its test histogram), the dense reference's by the same rule.
``provenance.exits`` records the training, the per-variant latencies, the deadline rule and
each level's choice; ``provenance.unmet_deadlines`` the levels no variant meets
(:mod:`lab.compression.schemes.unmet_deadline`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.compression.sparsifier import CompressionError

if TYPE_CHECKING:
    from device_profiles import DeviceProfile
    from lab.compression.compressor import Compressor
    from lab.compression.options import CompressOptions, Reporter
    from lab.compression.schemes.exit_latency import ExitTimes, LevelChoice
    from lab.compression.schemes.exit_training import ExitScores
    from lab.compression.tasks import LMData, Task
    from lab.runtime.exits import ExitPlan


@dataclass(frozen=True)
class Design:
    """What a scheme trains and offers: the exit heads, the exits trained jointly (and the
    decoder of each), and the variants (name -> plan) timed and chosen among."""

    scheme: str
    exit_heads: tuple[int, ...]
    exits: tuple[int, ...]
    heads: tuple[str, ...]
    variants: dict[str, ExitPlan]
    record: dict[str, Any]


def exit_ops(config: dict[str, Any], seq_len: int, plan: ExitPlan, stop: int) -> int:
    """RT3's op count (``lab.compression.latency.estimators.op_counts``: one per weight of
    the layers run, the embedding's included, plus ``2 x seq_len x emb`` per encoder layer
    run) of an inference stopping at exit ``stop`` of ``plan``, every decoder scored on the
    way counted.

    >>> from lab.runtime.exits import ExitPlan
    >>> c = {"vocab_size": 10, "emb": 4, "ff": 2, "layers": 2}
    >>> exit_ops(c, 1, ExitPlan((2,), ("decoder",)), 0)  # op_counts of the whole model
    256
    >>> exit_ops(c, 1, ExitPlan((1, 2), ("exit_heads.1", "decoder"), 0.5), 1)
    296
    """
    e, f, v = config["emb"], config["ff"], config["vocab_size"]
    layer = 4 * e * e + 2 * e * f + 2 * seq_len * e  # weights, then RT3's attention term
    return v * e + plan.exits[stop] * layer + (stop + 1) * e * v


def build_exit_scheme(
    task: LMData | Task,
    profile: DeviceProfile,
    opts: CompressOptions,
    reporter: Reporter | None,
    design_of: Any,
    choose: Any,
) -> Path:
    """The whole build (see the module): ``design_of(layers) -> Design``; ``choose(c, times,
    design, valid) -> [LevelChoice]`` picks each level's variant."""
    from lab.compression.compressor import Compressor
    from lab.compression.options import SilentReporter
    from lab.compression.reproducible import deterministic_kernels
    from lab.compression.tasks import LMData, LMTask
    from lab.model.training import torch_threads

    t0 = time.monotonic()
    rep = reporter or SilentReporter()
    if opts.estimator != "measured" or opts.latency_table is not None:
        given = "--latency-table" if opts.latency_table is not None else "--estimator"
        raise CompressionError(
            f"{given}: --scheme {opts.scheme} times every exit on this host's runtime "
            "(the measured estimator, no table of layer buckets); drop the option"
        )
    task = LMTask(task, opts.budget) if isinstance(task, LMData) else task
    if not isinstance(task, LMTask):
        raise CompressionError(
            f"--scheme {opts.scheme}: runs RT3's Transformer LM only (--model rt3-transformer)"
        )
    c = Compressor(task, profile, opts, rep)
    with torch_threads(c.opts.threads), deterministic_kernels():
        return _build(c, design_of, choose, t0)


def scheme_build(design_of: Any, choose: Any) -> Any:
    """A scheme module's ``build`` (``lab.compression.schemes``' contract): the whole build
    (:func:`build_exit_scheme`) with this scheme's design and choice."""

    def build(
        task: LMData | Task,
        profile: DeviceProfile,
        opts: CompressOptions,
        reporter: Reporter | None = None,
    ) -> Path:
        """The scheme's bundle: dense model, exit heads trained jointly, every exit scored
        and timed, one variant per DVFS level (:mod:`lab.compression.schemes.exit_variants`)."""
        return build_exit_scheme(task, profile, opts, reporter, design_of, choose)

    return build


def _build(c: Compressor, design_of: Any, choose: Any, t0: float) -> Path:
    from lab.compression.dense import dense_model
    from lab.compression.latency.timing import TimingSetup
    from lab.compression.schemes.exit_latency import (
        check_reachable,
        exit_deadlines,
        fastest_label,
        measure_exits,
    )
    from lab.compression.schemes.exit_training import exit_model, score_exits, train_exits

    b, task = c.budget, c.task
    dense_lm, dense = dense_model(c)
    c.set_teacher(dense_lm)  # the dense model teaches every exit (unless --no-distill)
    design: Design = design_of(dense_lm.config.layers)
    model = exit_model(dense_lm, dense.state, list(design.exit_heads))
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    # timed before training (an exit's cost does not depend on its weights' values): a
    # deadline the user gave that no variant meets is refused before any training step
    c.reporter.stage("latency of every exit (measured on the runtime)", 1)
    assert c.opts.threads is not None  # resolved by the Compressor
    setup = TimingSetup(32, 32, c.opts.threads, b.seq_len)
    times = measure_exits(model, design.variants, setup)
    c.reporter.advance()
    deadlines = exit_deadlines(c, times.at(_anchor(design), c.levels_spec[0].freq_khz)[0])
    check_reachable(c, times, {n: fastest_label(n, p) for n, p in design.variants.items()})
    training = train_exits(c, model, design.exits, design.heads)
    c.reporter.stage("scoring every exit", 2)
    data = task.data  # type: ignore[attr-defined]
    valid = score_exits(model, design.exits, design.heads, data.valid, b.seq_len, b.eval_tokens)
    c.reporter.advance()
    test = score_exits(model, design.exits, design.heads, data.test, b.seq_len, b.report_tokens)
    c.reporter.advance()
    choices = choose(c, times, design, valid)
    return _write(
        c, model, start, dense, design, training, valid, test, times, deadlines, choices, t0
    )


def _anchor(design: Design) -> str:
    """The timing the deadlines anchor on: the dense model. A depth bundle's full-depth
    variant is that computation (every layer, the decoder), timed as its own variant, so
    it meets the top level's deadline exactly (as ``dense-max`` does for RT3's); an
    early-exit bundle has no such variant: the model run without a set (``dense``)."""
    from lab.compression.schemes.exit_latency import DENSE

    full = [n for n, p in design.variants.items() if p.heads == ("decoder",) and not p.early]
    deepest = max(full, key=lambda n: design.variants[n].exits[0], default=None)
    return deepest if deepest is not None else DENSE


def _write(
    c: Compressor,
    model: Any,
    start: dict[str, Any],
    dense: Any,
    design: Design,
    training: dict[str, Any],
    valid: ExitScores,
    test: ExitScores,
    times: ExitTimes,
    deadlines: Any,
    choices: list[LevelChoice],
    t0: float,
) -> Path:
    """The bundle of one per-level variant each (see the module)."""
    from lab.compression.reproducible import reproducibility_record
    from lab.runtime.bundle import Bundle

    c.reporter.stage("writing bundle", 1)
    opts, b = c.opts, c.budget
    config = model.config.to_dict()
    bundle = Bundle.create(
        c.task.kind,
        config,
        backbone=model.state_dict(),
        dense=start,
        reference={
            "dense": {
                "accuracy": dense.test[0],
                "perplexity": dense.test[1],
                "nonzero_mults": dense.ops,
                "nonzero_adds": dense.ops,
            }
        },
        provenance={
            "data": c.task.spec,
            "metric": c.task.metric,
            "seed": opts.seed,
            "episodes": 0,
            "profile": c.profile.name,
            "budget": b.to_dict(),
            "dense_cache": dense.info,
            "reproducibility": reproducibility_record(
                opts.threads, c.threads_from, "measured by this run", start
            ),
            "exits": {
                "design": design.record,
                "training": training,
                "host_freq_khz": times.host_khz,
                "runtime": times.runtime,
                "variant_latency_ms": times.host_ms,
                "deadlines": deadlines.record(
                    opts.deadlines, {str(lv.freq_khz): lv.deadline_ms for lv in c.levels_spec}
                ),
                "levels": [ch.record() for ch in choices],
                "valid_histograms": _valid_histograms(design, valid, choices),
            },
            "unmet_deadlines": [ch.unmet for ch in choices if ch.unmet],
        },
        scheme=design.scheme,
    )
    for ch in choices:
        _add_variant(bundle, c, design, test, times, ch, config)
    bundle.provenance["wall_time_s"] = round(time.monotonic() - t0, 1)
    bundle.save(opts.out)
    c.reporter.advance()
    return opts.out


def _valid_histograms(design: Design, valid: ExitScores, choices: list[Any]) -> dict[str, Any]:
    """Early exit: each level's exit histogram on the validation split (what chose it)."""
    if design.scheme != "early-exit":
        return {}
    return {str(ch.freq_khz): valid.histogram(ch.threshold) for ch in choices}


def _add_variant(
    bundle: Any,
    c: Compressor,
    design: Design,
    test: ExitScores,
    times: ExitTimes,
    ch: LevelChoice,
    config: dict[str, Any],
) -> None:
    """One level's set: its plan, test figures, exit histogram and per-exit latency."""
    from dataclasses import replace

    from lab.runtime.pattern_set import PatternSet

    plan = design.variants[ch.variant]
    if ch.threshold is not None:
        plan = replace(plan, threshold=ch.threshold)
    name = f"{'exit' if plan.early else 'depth'}-{ch.freq_khz // 1000}mhz"
    # which of the jointly trained exits this variant's exits are
    index = [design.exits.index(k) for k in plan.exits]
    if plan.early:
        hist = test.histogram(ch.threshold)
        scores = test.at(ch.threshold)
    else:
        hist = [1.0]
        scores = test.at(None, force=index[0])
    ops = round(sum(h * exit_ops(config, c.task.seq_len, plan, i) for i, h in enumerate(hist)))
    if plan.early:  # what the simulator reads of an early-exit set
        fields: dict[str, Any] = {
            "exits": list(plan.exits),
            "exit_histogram": hist,
            "exit_latency_ms": times.host_ms[ch.variant],
            "threshold": ch.threshold,
        }
    else:  # a depth variant: one exit, its latency in provenance.exits.variant_latency_ms
        fields = {"depth": plan.exits[0], "decoder": plan.heads[0]}
    meta = {**plan.to_meta(), "level": ch.record()}
    bundle.add_set(
        PatternSet(name, {}, meta),
        ops,
        ops,
        scores.accuracy,
        scores.perplexity,
        ch.freq_khz,
        exit_fields=fields,
    )
