"""One point of a deadline study, on a worker: the search re-run at the point's deadlines,
the chosen sets fine-tuned and re-scored on the test split.

What is re-run, per point, exactly as ``compress`` runs it from its stage 4 on (the
functions are ``compress``'s own): the level combinations worth sampling at these
deadlines (:func:`lab.compression.search.feasible.feasible_combos`), the reward's
normalisation (:func:`lab.compression.search.calibration.reward_config`), the supernet
trained on random children of that space (``search.supernet.train_supernet``), RT3's
REINFORCE search (``search.methods.rl_search``, the bundle's seed and episodes), the best
child's sets fine-tuned jointly (``finetune.finetune_sets``) and scored on the test split
(``finetune.score_sets``, as ``evaluate`` scores), with BP's mask on that fine-tuned
backbone. What is re-used from the bundle: BP's weights run again from its dense model
and checked against compress's digest (else the backbone, :mod:`lab.study.setup` says
why), the dense weights, BP's mask, the options, the BP config, the measured latency table
(the search's estimate) and the candidates fitted on the start's weights.

Where no level combination is estimated within ``FEASIBLE_MARGIN`` of every deadline,
the point's deadlines being derived from the model's timing, the rule of every scheme for
those (:mod:`lab.compression.schemes.unmet_deadline`) applies: it searches every
combination, as RT3 does, its reward's timing penalty decides, and the point says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from lab.compression.compressor import Compressor
    from lab.compression.latency.table import LatencyTable
    from lab.compression.search.controller import SearchSpace
    from lab.compression.search.feasible import Feasible
    from lab.study.setup import StudyBase


@dataclass(frozen=True)
class PointSpec:
    """What a worker needs for one point: the bundle, the per-level deadlines (ms, highest
    frequency first), the latency table (sent along: it is this host's, where the sets are
    timed), the search's episodes and the threads."""

    index: int
    bundle: str
    deadlines_ms: tuple[float, ...]
    table: LatencyTable
    episodes: int
    threads: int


@dataclass
class PointSets:
    """A point's chosen sets (one per governor level, highest frequency first): their
    figures, masks and (where the task gives them) per-sequence test accuracies, BP's
    figures on the point's backbone, and the search's record."""

    index: int
    sets: list[dict[str, Any]]
    masks: dict[str, dict[str, Any]]
    bp: dict[str, Any]
    search: dict[str, Any]
    sequences: dict[str, list[float]] = field(default_factory=dict)
    wall_s: float = 0.0


def sequence_accuracies(
    c: Compressor, model: nn.Module, masks: dict[str, Any] | None
) -> list[float] | None:
    """Each test sequence's accuracy under ``masks``, scored as ``evaluate`` scores, where
    the task gives them (``score_sequences``); else None. The last window of an LM's split
    may be shorter, so each is weighted by its tokens over the mean (``correct / mean
    tokens``): their plain mean, which the bootstrap takes, is then the token-weighted
    accuracy exactly (plain accuracies where a weighted one would exceed 1)."""
    from lab.compression.finetune import applied_masks
    from lab.compression.tasks import LMTask

    each = getattr(c.task, "score_sequences", None)
    if each is None:
        return None
    limit = c.budget.report_tokens if isinstance(c.task, LMTask) else None
    with applied_masks(model, masks or {}):
        s = each(model, "test", limit, c.opts.threads)
    if not s.tokens:
        return None
    mean = sum(s.tokens) / len(s.tokens)
    weighted = [c / mean for c in s.correct]
    return weighted if max(weighted) <= 1.0 else s.accuracies()


def _space(
    c: Compressor, base: StudyBase, model: nn.Module
) -> tuple[SearchSpace, Feasible, str | None]:
    """The search space at ``c``'s deadlines, the level combinations chosen on it and, where
    no level combination is feasible, why every combination is searched instead."""
    from lab.compression.search.controller import SearchSpace
    from lab.compression.search.feasible import feasible_combos

    o = c.opts
    names = tuple(base.bp.weights)
    space = SearchSpace(names, len(o.levels), len(c.levels_spec), o.slots, o.n_candidates)
    # the point's deadlines are derived (dense-top, scaled): compress's rule for those
    b = base.bp
    feasible = feasible_combos(c, model, b.weights, b.masks, base.cands, space, strict=False)
    if feasible.note:  # every combination searched, on the space as it is
        return space, feasible, feasible.note
    return replace(space, allowed=feasible.allowed), feasible, None


