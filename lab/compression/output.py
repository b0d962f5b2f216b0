"""The last stage of ``compress``: the bundle (:class:`lab.runtime.bundle.Bundle`).

It holds the jointly fine-tuned backbone and the dense weights, the chosen sets (one per
governor level, ``pp-<MHz>mhz``) and BP's mask alone (``bp``), each with its test figures;
the references (dense, BP), the baselines as measured here (rBP, BP+rPP), with their masks
and own weights kept under ``baselines/`` so ``evaluate`` re-scores them
(:mod:`lab.compression.kept_baselines`), and the provenance: data, budget, options, BP
config, latency table, deadlines, reward constants and the search's record.
``search_log.json`` beside it keeps every episode.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.compression.distill import distill_record
from lab.compression.latency.table import TABLE_FILE
from lab.compression.pattern_pruning import COMPACTS
from lab.compression.reproducible import reproducibility_record

NO_DISTILL_BP = "no-distill-bp"  # BP's mask on the ablation's backbone

if TYPE_CHECKING:
    from lab.compression.finetune import FinalSets
    from lab.compression.pipeline import Prepared
    from lab.compression.search.reinforce import SearchResult
    from lab.runtime.bundle import Bundle


def write_bundle(
    p: Prepared,
    result: SearchResult,
    final: FinalSets,
    profile: str,
    episodes: int,
    run_key: str,
    t0: float,
) -> Path:
    """Write the bundle of a finished run to the options' ``out``; returns that path."""
    from lab.runtime.bundle import Bundle

    c = p.c
    c.reporter.stage("writing bundle", 1)
    bundle = Bundle.create(
        c.task.kind,
        c.task.model_config(),
        backbone=final.backbone,
        dense=p.dense.state,
        reference=_reference(p),
        baselines=_baselines(p, final),
        provenance={
            **_provenance(p, profile, episodes),
            "search": _search_record(p, result),
            "unmet_deadlines": [p.feasible.unmet] if p.feasible.unmet else [],
        },
    )
    _add_sets(bundle, p, final)
    bundle.provenance["wall_time_s"] = round(time.monotonic() - t0, 1)
    bundle.provenance["run_key"] = run_key
    out = c.opts.out
    bundle.baselines["kept"] = _keep_baselines(out, p, final)
    bundle.save(out)
    (out / "search_log.json").write_text(json.dumps(result.log, indent=1))
    c.reporter.advance()
    return out


def _reference(p: Prepared) -> dict[str, Any]:
    """The dense model's and BP's test figures (BP before the joint fine-tuning)."""
    dense, bp = p.dense, p.bp
    return {
        "dense": {
            "accuracy": dense.test[0],
            "perplexity": dense.test[1],
            "nonzero_mults": dense.ops,
            "nonzero_adds": dense.ops,
        },
        "bp": {
            "accuracy": bp.test[0],
            "perplexity": bp.test[1],
            "nonzero_mults": bp.ops.mults,
            "nonzero_adds": bp.ops.adds,
            "sparsity": bp.sparsity,
            "nnz": bp.nnz,
        },
    }


def _baselines(p: Prepared, final: FinalSets) -> dict[str, Any]:
    """rBP against BP, and BP+rPP's sets against the chosen ones, at equal sparsity."""
    bp = p.bp
    rbp_test = bp.rbp_test
    assert rbp_test is not None  # compress always runs rBP
    return {
        "rbp": {
            "sparsity": bp.rbp_sparsity,
            "accuracy": rbp_test[0],
            "perplexity": rbp_test[1],
            "compare_to": "bp",
            "bp_accuracy": bp.test[0],
            "bp_sparsity": bp.sparsity,
        },
        "bp+rpp": {
            "sets": [s.record() for s in final.rpp],
            "compare_to": [s.name for s in final.rl],
        },
        **_no_distill(p, final),
    }


def _no_distill(p: Prepared, final: FinalSets) -> dict[str, Any]:
    """``--distill-ablation``'s sets: each chosen set, and BP's mask, on the backbone
    fine-tuned without distillation (``{}`` without the ablation)."""
    if final.no_distill is None or final.no_distill_bp is None:
        return {}
    bp = p.bp
    on_bp = {
        "name": NO_DISTILL_BP,
        "sparsity": bp.sparsity,
        "nnz": bp.nnz,
        "accuracy": final.no_distill_bp[0],
        "perplexity": final.no_distill_bp[1],
    }
    return {
        "no-distill": {
            "sets": [s.record() for s in final.no_distill] + [on_bp],
            "compare_to": [s.name for s in final.rl] + ["bp"],
            "what": "the same sets fine-tuned from the same BP model without distillation",
        }
    }


