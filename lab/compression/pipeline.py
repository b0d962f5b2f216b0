"""``rt3lab compress`` end to end: dense -> BP -> candidates -> RL search -> joint fine-tune.

Stages, all on one budget (:mod:`lab.compression.budget`), one module each:

1. train the dense model, cached by data, config, budget and seed (:mod:`.dense`);
2. BP: reweighted group lasso, hard pruning to the config's per-layer sparsity, masked
   retraining; rBP (random groups, same per-layer sparsity, same retraining) beside it
   (:mod:`.block_pruning`);
3. PP candidates from the BP weights, per layer per level (:mod:`.pattern_sets`);
4. the latency table measured on this host through the runtime
   (:mod:`.latency.table`, ``--estimator measured``), the deadlines and the reward
   calibrated (:mod:`.search.calibration`), the level combinations worth sampling
   (:mod:`.search.feasible`), the supernet trained (:mod:`.search.supernet`);
5. RL search (:mod:`.search.reinforce`): each child's sets are scored by masked evaluation
   of the supernet on validation tokens (:meth:`Prepared.evaluate`); the reward is RT3's
   (:mod:`.search.reward`);
6. the best child's sets are fine-tuned jointly from the BP backbone (the bundle's
   backbone); BP+rPP (random patterns, matched per layer to the same non-zero count) gets
   the same fine-tuning (:mod:`.finetune`);
7. everything is scored on test tokens and written as a bundle (:mod:`.output`).

From stage 2 on, the dense model teaches every student trained (:mod:`.distill`), unless
``--no-distill``.

A run is keyed by its data, profile, options and BP config: the same command on a
finished bundle leaves it as it is, and an interrupted search resumes from its last
episode (``OUT/search``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.compression.block_pruning import BlockPruned, run_bp
from lab.compression.budget import Budget
from lab.compression.cache import cache_key
from lab.compression.compressor import Compressor
from lab.compression.dense import DenseModel, dense_model
from lab.compression.finetune import finetune_final
from lab.compression.latency.table import TABLE_FILE, LatencyTable
from lab.compression.options import CompressOptions, CompressRequest, Reporter, SilentReporter
from lab.compression.output import write_bundle
from lab.compression.reproducible import deterministic_kernels
from lab.compression.schemes.unmet_deadline import strict_deadlines
from lab.compression.search.calibration import Deadlines, calibrate_deadlines, reward_config
from lab.compression.search.controller import Child, SearchSpace
from lab.compression.search.feasible import Feasible, feasible_combos
from lab.compression.search.reinforce import Outcome, Search, SearchConfig, SearchResult
from lab.compression.search.reward import RewardConfig, reward
from lab.compression.search.supernet import train_supernet
from lab.compression.sparsifier import CompressionError, mask_sparsity
from lab.compression.tasks import LMData, LMTask, Task, load_task

if TYPE_CHECKING:
    from device_profiles import DeviceProfile


def load_lm_data(spec: str, budget: Budget) -> LMData:
    """The corpus of ``--data`` (``builtin`` or ``wikitext2:DIR``), vocabulary capped by budget."""
    task = load_task("rt3-transformer", spec, budget)
    assert isinstance(task, LMTask)
    return task.data


def compress_request(request: CompressRequest, reporter: Reporter | None = None) -> Path:
    """``rt3lab compress`` without the table: check and load what ``request`` names
    (:meth:`CompressRequest.resolve`), then its scheme's builder (:func:`compress` for
    ``rt3``, :mod:`lab.compression.schemes`) on its compute device; returns the bundle's
    path."""
    from lab.compression.schemes import scheme_builder
    from lab.host.compute import compute_device

    build = scheme_builder(request.scheme)  # a scheme not built yet: refused before any data
    task, profile, opts, device = request.resolve()
    with compute_device(device):
        return build(task, profile, opts, reporter)


def compress(
    data: LMData | Task,
    profile: DeviceProfile,
    opts: CompressOptions,
    reporter: Reporter | None = None,
) -> Path:
    """Run the whole pipeline and write the bundle to ``opts.out``; returns its path.

    ``data`` is a task (:mod:`lab.compression.tasks`) or, for RT3's LM, its token corpus.
    """

    rep = reporter or SilentReporter()
    t0 = time.monotonic()
    task = LMTask(data, opts.budget) if isinstance(data, LMData) else data
    c = Compressor(task, profile, opts, rep)
    opts = c.opts  # the thread count resolved (reproducible.run_threads)
    episodes = opts.episodes if opts.episodes is not None else c.budget.episodes
    if episodes < 1:
        raise CompressionError(f"--episodes {episodes}: expected at least 1")
    run_key = run_key_of(c, episodes=episodes, bp=c.bp_config.to_dict())
    done = finished_bundle(opts.out, run_key)
    if done is not None:
        rep.stage("bundle up to date (same data, profile, options and seed)", 1)
        rep.advance()
        return done
    from lab.model.training import torch_threads

    with torch_threads(opts.threads), deterministic_kernels():
        p = prepare_search(c, opts, rep)
        result = verified(p, _search(p, episodes, run_key))
        final = finetune_final(c, p.model, p.bp, p.cands, p.dense.weights, result.best)
        return write_bundle(p, result, final, profile.name, episodes, run_key, t0)


def run_key_of(c: Compressor, **extra: Any) -> str:
    """The key of a run: its data, profile and options (but where it writes, the episodes
    and the scheme, which ``extra`` gives where they matter), then ``extra``."""
    opts = c.opts
    skip = ("out", "episodes", "scheme", "thresholds")  # thresholds: early exit's (branch exit)
    return cache_key(
        {
            "v": 1,
            **c.task.fingerprint(),
            "profile": c.profile.model_dump(mode="json"),
            "options": {k: str(v) for k, v in vars(opts).items() if k not in skip},
            **extra,
        }
    )


@dataclass
class Prepared:
    """Everything before the search: models, masks, candidates, latency, reward, space.

    :meth:`evaluate` scores a child by masked evaluation of the supernet's shared weights.
    """

    c: Compressor
    model: Any
    dense: DenseModel
    bp: BlockPruned
    cands: dict[str, Any]
    table: LatencyTable | None
    deadlines: Deadlines
    rcfg: RewardConfig
    space: SearchSpace
    feasible: Feasible
    supernet_state: dict[str, Any]
    verification: list[dict[str, Any]] = field(default_factory=list)  # verify.SetTiming's

    def evaluate(self, child: Child, episode: int) -> Outcome:
        """Reward of ``child``: estimated latencies, and (if every deadline is met) the
        accuracy of its sets on the supernet's weights (validation, ``child_tokens``)."""
        c = self.c
        sets = c.patterns.set_masks(self.bp.weights, self.bp.masks, self.cands, child)
        _, lats = c.latencies(self.model, sets)
        detail: dict[str, Any] = {
            "levels": [c.opts.levels[i] for i in child.levels],
            "latency_ms": lats,
            "sparsity": [mask_sparsity(m, self.dense.weights)[0] for m in sets],
        }
        if any(lat > lv.deadline_ms for lat, lv in zip(lats, c.levels_spec, strict=True)):
            r = reward(None, lats, c.levels_spec, self.rcfg)
        else:
            accs = [c.score(self.model, m, "child")[0] for m in sets]
            detail["accuracy"] = accs
            r = reward(accs, lats, c.levels_spec, self.rcfg)
        detail["reward_parts"] = r.to_dict()
        return Outcome(r.total, detail)