def _search(spec: PointSpec, base: StudyBase) -> tuple[Compressor, nn.Module, Any, dict]:
    """The search at the point's deadlines: the compressor, the model (on the supernet's
    weights), the best child and the search's record."""
    from lab.compression.pipeline import Prepared
    from lab.compression.search.calibration import calibrate_deadlines, reward_config
    from lab.compression.search.methods import rl_search
    from lab.compression.search.supernet import train_supernet

    c = base.compressor(spec.deadlines_ms, spec.table)
    model = base.model()
    bp, dense = base.bp, base.dense
    deadlines = calibrate_deadlines(c, model, bp.masks)
    rcfg = reward_config(c, model, bp.masks, dense.valid[0])
    space, feasible, note = _space(c, base, model)
    state = train_supernet(c, model, bp, base.cands, space)
    p = Prepared(
        c, model, dense, bp, base.cands, spec.table, deadlines, rcfg, space, feasible, state
    )
    runs = rl_search(space, p.evaluate, spec.episodes, c.opts.seed)
    first = max(range(len(runs)), key=lambda i: runs[i][1].reward)  # the first of equal
    best, outcome, verification = _verified(p, runs, first)
    record = {
        "method": "rl",
        "episodes": spec.episodes,
        "best_reward": outcome.reward,
        "best_child": best.to_dict(),
        "best_detail": outcome.detail,
        "level_combinations": {
            "allowed": 0 if note else len(space.allowed or space.combos),  # as compress counts
            "searched": len(space.allowed or space.combos),
            "of": len(space.combos),
        },
        "note": note,
        "verification": verification,
    }  # fmt: skip
    return c, model, best, record


def _verified(p: Any, runs: list[tuple[Any, Any]], first: int) -> tuple[Any, Any, list[dict]]:
    """The child to keep of ``runs`` (the search's, ``first`` its winner), timed end to end
    as compress times its winner (:mod:`lab.compression.search.verify`, under a measured
    table), its outcome and the rounds' records."""
    from lab.compression.search.verify import verify_winner

    if p.table is None:
        return runs[first][0], runs[first][1], []
    log = [{"episode": i, "reward": o.reward, "child": ch.to_dict(), **o.detail}
           for i, (ch, o) in enumerate(runs)]  # fmt: skip
    kept, timings = verify_winner(p, log, first)
    best, outcome = runs[kept["episode"]]
    return best, outcome, [t.record() for t in timings]


def search_point(spec: PointSpec) -> PointSets:
    """Re-run the search at ``spec``'s deadlines, fine-tune the chosen sets and score them
    (and BP's mask on that backbone) on the test split; a dask task (needs torch)."""
    from lab.compression.finetune import finetune_sets, score_sets
    from lab.model.training import torch_threads
    from lab.study.setup import load_base

    t0 = time.perf_counter()
    base = load_base(spec.bundle, spec.threads)
    with torch_threads(spec.threads):
        c, model, best, record = _search(spec, base)
        sets = c.patterns.set_masks(base.bp.weights, base.bp.masks, base.cands, best)
        finetune_sets(c, model, base.bp, sets, "study")
        scored = score_sets(c, model, sets, "pp-", best, base.dense.weights)
        rows, masks = [], {}
        seqs: dict[str, list[float] | None] = {}
        for s in scored:
            rows.append({**s.record(), "latency_estimate_ms": s.latency_ms})
            del rows[-1]["latency_ms"]
            masks[s.name] = {k: v.clone() for k, v in s.masks.items()}
            seqs[s.name] = sequence_accuracies(c, model, s.masks)
        acc, ppl = c.score(model, base.bp.masks, "test")
        seqs["bp"] = sequence_accuracies(c, model, base.bp.masks)
    bp = {"accuracy": acc, "perplexity": ppl}
    each = {k: v for k, v in seqs.items() if v is not None}
    each = each if len(each) == len(seqs) else {}
    return PointSets(spec.index, rows, masks, bp, record, each, time.perf_counter() - t0)


def dense_scores(base: StudyBase) -> tuple[float, float | None, list[float] | None]:
    """The dense model's test accuracy, perplexity and (where the task gives them)
    per-sequence accuracies, scored as ``evaluate`` scores it."""
    from lab.model.training import torch_threads

    c = base.compressor()
    model = base.model()
    model.load_state_dict(base.bundle.dense)
    with torch_threads(base.threads):
        acc, ppl = c.score(model, None, "test")
        return acc, ppl, sequence_accuracies(c, model, None)