def _provenance(p: Prepared, profile: str, episodes: int) -> dict[str, Any]:
    """How the bundle was made, but for the search's record."""
    c = p.c
    opts, b, table = c.opts, c.budget, p.table
    assert opts.threads is not None  # resolved by the Compressor
    return {
        "data": c.task.spec,
        "metric": c.task.metric,
        "seed": opts.seed,
        "episodes": episodes,
        "profile": profile,
        "budget": b.to_dict(),
        "dense_cache": p.dense.info,
        "bp_config": c.bp_config.to_dict(),
        "family": opts.family,
        "candidates": opts.candidates,
        "exclusive": opts.exclusive,
        "compacts": COMPACTS[opts.family],
        "levels": list(opts.levels),
        "estimator": opts.estimator,
        "latency_table": None if table is None else table.provenance(TABLE_FILE, c.table_source),
        "deadlines": p.deadlines.record(
            opts.deadlines, {str(lv.freq_khz): lv.deadline_ms for lv in c.levels_spec}
        ),
        "reproducibility": reproducibility_record(
            opts.threads, c.threads_from, c.table_source, p.bp.state
        ),
        "reward": {"norm": opts.reward_norm, **p.rcfg.to_dict()},
        "loss_weights": list(c.loss_weights),
        "distill": distill_record(opts.distill, opts.distill_ablation),
        "dense_valid_accuracy": p.dense.valid[0],
        "bp_valid_accuracy": p.bp.valid[0],
    }


def _search_record(p: Prepared, result: SearchResult) -> dict[str, Any]:
    """The best child, every episode's reward and how children were scored."""
    b = p.c.budget
    return {
        "best_episode": next(e["episode"] for e in result.log if e["reward"] == result.best_reward),
        "best_reward": result.best_reward,
        "best_child": result.best.to_dict(),
        "rewards": [e["reward"] for e in result.log],
        "scoring": "masked evaluation of a jointly trained supernet (supernet.py)",
        "supernet_steps": b.supernet_steps,
        "child_tokens": b.child_tokens,
        "level_combinations": p.feasible.record(
            p.c.opts.levels, [lv.freq_khz for lv in p.c.levels_spec], len(p.space.combos)
        ),
        "verification": p.verification,
    }


def _keep_baselines(out: Path, p: Prepared, final: FinalSets) -> dict[str, Any]:
    """rBP's mask and weights, BP+rPP's sets and backbone, written under ``out``."""
    from lab.compression.kept_baselines import write_kept
    from lab.runtime.pattern_set import PatternSet

    c, bp = p.c, p.bp
    names = list(c.task.prunable(p.model))

    def pattern_set(name: str, masks: dict[str, Any], fam: str | None) -> PatternSet:
        cfg = c.bp_config
        return PatternSet(
            name,
            {n: _layer(n, masks[n], cfg.block_rows, cfg.block_cols, fam) for n in names},
            {"baseline": True},
        )

    fam = "elementwise" if c.opts.family == "elementwise" else None
    rbp = None
    if bp.rbp_masks is not None and bp.rbp_state is not None:
        rbp = (bp.rbp_state, pattern_set("rbp", bp.rbp_masks, None))
    rpp = None
    if final.rpp_backbone is not None:
        rpp = (final.rpp_backbone, [pattern_set(s.name, s.masks, fam) for s in final.rpp])
    nd = None
    if final.no_distill is not None and final.no_distill_backbone is not None:
        sets = [pattern_set(s.name, s.masks, fam) for s in final.no_distill]
        nd = (final.no_distill_backbone, [*sets, pattern_set(NO_DISTILL_BP, bp.masks, None)])
    return write_kept(Path(out), rbp, rpp, nd)


def _layer(name: str, mask: Any, rows: int, cols: int, fam: str | None) -> Any:
    from lab.runtime.pattern_set import LayerPattern

    return LayerPattern.from_mask(name, mask, rows, cols, fam)


def _add_sets(bundle: Bundle, p: Prepared, final: FinalSets) -> None:
    """The chosen sets (in the options' family) and BP's mask alone, with their figures."""
    from lab.runtime.pattern_set import LayerPattern, PatternSet

    c = p.c
    cfg, family = c.bp_config, c.opts.family
    names = list(c.task.prunable(p.model))
    fam = "elementwise" if family == "elementwise" else None
    for s in final.rl:
        layers = {
            n: LayerPattern.from_mask(n, s.masks[n], cfg.block_rows, cfg.block_cols, fam)
            for n in names
        }
        meta = {"level": s.level, "latency_ms": s.latency_ms, "compacts": COMPACTS[family]}
        bundle.add_set(
            PatternSet(s.name, layers, meta),
            s.ops,
            s.ops,
            s.accuracy,
            s.perplexity,
            s.freq_khz,
        )
    bp = p.bp
    bundle.add_set(
        PatternSet(
            "bp",
            {
                n: LayerPattern.from_mask(n, bp.masks[n], cfg.block_rows, cfg.block_cols)
                for n in names
            },
            {"level": None, "what": "the BP mask alone, on the jointly fine-tuned backbone"},
        ),
        bp.ops.mults,
        bp.ops.adds,
        final.bp_on_backbone[0],
        final.bp_on_backbone[1],
        None,
    )