def prepare_search(
    c: Compressor, opts: CompressOptions, rep: Reporter, with_rbp: bool = True
) -> Prepared:
    """Dense, BP (and rBP), candidates, the latency table, calibration, the level
    combinations worth sampling and the supernet; the model ends on the supernet's weights."""
    model, dense = dense_model(c)
    c.set_teacher(model)  # the dense model teaches every later stage (unless --no-distill)
    bp = run_bp(c, model, dense.state, dense.weights, with_rbp)
    rep.stage("pattern candidates", 1)
    cands = c.patterns.candidates(bp.weights)
    rep.advance()
    table = (
        c.measure_latency(model, bp.weights, bp.masks, cands, opts.out)
        if opts.estimator == "measured"
        else None
    )
    deadlines = calibrate_deadlines(c, model, bp.masks)
    rcfg = reward_config(c, model, bp.masks, dense.valid[0])
    names = tuple(c.task.prunable(model))
    space = SearchSpace(names, len(opts.levels), len(c.levels_spec), opts.slots, opts.n_candidates)
    # deadlines the user gave (a profile's, or MS,MS,MS) are a hard requirement; those
    # derived from the model's own timing rest on measurements a loaded host can skew
    # against each other: then search everything and say so (every scheme's rule)
    strict = strict_deadlines(opts.deadlines)
    feasible = feasible_combos(c, model, bp.weights, bp.masks, cands, space, strict, rep)
    space = replace(space, allowed=feasible.allowed)
    supernet_state = train_supernet(c, model, bp, cands, space)
    return Prepared(
        c, model, dense, bp, cands, table, deadlines, rcfg, space, feasible, supernet_state
    )


