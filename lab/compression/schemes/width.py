"""``rt3lab compress --scheme width``: DynaBERT's width-adaptive Transformer, one width per
DVFS level, as one bundle of pattern sets.

1. the dense model, trained or read from the cache as for RT3 (:mod:`..dense`);
2. every encoder layer's heads and FFN neurons ranked by importance (DynaBERT's first-order
   estimate of the loss change from masking a unit, :mod:`.importance`) and the model
   rewired so that the most important come first (:func:`.width_units.rewire`, the same
   function);
3. the widths (:data:`.width_units.WIDTHS`: 1.0, 0.75, 0.5, 0.25 of the heads and neurons,
   nested) trained jointly from the dense weights: each step the sum of every width's loss,
   equal weights, each distilled from the dense model unless ``--no-distill``
   (DynaBERT's width-adaptive training with its teacher, without its data augmentation),
   for as many steps as RT3's backbone gets after the dense model (BP's two stages, the
   supernet and the final joint fine-tuning);
4. the latency table measured on the widths (the same table code and the same runtime as
   RT3's: :meth:`Compressor.latency_table`), the deadlines by the run's rule (with the
   full width as the anchor where RT3 anchors on BP), and per governor level the most
   accurate width (validation) whose estimate meets the deadline (:mod:`.choose`; where
   none does, the rule of :mod:`.unmet_deadline`); the table and the deadlines come
   before step 3 (a width's cost does not depend on its weights' values), so a deadline
   the user gave that no width meets is refused before any training step;
5. the bundle: the trained, rewired weights as the backbone, the dense model as trained,
   one set per level (``width-<MHz>mhz``, every encoder Linear's mask and the decoder's,
   kept whole) and the provenance (``width``: ranking, counts, training, every width's
   validation accuracy and estimate per level, the choice).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.compression.options import SilentReporter
from lab.compression.sparsifier import CompressionError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from device_profiles import DeviceProfile
    from lab.compression.compressor import Compressor
    from lab.compression.dense import DenseModel
    from lab.compression.options import CompressOptions, Reporter
    from lab.compression.schemes.choose import LevelChoice
    from lab.compression.schemes.width_units import WidthPlan
    from lab.compression.search.calibration import Deadlines
    from lab.compression.tasks import LMData, Task

IMPORTANCE_BATCHES = 8  # training batches the importance is summed over
IMPORTANCE_SEED = 29  # the run's seed offset for those batches (no other stage uses it)
TRAIN_SEED = 17  # as RT3's final joint fine-tuning
IMPORTANCE = (
    "DynaBERT's: |sum over a unit's outputs of grad * output| (the first-order loss change "
    f"from masking it), summed over {IMPORTANCE_BATCHES} training batches, model in eval mode"
)


@dataclass
class Widths:
    """The rewired model's widths: the plan, each width's masks (widest first), the
    importance and the order it gave, and the dense model."""

    plan: WidthPlan
    names: list[str]
    masks: dict[str, dict[str, torch.Tensor]]
    heads: torch.Tensor  # (layers, heads) importance, in the original order
    neurons: torch.Tensor  # (layers, ff)
    head_order: torch.Tensor
    neuron_order: torch.Tensor
    dense: DenseModel


def variant_name(width: float) -> str:
    """A width's name in the provenance.

    >>> variant_name(0.75)
    'w0.75'
    """
    return f"w{width:.2f}"


def build(
    task: LMData | Task,
    profile: DeviceProfile,
    opts: CompressOptions,
    reporter: Reporter | None = None,
) -> Path:
    """Run the width scheme and write its bundle to ``opts.out``; returns its path."""
    from lab.compression.compressor import Compressor
    from lab.compression.pipeline import finished_bundle, run_key_of
    from lab.compression.reproducible import deterministic_kernels
    from lab.compression.schemes.width_units import WIDTHS
    from lab.compression.tasks import LMData, LMTask
    from lab.model.training import torch_threads

    rep = reporter or SilentReporter()
    t0 = time.monotonic()
    task = LMTask(task, opts.budget) if isinstance(task, LMData) else task
    if not isinstance(task, LMTask):
        raise CompressionError(
            "--scheme width: runs on RT3's Transformer LM (--model rt3-transformer) only"
        )
    c = Compressor(task, profile, opts, rep)
    run_key = run_key_of(c, scheme="width", widths=list(WIDTHS))
    done = finished_bundle(c.opts.out, run_key)
    if done is not None:
        rep.stage("bundle up to date (same data, profile, options and seed)", 1)
        rep.advance()
        return done
    with torch_threads(c.opts.threads), deterministic_kernels():
        model, w = prepare_widths(c, WIDTHS)
        deadlines = width_deadlines(c, model, w)  # a strict one no width meets: refused here
        steps = train_widths(c, model, w)
        valid, choices = choose_widths(c, model, w)
        return write_width_bundle(c, model, w, (steps, deadlines, valid, choices), run_key, t0)


def prepare_widths(c: Compressor, widths: tuple[float, ...]) -> tuple[nn.Module, Widths]:
    """The dense model, its units ranked and rewired, and the widths' masks."""
    from lab.compression.dense import dense_model
    from lab.compression.schemes.importance import unit_importance
    from lab.compression.schemes.width_units import rewire, unit_orders, width_masks, width_plan

    model, dense = dense_model(c)
    c.set_teacher(model)  # DynaBERT's teacher: the dense model, before its units move
    plan = width_plan(c.task.model_config(), widths, c.bp_config.block_rows)
    c.reporter.stage("width: ranking heads and neurons", 1)
    with c.seeded(IMPORTANCE_SEED):
        heads, neurons = unit_importance(
            model,
            c.task.objective(),
            IMPORTANCE_BATCHES,
            c.generator(IMPORTANCE_SEED),
            c.budget.batch_size,
        )
    head_order, neuron_order = unit_orders(heads, neurons)
    rewire(model, head_order, neuron_order)
    c.reporter.advance()
    names = [variant_name(x) for x in widths]
    masks = {n: width_masks(plan, i) for i, n in enumerate(names)}
    return model, Widths(plan, names, masks, heads, neurons, head_order, neuron_order, dense)


def train_steps(c: Compressor) -> int:
    """As many joint steps as RT3's backbone gets after the dense model."""
    b = c.budget
    return b.bp_lasso_steps + b.bp_retrain_steps + b.supernet_steps + b.final_steps


def train_widths(c: Compressor, model: nn.Module, w: Widths) -> int:
    """Every width trained jointly on the shared weights (the sum of their losses, equal
    weights); returns the step count.

    Distillation (DynaBERT's teacher: the dense model) is not wired: with
    ``lab.compression.distill`` (branch ``distill``) it is ``c.set_teacher(model)`` on the
    dense model before :func:`prepare_widths` rewires it, and ``c.teacher`` as this
    ``StepPlan``'s last argument, the one place the widths' loss is chosen."""
    from lab.compression.finetune import StepPlan, joint_steps

    b, steps = c.budget, train_steps(c)
    sets = [w.masks[n] for n in w.names]
    weights = [1.0 / len(sets)] * len(sets)
    c.reporter.stage("width: joint training of every width", steps)
    with c.seeded(TRAIN_SEED):
        plan = StepPlan(
            steps, c.generator(TRAIN_SEED), b.batch_size, c.finetune_lr, c.report_step, c.teacher
        )
        joint_steps(model, lambda _g: sets, weights, c.task.objective(), {}, plan)
    return steps


def width_deadlines(c: Compressor, model: nn.Module, w: Widths) -> Deadlines:
    """The latency estimate (measured on the widths, or RT3's op counts) and the deadlines,
    before training (a width's cost does not depend on its weights' values): under
    deadlines the user gave, a level no width meets is refused before any training step
    (:mod:`.unmet_deadline`)."""
    from lab.compression.schemes.choose import choose_per_level
    from lab.compression.schemes.unmet_deadline import strict_deadlines
    from lab.compression.search.calibration import calibrate_deadlines

    buckets = [w.masks[n] for n in w.names]
    if c.opts.estimator == "measured":
        c.latency_table(model, buckets, c.opts.out)
    deadlines = calibrate_deadlines(c, model, buckets[0])  # the full width: the anchor
    if strict_deadlines(c.opts.deadlines):  # the choice without accuracies: refusal only
        unscored = dict.fromkeys(w.names, 0.0)
        choose_per_level(c.levels_spec, w.names, _estimate(c, model, w), unscored, c.opts.estimator)
    return deadlines


def _estimate(c: Compressor, model: nn.Module, w: Widths) -> Any:
    return lambda n, f: c.latency_ms(model, w.masks[n], f)


def choose_widths(
    c: Compressor, model: nn.Module, w: Widths
) -> tuple[dict[str, float], list[LevelChoice]]:
    """Each width's validation accuracy, and the width chosen per governor level (the
    deadlines set by :func:`width_deadlines`)."""
    from lab.compression.schemes.choose import choose_per_level
    from lab.compression.schemes.unmet_deadline import strict_deadlines

    c.reporter.stage("width: scoring every width", len(w.names))
    valid = {}
    for n in w.names:
        valid[n] = c.score(model, w.masks[n], "valid")[0]
        c.reporter.advance()
    choices = choose_per_level(
        c.levels_spec,
        w.names,
        _estimate(c, model, w),
        valid,
        c.opts.estimator,
        strict_deadlines(c.opts.deadlines),
        c.reporter,
    )
    return valid, choices