def _search(p: Prepared, episodes: int, run_key: str) -> SearchResult:
    """The RL search over ``p.space``, resumed from ``OUT/search`` where it stopped."""
    opts, rep = p.c.opts, p.c.reporter
    search = Search(p.space, SearchConfig(seed=opts.seed), _search_dir(opts.out, run_key))
    rep.stage("RL search (episodes)", episodes)
    if search.episodes_done:
        rep.advance(min(search.episodes_done, episodes), "resumed")
    return search.run(
        p.evaluate,
        episodes,
        on_episode=lambda ep, e: rep.advance(1, f"reward {e['reward']:.3f}"),
    )


def verified(p: Prepared, result: SearchResult) -> SearchResult:
    """``result`` with the winner that passed the end-to-end timing of
    :mod:`lab.compression.search.verify` (under ``--estimator measured``; the search's own
    otherwise), the rounds recorded in ``p.verification`` and a warning printed when none
    passed."""
    from lab.compression.search.verify import verification_warning, verify_winner

    if p.table is None:
        return result
    best = next(e["episode"] for e in result.log if e["reward"] == result.best_reward)
    kept, timings = verify_winner(p, result.log, best)
    p.table.save(p.c.opts.out / TABLE_FILE)  # with the winners' timings, replayed by a rerun
    p.verification = [t.record() for t in timings]
    warning = verification_warning(timings)
    if warning:
        p.c.reporter.stage(warning, 1)
        p.c.reporter.advance()
    return replace(result, best=Child.from_dict(kept["child"]), best_reward=float(kept["reward"]))


def _search_dir(out: Path, run_key: str) -> Path:
    """``OUT/search``, the search state of this run: a state left there by a run with other
    data, profile or options is removed (its episodes were scored under other rules)."""
    import shutil

    state = out / "search"
    stamp = state / "run_key"
    if state.exists() and (not stamp.is_file() or stamp.read_text() != run_key):
        shutil.rmtree(state)
    state.mkdir(parents=True, exist_ok=True)
    stamp.write_text(run_key)
    return state


def finished_bundle(out: Path, run_key: str) -> Path | None:
    """``out`` if it already holds a valid bundle made with exactly these inputs."""
    from lab.runtime.bundle import Bundle

    if not (out / "bundle.json").is_file():
        return None
    try:
        done = Bundle.load(out)
    except ValueError:
        return None
    return out if done.provenance.get("run_key") == run_key else None