def write_width_bundle(
    c: Compressor,
    model: nn.Module,
    w: Widths,
    chosen: tuple[int, Deadlines, dict[str, float], list[LevelChoice]],
    run_key: str,
    t0: float,
) -> Path:
    """The bundle: rewired, trained backbone; dense model; one set per level."""
    from lab.runtime.bundle import Bundle

    steps, deadlines, valid, choices = chosen
    c.reporter.stage("writing bundle", 1)
    dense = w.dense
    bundle = Bundle.create(
        c.task.kind,
        c.task.model_config(),
        backbone={k: v.detach().clone() for k, v in model.state_dict().items()},
        dense=dense.state,
        reference={
            "dense": {
                "accuracy": dense.test[0],
                "perplexity": dense.test[1],
                "nonzero_mults": dense.ops,
                "nonzero_adds": dense.ops,
            }
        },
        provenance=_provenance(c, w, deadlines),
        scheme="width",
    )
    bundle.provenance["width"] = _width_record(c, w, steps, valid, choices)
    bundle.provenance["unmet_deadlines"] = [ch.unmet for ch in choices if ch.unmet]
    for ch in choices:
        _add_width_set(bundle, c, model, w, ch)
    bundle.provenance["wall_time_s"] = round(time.monotonic() - t0, 1)
    bundle.provenance["run_key"] = run_key
    bundle.save(c.opts.out)
    c.reporter.advance()
    return c.opts.out


def _add_width_set(
    bundle: Any, c: Compressor, model: nn.Module, w: Widths, ch: LevelChoice
) -> None:
    """Level ``ch``'s width as a set: its encoder masks and the decoder whole (so the
    set covers every Linear and the runtime's FLOP limit counts the decoder's work)."""
    import torch

    from lab.compression.latency.estimators import op_counts
    from lab.runtime.pattern_set import LayerPattern, PatternSet

    masks = dict(w.masks[ch.variant])
    decoder = model.decoder.weight
    masks["decoder"] = torch.ones(decoder.shape, dtype=torch.bool)
    block = c.bp_config.block_rows
    layers = {
        n: LayerPattern.from_mask(n, m, block, c.bp_config.block_cols, "block-column")
        for n, m in masks.items()
    }
    width = w.plan.widths[w.names.index(ch.variant)]
    meta = {"level": width, "latency_ms": ch.estimate_ms, "compacts": True, "width": width}
    acc, ppl = c.score(model, masks, "test")
    ops = op_counts(model, masks, list(c.task.prunable(model)), c.task.seq_len).mults
    name = f"width-{ch.freq_khz // 1000}mhz"
    bundle.add_set(PatternSet(name, layers, meta), ops, ops, acc, ppl, ch.freq_khz)


def _provenance(c: Compressor, w: Widths, deadlines: Deadlines) -> dict[str, Any]:
    """How the bundle was made, as RT3's records it where the two share a stage."""
    from lab.compression.latency.table import TABLE_FILE
    from lab.compression.reproducible import reproducibility_record

    opts, table = c.opts, c.table
    assert opts.threads is not None  # resolved by the Compressor
    cfg = c.bp_config
    return {
        "data": c.task.spec,
        "metric": c.task.metric,
        "seed": opts.seed,
        "episodes": 0,
        "profile": c.profile.name,
        "budget": c.budget.to_dict(),
        "dense_cache": w.dense.info,
        # only the block sizes (the sets' and the latency check's); no BP ran
        "bp_config": {"block_rows": cfg.block_rows, "block_cols": cfg.block_cols},
        "family": "block-column",
        "compacts": True,
        "estimator": opts.estimator,
        "latency_table": None if table is None else table.provenance(TABLE_FILE, c.table_source),
        "deadlines": deadlines.record(
            opts.deadlines, {str(lv.freq_khz): lv.deadline_ms for lv in c.levels_spec}
        ),
        # bp_weights_sha256 is the rewired dense model's digest here (no BP)
        "reproducibility": reproducibility_record(
            opts.threads, c.threads_from, c.table_source, w.dense.state
        ),
        "dense_valid_accuracy": w.dense.valid[0],
    }


def _width_record(
    c: Compressor, w: Widths, steps: int, valid: dict[str, float], choices: list[LevelChoice]
) -> dict[str, Any]:
    """``provenance.width``: the ranking, the widths, their training and the choice."""
    from lab.compression.distill import distill_record

    p = w.plan
    return {
        "multipliers": list(p.widths),
        "heads": dict(zip(w.names, p.heads, strict=True)),
        "neurons": dict(zip(w.names, p.neurons, strict=True)),
        "importance": IMPORTANCE,
        "head_importance": w.heads.tolist(),
        "neuron_importance": w.neurons.tolist(),
        "head_order": w.head_order.tolist(),
        "neuron_order": w.neuron_order.tolist(),
        "training": {
            "steps": steps,
            "from": "the dense model, rewired",
            "loss": "the sum over widths of each width's loss, equal weights",
            "lr": c.finetune_lr,
            "distillation": distill_record(c.opts.distill),
        },
        "valid_accuracy": valid,
        "levels": [ch.record() for ch in choices],
    }
