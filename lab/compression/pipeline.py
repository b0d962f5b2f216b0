"""``rt3lab compress`` end to end: dense -> BP -> candidates -> RL search -> joint fine-tune.

Stages, all on one budget (:mod:`lab.compression.budget`):

1. train the dense model (cached by data, config, budget and seed);
2. BP: reweighted group lasso, hard pruning to the config's per-layer sparsity, masked
   retraining; rBP (random groups, same per-layer sparsity, same retraining) beside it;
3. PP candidates from the BP weights (RT3's shrunken search space), per layer per level;
4. the latency table measured on this host through the runtime
   (:mod:`lab.compression.latency_table`, ``--estimator measured``), the deadlines
   calibrated, the supernet trained (:mod:`lab.compression.supernet`);
5. RL search: each child's sets are scored by masked evaluation of the supernet on
   validation tokens; the reward is RT3's (:mod:`lab.compression.reward`);
6. the best child's sets are fine-tuned jointly from the BP backbone (the bundle's
   backbone); BP+rPP (random patterns, matched per layer to the same non-zero count) gets
   the same fine-tuning;
7. everything is scored on test tokens and written as a bundle.

Two calibrations adapt RT3's constants to a model of another size (both recorded in the
bundle, both switchable to RT3's raw values): ``deadlines="scaled"`` multiplies the
profile's timing constraints so that the BP model exactly meets the highest level's (RT3's
115 ms *is* its BP latency at 1.4 GHz), and ``reward_norm="auto"`` normalises accuracy
against the dense model (``acc_hi`` = dense, ``acc_lo`` = dense - ``acc_span``, 2 points)
and runs against BP (``runs_lo`` = BP's runs, ``runs_hi`` = ``runs_lo`` x 4.5 / 2.3, RT3's
ratio), with ``N`` capped at 1 (see :mod:`lab.compression.reward` for why) and a broken
deadline scored as if accuracy were zero. RT3's ``A = -1`` sits above the ``A`` of most
feasible children once accuracy is normalised this tightly, so a child that missed its
deadlines would outrank one that met them. With the full ``N`` range worth 2 points of
weighted accuracy, the search meets the deadlines at the least accuracy cost, rather than
buying runs with accuracy.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lab.compression.block_pruning import BlockPruner, BPConfig, RandomBlockPruner, load_bp_config
from lab.compression.budget import Budget
from lab.compression.cache import (
    cache_key,
    dense_training_sources,
    load_dense,
    save_dense,
    source_fingerprint,
)
from lab.compression.controller import Child, SearchSpace, random_child
from lab.compression.finetune import applied_masks, joint_finetune, train_masked
from lab.compression.latency import ESTIMATORS, OpCounts, estimator_for, op_counts
from lab.compression.latency_table import (
    TABLE_FILE,
    LatencyTable,
    layer_densities,
    measure_table,
)
from lab.compression.pattern_pruning import (
    COMPACTS,
    RT3_LEVELS,
    assign_patterns,
    candidate_patterns,
    check_candidates,
    exclusive_weights,
    fitted_patterns,
    random_patterns,
)
from lab.compression.reward import LevelSpec, RewardConfig, governor_levels, reward
from lab.compression.search import Outcome, Search, SearchConfig
from lab.compression.sparsifier import CompressionError
from lab.compression.supernet import train_supernet
from lab.compression.tasks import LMData, LMTask, Task, load_task

if TYPE_CHECKING:
    import torch
    from torch import nn

    from device_profiles import DeviceProfile

# A level combination is sampled only if every set's estimated latency (with the first
# slots' patterns) is within this factor of its deadline. On the built-in bundle's search
# the estimate of one level spread up to about 10% with the slot choices.
FEASIBLE_MARGIN = 1.15


class Reporter(Protocol):
    """Progress sink: the CLI shows rich bars, tests pass :class:`SilentReporter`."""

    def stage(self, name: str, total: int) -> None:
        """A stage of ``total`` units begins."""

    def advance(self, n: int = 1, note: str = "") -> None:
        """``n`` units of the current stage are done."""


class SilentReporter:
    """A reporter that reports nothing."""

    def stage(self, name: str, total: int) -> None:
        """Ignore."""

    def advance(self, n: int = 1, note: str = "") -> None:
        """Ignore."""


@dataclass(frozen=True)
class CompressOptions:
    """Everything ``compress`` needs besides the data."""

    profile: str
    out: Path
    budget: Budget
    seed: int = 0
    episodes: int | None = None
    bp_config: Path | None = None
    block_rows: int | None = None
    block_cols: int | None = None
    family: str = "block-column"
    # measured (latency table on this host's runtime), op-count (RT3's model) or profile
    estimator: str = "measured"
    # auto (scaled with op-count/profile, dense-top with measured), scaled, dense-top,
    # profile, or one deadline per level
    deadlines: str = "auto"
    reward_norm: str = "auto"
    acc_span: float = 0.02
    loss_weights: tuple[float, ...] | None = None
    levels: tuple[float, ...] = RT3_LEVELS
    slots: int = 4
    n_candidates: int = 10
    candidates: str = "fitted"  # fitted (Lloyd on the BP weights) or rt3 (shrunken space)
    exclusive: float = 1.0  # discount of weights a denser set keeps (exclusive_weights)
    use_cache: bool = True
    threads: int | None = None  # torch threads (default: every core)


@dataclass
class SetScore:
    """One set's figures."""

    name: str
    freq_khz: int | None
    level: float | None
    sparsity: float
    nnz: int
    ops: int
    latency_ms: float | None
    accuracy: float
    perplexity: float
    masks: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)

    def record(self) -> dict[str, Any]:
        """JSON form without the masks."""
        return {
            "name": self.name,
            "freq_khz": self.freq_khz,
            "level": self.level,
            "sparsity": self.sparsity,
            "nnz": self.nnz,
            "nonzero_mults": self.ops,
            "nonzero_adds": self.ops,
            "latency_ms": self.latency_ms,
            "accuracy": self.accuracy,
            "perplexity": self.perplexity,
        }


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield


def _sparsity(
    masks: dict[str, torch.Tensor], weights: dict[str, torch.Tensor]
) -> tuple[float, int]:
    nnz = sum(int(masks[k].sum()) if k in masks else weights[k].numel() for k in weights)
    total = sum(w.numel() for w in weights.values())
    return 1.0 - nnz / total, nnz


class Compressor:
    """The pipeline's state; :func:`compress` drives it stage by stage."""

    def __init__(
        self,
        task: Task,
        profile: DeviceProfile,
        opts: CompressOptions,
        reporter: Reporter,
    ) -> None:
        self.task = task
        self.profile = profile
        self.opts = opts
        self.budget = opts.budget
        self.reporter = reporter
        self.bp_config: BPConfig = load_bp_config(
            opts.bp_config or task.default_bp_config(),
            block_rows=opts.block_rows,
            block_cols=opts.block_cols,
        )
        self.dense_lr, self.finetune_lr = task.learning_rates(opts.budget)
        self.levels_spec: list[LevelSpec] = governor_levels(profile)
        if opts.estimator not in ESTIMATORS:
            raise CompressionError(
                f"--estimator {opts.estimator!r}: expected one of {', '.join(ESTIMATORS)}"
            )
        self.estimator = (
            None if opts.estimator == "measured" else estimator_for(profile, opts.estimator)
        )
        self.table: LatencyTable | None = None  # set by measure_latency (measured estimator)
        n_sets = len(self.levels_spec)
        weights = opts.loss_weights or ((0.5, 0.3, 0.2) if n_sets == 3 else None)
        if weights is None:
            total = sum(lv.energy_j for lv in self.levels_spec)
            weights = tuple(lv.energy_j / total for lv in self.levels_spec)
        if len(weights) != n_sets:
            raise CompressionError(
                f"loss weights {weights}: need one per governor level ({n_sets})"
            )
        self.loss_weights = tuple(float(w) for w in weights)
        self.explicit_deadlines = parse_deadlines(opts.deadlines, n_sets)
        if opts.reward_norm not in ("auto", "rt3"):
            raise CompressionError(f"reward norm {opts.reward_norm!r}: expected auto or rt3")
        check_candidates(opts.candidates)
        if not 0.0 <= opts.exclusive <= 1.0:
            raise CompressionError(f"--exclusive {opts.exclusive}: expected a value in [0, 1]")
        self.timings: dict[str, float] = {}
        self._offered: dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    # --- model -------------------------------------------------------------------------

    def score(
        self, model: nn.Module, masks: dict[str, torch.Tensor] | None, split: str
    ) -> tuple[float, float | None]:
        """(accuracy, perplexity) on validation (child budget) or test (report budget)."""
        b = self.budget
        if isinstance(self.task, LMTask):
            limit = {"valid": b.eval_tokens, "child": b.child_tokens}.get(split, b.report_tokens)
        else:  # examples of a classification task: about a tenth as many as LM tokens
            n = {"valid": b.eval_tokens, "child": b.child_tokens}.get(split)
            limit = max(64, n // 10) if n is not None else None
        split = "valid" if split == "child" else split
        with applied_masks(model, masks or {}):
            return self.task.score(model, split, limit, self.opts.threads)

    # --- stages ------------------------------------------------------------------------

    def train_dense(self, model: nn.Module) -> dict[str, Any]:
        """Train (or load from the cache) the dense model; returns the cache record."""

        b = self.budget
        spec = {
            "what": "dense-lm" if isinstance(self.task, LMTask) else f"dense-{self.task.kind}",
            "v": 1,
            **self.task.fingerprint(),
            "model": self.task.model_config(),
            "seed": self.opts.seed,
            "steps": b.dense_steps,
            "batch": b.batch_size,
            "seq_len": b.seq_len,
            "lr": self.dense_lr,
            "code": source_fingerprint(dense_training_sources()),
        }
        key = cache_key(spec)
        hit = load_dense(key) if self.opts.use_cache else None
        self.reporter.stage("dense training", b.dense_steps)
        if hit is not None:
            model.load_state_dict(hit[0])
            self.reporter.advance(b.dense_steps, "cached")
            return {"cache_key": key, "cached": True}
        with _seeded(self.opts.seed):
            self.task.train_dense(
                model,
                b,
                self.opts.seed,
                self.opts.threads,
                lambda loss: self.reporter.advance(1, f"loss {loss:.2f}"),
            )
        if self.opts.use_cache:
            save_dense(key, model.state_dict(), spec)
        return {"cache_key": key, "cached": False}

    def block_prune(self, model: nn.Module, random: bool) -> dict[str, torch.Tensor]:
        """BP (or rBP when ``random``) on ``model`` in place; returns the masks."""
        import torch

        b = self.budget
        names = list(self.task.prunable(model))
        sparsity = self.bp_config.sparsity_for(names)
        gen = torch.Generator().manual_seed(self.opts.seed + (7 if random else 3))
        pruner = RandomBlockPruner(self.bp_config, gen) if random else BlockPruner(self.bp_config)
        pruner.prepare(model, sparsity)
        label = "rBP" if random else "BP"
        self.reporter.stage(
            f"{label}: group lasso + prune + retrain", b.bp_lasso_steps + b.bp_retrain_steps
        )
        with _seeded(self.opts.seed + (11 if random else 5)):
            tick = lambda s, loss: self.reporter.advance(1, f"loss {loss:.2f}")  # noqa: E731
            if not random:
                train_masked(
                    model,
                    self.task.objective(),
                    b.bp_lasso_steps,
                    pruner.masks,
                    gen,
                    b.batch_size,
                    b.seq_len,
                    self.finetune_lr,
                    penalty=pruner.penalty,
                    on_step=tick,
                )
            pruner.step()
            # rBP gets the lasso phase's steps as extra retraining: the same budget
            steps = b.bp_retrain_steps + (b.bp_lasso_steps if random else 0)
            train_masked(
                model,
                self.task.objective(),
                steps,
                pruner.masks,
                gen,
                b.batch_size,
                b.seq_len,
                self.finetune_lr,
                on_step=tick,
            )
        return pruner.squash_mask()

    def candidates(
        self, weights: dict[str, torch.Tensor], levels: Sequence[float] | None = None
    ) -> dict[str, torch.Tensor]:
        """The search space per layer: ``(n_levels, n_candidates, R, C)``; RT3's shrunken
        space or fitted candidates (:func:`fitted_patterns`), at ``levels`` (default: the
        options' levels)."""
        import torch

        gen = torch.Generator().manual_seed(self.opts.seed + 13)
        cfg = self.bp_config
        o = self.opts
        lv = o.levels if levels is None else levels
        if o.candidates == "fitted":
            return {
                name: fitted_patterns(
                    w, cfg.block_rows, cfg.block_cols, lv, o.family, gen, o.n_candidates
                )
                for name, w in weights.items()
            }
        return {
            name: candidate_patterns(
                w,
                cfg.block_rows,
                cfg.block_cols,
                lv,
                o.family,
                gen,
                keep=o.n_candidates,
                repeats=max(16, o.n_candidates),
            )
            for name, w in weights.items()
        }

    def set_masks(
        self,
        weights: dict[str, torch.Tensor],
        bp: dict[str, torch.Tensor],
        cands: dict[str, torch.Tensor],
        child: Child,
    ) -> list[dict[str, torch.Tensor]]:
        """One mask dict per set (highest frequency first): BP & the child's chosen patterns.

        Every layer's mask is ``bp & assign_patterns(w, offered[slots])`` where ``offered``
        and ``w`` are :meth:`offered_candidates` for the set: the child's slot indices pick
        exactly the patterns that are assigned (with ``opts.exclusive > 0`` a sparser set's
        candidates are refitted to what the denser sets leave *before* its indices are read).
        """
        out: list[dict[str, torch.Tensor]] = []
        used: dict[str, torch.Tensor] = {}
        for s, level in enumerate(child.levels):
            masks = {}
            for li, name in enumerate(weights):
                offered, w = self.offered_candidates(
                    name, weights[name], bp[name], cands[name], level, used.get(name)
                )
                slots = list(child.choices[s][li])
                masks[name] = bp[name] & assign_patterns(w, offered[slots])[1]
            out.append(masks)
            used = {n: used[n] | m if n in used else m.clone() for n, m in masks.items()}
        return out

    def offered_candidates(
        self,
        name: str,
        weight: torch.Tensor,
        bp: torch.Tensor,
        cands: torch.Tensor,
        level: int,
        used: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The candidate patterns a set's slot indices refer to at ``level`` (``(n, R, C)``)
        and the weights they are assigned on.

        The densest set (``used`` None) or ``opts.exclusive == 0``: the layer's fitted
        candidates on the BP weights. A sparser set: candidates refitted at the same level
        on :func:`exclusive_weights` (the squared weight a denser set keeps counts
        ``1 - D``), so it takes weights of its own; memoised per denser-sets mask.
        """
        import hashlib

        w = weight * bp
        if used is None or self.opts.exclusive <= 0:
            return cands[level], w
        key = (name, level, hashlib.blake2b(used.numpy().tobytes(), digest_size=16).digest())
        hit = self._offered.get(key)
        if hit is None:
            wx = exclusive_weights({"w": weight}, {"w": used}, self.opts.exclusive)["w"] * bp
            pats = self.candidates({"w": wx}, [self.opts.levels[level]])["w"][0]
            if len(self._offered) > 4096:
                self._offered.clear()
            hit = self._offered[key] = (pats, wx)
        return hit

    def allowed_combos(
        self,
        model: nn.Module,
        weights: dict[str, torch.Tensor],
        bp: dict[str, torch.Tensor],
        cands: dict[str, torch.Tensor],
        space: SearchSpace,
    ) -> tuple[int, ...]:
        """Level combinations worth sampling: each set's level, with the first slots'
        patterns, estimated within ``FEASIBLE_MARGIN`` of its governor level's deadline.

        The estimate spreads a few percent with the slot choices, hence the margin: only
        combinations clearly over a deadline are barred, the reward still penalises the
        rest. None left means the deadlines cannot be met at any level: an error.
        """
        default = tuple(range(self.opts.slots))
        names = list(weights)
        n_sets = len(self.levels_spec)
        lat: list[list[float]] = []  # [level][governor level]
        for level in range(space.n_levels):
            child = Child((level,), ((default,) * len(names),))
            masks = self.set_masks(weights, bp, cands, child)[0]
            lat.append([self.latency_ms(model, masks, lv.freq_khz) for lv in self.levels_spec])
        allowed = tuple(
            i
            for i, combo in enumerate(space.combos)
            if all(
                lat[combo[s]][s] <= self.levels_spec[s].deadline_ms * FEASIBLE_MARGIN
                for s in range(n_sets)
            )
        )
        if not allowed:

            def best(s: int) -> int:  # the level with the lowest estimate at position s
                return min(range(space.n_levels), key=lambda i: lat[i][s])

            worst = max(
                range(n_sets), key=lambda s: lat[best(s)][s] / self.levels_spec[s].deadline_ms
            )
            lv, i = self.levels_spec[worst], best(worst)
            raise CompressionError(
                f"impossible deadline: at {lv.freq_khz} kHz the best level "
                f"({self.opts.levels[i]}) is estimated ({self.opts.estimator}) at "
                f"{lat[i][worst]:.3f} ms, over the {lv.deadline_ms:.3f} ms timing constraint "
                "(check the profile's workload.timing_constraints, --deadlines or the levels)"
            )
        return allowed

    def latencies(
        self, model: nn.Module, sets: list[dict[str, torch.Tensor]]
    ) -> tuple[list[OpCounts], list[float]]:
        """RT3 op counts and estimated latency of each set at its level."""
        names = list(self.task.prunable(model))
        counts = [op_counts(model, m, names, self.task.seq_len) for m in sets]
        lats = [
            self.latency_ms(model, m, lv.freq_khz)
            for m, lv in zip(sets, self.levels_spec, strict=True)
        ]
        return counts, lats

    def latency_ms(self, model: nn.Module, masks: dict[str, torch.Tensor], freq_khz: int) -> float:
        """Estimated milliseconds of one inference with ``masks`` at ``freq_khz``: from the
        measured table (``measured``) or from RT3's op counts (``op-count``, ``profile``)."""
        if self.estimator is None:
            if self.table is None:
                raise CompressionError("measured estimator: the latency table is not measured yet")
            return self.table.latency_ms(layer_densities(masks), freq_khz)
        names = list(self.task.prunable(model))
        return self.estimator.latency_ms(
            op_counts(model, masks, names, self.task.seq_len), freq_khz
        )

    def measure_latency(
        self,
        model: nn.Module,
        weights: dict[str, torch.Tensor],
        bp: dict[str, torch.Tensor],
        cands: dict[str, torch.Tensor],
        out: Path,
    ) -> LatencyTable:
        """The measured table (``out/latency_table.json``): read back when this host and
        thread count measured it for these layers and buckets, else measured through the
        runtime and written. A corrupt or foreign table is refused, naming it."""
        import torch

        names = list(weights)
        threads = self.opts.threads or torch.get_num_threads()
        default = tuple(range(self.opts.slots))
        buckets = [dict(bp)] + [
            self.set_masks(weights, bp, cands, Child((i,), ((default,) * len(names),)))[0]
            for i in range(len(self.opts.levels))
        ]
        path = out / TABLE_FILE
        want = {
            n: sorted({round(d, 6) for d in [1.0] + [layer_densities(b)[n] for b in buckets]})
            for n in names
        }
        if path.is_file():
            table = LatencyTable.load(path, threads=threads, layers=names)
            if {n: [p[0] for p in v] for n, v in table.layers.items()} == want:
                self.table = table
                return table
        self.reporter.stage("latency table (measured on the runtime)", 1)
        table = measure_table(
            model,
            buckets,
            self.bp_config.block_rows,
            self.bp_config.block_cols,
            threads,
            self.task.seq_len,
        )
        out.mkdir(parents=True, exist_ok=True)
        table.save(path)
        self.reporter.advance()
        self.table = table
        return table


DEADLINE_RULES = {
    "dense-top": "the profile's timing constraints times one factor, chosen so that the "
    "unpruned (dense) model's estimated latency at the highest level equals that level's "
    "constraint: the application's deadline is what the dense model meets at full clock, "
    "and RT3's ratios between the levels' constraints are kept",
    "scaled": "the profile's timing constraints times one factor, chosen so that BP's "
    "estimated latency at the highest level equals that level's constraint (RT3's 115 ms is "
    "its BP latency at 1.4 GHz)",
    "profile": "the profile's timing constraints as they are",
    "explicit": "given per governor level with --deadlines (ms, highest frequency first)",
}


def deadline_rule(spec: str, estimator: str) -> str:
    """The rule ``--deadlines auto`` stands for: ``dense-top`` with the measured estimator,
    ``scaled`` (RT3's anchor, for RT3's own model) otherwise; any other value as it is.

    Under measured latency RT3's BP anchor asks the low levels for speedups over BP
    (1.55x at 1.0 GHz, 2.14x at 0.8 GHz, RT3's 1/f model and constraints) that a runtime
    whose attention and norms do not shrink gives only at 91-99 % sparsity, where the
    quick model's accuracy collapses (see the compression README); the dense anchor keeps
    RT3's ratios between levels and makes ``dense-max`` a baseline that meets the top
    level's deadline.

    >>> deadline_rule("auto", "measured"), deadline_rule("auto", "op-count")
    ('dense-top', 'scaled')
    """
    if spec == "auto":
        return "dense-top" if estimator == "measured" else "scaled"
    return spec


def parse_deadlines(spec: str, n_levels: int) -> tuple[float, ...] | None:
    """``--deadlines``: a named rule (None) or one positive ms value per level.

    >>> parse_deadlines("scaled", 3) is None
    True
    >>> parse_deadlines("0.9,0.8,0.7", 3)
    (0.9, 0.8, 0.7)
    """
    if spec in ("auto", "scaled", "dense-top", "profile"):
        return None
    try:
        values = tuple(float(x) for x in spec.split(","))
    except ValueError:
        values = ()
    if len(values) != n_levels or any(not v > 0 for v in values):
        raise CompressionError(
            f"--deadlines {spec!r}: expected auto, dense-top, scaled, profile or {n_levels} "
            "positive "
            "milliseconds, comma-separated, highest frequency first"
        )
    return values


def load_lm_data(spec: str, budget: Budget) -> LMData:
    """The corpus of ``--data`` (``builtin`` or ``wikitext2:DIR``), vocabulary capped by budget."""
    task = load_task("rt3-transformer", spec, budget)
    assert isinstance(task, LMTask)
    return task.data


def _weights(task: Task, model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: m.weight.detach().clone() for n, m in task.prunable(model).items()}


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
    b = c.budget
    episodes = opts.episodes if opts.episodes is not None else b.episodes
    if episodes < 1:
        raise CompressionError(f"--episodes {episodes}: expected at least 1")
    run_key = cache_key(
        {
            "v": 1,
            **task.fingerprint(),
            "profile": profile.model_dump(mode="json"),
            "options": {k: str(v) for k, v in vars(opts).items() if k not in ("out", "episodes")},
            "episodes": episodes,
            "bp": c.bp_config.to_dict(),
        }
    )
    done = _finished_bundle(opts.out, run_key)
    if done is not None:
        rep.stage("bundle up to date (same data, profile, options and seed)", 1)
        rep.advance()
        return done
    from lab.model.training import torch_threads

    with torch_threads(opts.threads):
        return _compress(c, profile, opts, rep, episodes, run_key, t0)


@dataclass
class Prepared:
    """Everything before the search: models, masks, candidates, latency, reward, space.

    :meth:`evaluate` scores a child by masked evaluation of the supernet's shared weights.
    """

    c: Compressor
    model: Any
    dense_info: dict[str, Any]
    dense_state: dict[str, Any]
    dense_w: dict[str, Any]
    dense_valid: tuple[float, float | None]
    dense_test: tuple[float, float | None]
    dense_ops: int
    bp_masks: dict[str, Any]
    bp_state: dict[str, Any]
    bp_w: dict[str, Any]
    bp_sparsity: float
    bp_nnz: int
    bp_ops: OpCounts
    bp_test: tuple[float, float | None]
    bp_valid: tuple[float, float | None]
    rbp_sparsity: float | None
    rbp_test: tuple[float, float | None] | None
    cands: dict[str, Any]
    table: LatencyTable | None
    scale: float | None
    deadline_mode: str  # the rule applied (``DEADLINE_RULES``), ``explicit`` for given ms
    rcfg: RewardConfig
    space: SearchSpace
    supernet_state: dict[str, Any]

    def evaluate(self, child: Child, episode: int) -> Outcome:
        """Reward of ``child``: estimated latencies, and (if every deadline is met) the
        accuracy of its sets on the supernet's weights (validation, ``child_tokens``)."""
        c, opts = self.c, self.c.opts
        sets = c.set_masks(self.bp_w, self.bp_masks, self.cands, child)
        _, lats = c.latencies(self.model, sets)
        detail: dict[str, Any] = {
            "levels": [opts.levels[i] for i in child.levels],
            "latency_ms": lats,
            "sparsity": [_sparsity(m, self.dense_w)[0] for m in sets],
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
    import torch

    b = c.budget
    task = c.task
    with _seeded(opts.seed):
        model = task.build_model()
    dense_info = c.train_dense(model)
    dense_state = {k: v.clone() for k, v in model.state_dict().items()}
    names = list(task.prunable(model))
    dense_w = _weights(task, model)
    rep.stage("scoring dense", 2)
    dense_valid = c.score(model, None, "valid")
    rep.advance()
    dense_test = c.score(model, None, "test")
    rep.advance()
    dense_ops = op_counts(model, {}, names, task.seq_len).mults

    # --- BP and rBP ------------------------------------------------------------------
    bp_masks = c.block_prune(model, random=False)
    bp_state = {k: v.clone() for k, v in model.state_dict().items()}
    bp_w = _weights(task, model)
    bp_sparsity, bp_nnz = _sparsity(bp_masks, dense_w)
    bp_ops = op_counts(model, bp_masks, names, task.seq_len)
    bp_test = c.score(model, bp_masks, "test")
    bp_valid = c.score(model, bp_masks, "valid")

    rbp_sparsity, rbp_test = None, None
    if with_rbp:
        model.load_state_dict(dense_state)
        rbp_masks = c.block_prune(model, random=True)
        rbp_sparsity, _ = _sparsity(rbp_masks, dense_w)
        rbp_test = c.score(model, rbp_masks, "test")
        model.load_state_dict(bp_state)

    # --- candidates and the latency table ----------------------------------------------
    rep.stage("pattern candidates", 1)
    cands = c.candidates(bp_w)
    rep.advance()
    table = (
        c.measure_latency(model, bp_w, bp_masks, cands, opts.out)
        if opts.estimator == "measured"
        else None
    )

    # --- calibration -----------------------------------------------------------------
    top = c.levels_spec[0]
    rule = deadline_rule(opts.deadlines, opts.estimator)
    # the model whose estimate at the top level the rule anchors on (none: raw constraints)
    anchor_masks = {
        "scaled": bp_masks,
        "dense-top": {n: torch.ones_like(m) for n, m in bp_masks.items()},
    }.get(rule)
    scale = 1.0
    if anchor_masks is not None:
        scale = c.latency_ms(model, anchor_masks, top.freq_khz) / top.deadline_ms
    c.levels_spec = [replace(lv, deadline_ms=lv.deadline_ms * scale) for lv in c.levels_spec]
    if c.explicit_deadlines is not None:
        scale = None
        c.levels_spec = [
            replace(lv, deadline_ms=d)
            for lv, d in zip(c.levels_spec, c.explicit_deadlines, strict=True)
        ]
    if opts.reward_norm == "auto":
        bp_lats = [c.latency_ms(model, bp_masks, lv.freq_khz) for lv in c.levels_spec]
        from lab.compression.reward import runs_per_charge

        runs_bp = float(sum(runs_per_charge(c.levels_spec, bp_lats)))
        acc_lo = dense_valid[0] - opts.acc_span
        rcfg = RewardConfig(
            acc_weights=c.loss_weights,
            acc_lo=acc_lo,
            acc_hi=dense_valid[0],
            runs_lo=runs_bp,
            runs_hi=runs_bp * 4.5 / 2.3,
            violation_a=min(-1.0, -acc_lo / opts.acc_span),  # as if accuracy were zero
            n_max=1.0,
        )
    else:
        rcfg = RewardConfig(acc_weights=c.loss_weights)

    # --- search --------------------------------------------------------------------
    space = SearchSpace(
        tuple(names), len(opts.levels), len(c.levels_spec), opts.slots, opts.n_candidates
    )
    space = replace(space, allowed=c.allowed_combos(model, bp_w, bp_masks, cands, space))

    # --- the supernet: shared weights trained jointly on random children ---------------
    model.load_state_dict(bp_state)
    rep.stage("supernet (joint training on random children)", b.supernet_steps)
    with _seeded(opts.seed + 23):
        train_supernet(
            model,
            lambda g: c.set_masks(bp_w, bp_masks, cands, random_child(space, g)),
            c.loss_weights,
            task.objective(),
            b.supernet_steps,
            bp_masks,
            torch.Generator().manual_seed(opts.seed + 23),
            b.batch_size,
            c.finetune_lr,
            on_step=lambda s, loss: rep.advance(1, f"loss {loss:.2f}"),
        )
    supernet_state = {k: v.clone() for k, v in model.state_dict().items()}

    return Prepared(
        c=c,
        model=model,
        dense_info=dense_info,
        dense_state=dense_state,
        dense_w=dense_w,
        dense_valid=dense_valid,
        dense_test=dense_test,
        dense_ops=dense_ops,
        bp_masks=bp_masks,
        bp_state=bp_state,
        bp_w=bp_w,
        bp_sparsity=bp_sparsity,
        bp_nnz=bp_nnz,
        bp_ops=bp_ops,
        bp_test=bp_test,
        bp_valid=bp_valid,
        rbp_sparsity=rbp_sparsity,
        rbp_test=rbp_test,
        cands=cands,
        table=table,
        scale=scale,
        deadline_mode=rule if c.explicit_deadlines is None else "explicit",
        rcfg=rcfg,
        space=space,
        supernet_state=supernet_state,
    )


def _compress(
    c: Compressor,
    profile: DeviceProfile,
    opts: CompressOptions,
    rep: Reporter,
    episodes: int,
    run_key: str,
    t0: float,
) -> Path:
    import torch

    from lab.runtime.bundle import Bundle
    from lab.runtime.pattern_set import LayerPattern, PatternSet

    b = c.budget
    task = c.task

    p = prepare_search(c, opts, rep)
    model, dense_info, dense_state, dense_w = p.model, p.dense_info, p.dense_state, p.dense_w
    dense_valid, dense_test, dense_ops = p.dense_valid, p.dense_test, p.dense_ops
    bp_masks, bp_state, bp_w, bp_ops = p.bp_masks, p.bp_state, p.bp_w, p.bp_ops
    bp_sparsity, bp_nnz, bp_test, bp_valid = p.bp_sparsity, p.bp_nnz, p.bp_test, p.bp_valid
    rbp_sparsity, rbp_test = p.rbp_sparsity, p.rbp_test
    cands, table, scale, rcfg, space = p.cands, p.table, p.scale, p.rcfg, p.space
    mode = p.deadline_mode
    names = list(task.prunable(model))
    search = Search(space, SearchConfig(seed=opts.seed), _search_dir(opts.out, run_key))
    evaluate = p.evaluate

    rep.stage("RL search (episodes)", episodes)
    if search.episodes_done:
        rep.advance(min(search.episodes_done, episodes), "resumed")
    result = search.run(
        evaluate,
        episodes,
        on_episode=lambda ep, e: rep.advance(1, f"reward {e['reward']:.3f}"),
    )
    best = result.best

    # --- final joint fine-tuning of the best child and of BP+rPP -----------------------
    def finetune_sets(sets: list[dict[str, torch.Tensor]], label: str, seed: int) -> None:
        model.load_state_dict(bp_state)
        rep.stage(f"joint fine-tuning ({label})", b.final_steps)
        with _seeded(seed):
            joint_finetune(
                model,
                sets,
                c.loss_weights,
                task.objective(),
                b.final_steps,
                bp_masks,
                torch.Generator().manual_seed(seed),
                b.batch_size,
                b.seq_len,
                c.finetune_lr,
                on_step=lambda s, loss: rep.advance(1, f"loss {loss:.2f}"),
            )

    def scored(sets: list[dict[str, torch.Tensor]], prefix: str, child: Child) -> list[SetScore]:
        counts, lats = c.latencies(model, sets)
        out = []
        for i, (m, cnt, lat, lv) in enumerate(zip(sets, counts, lats, c.levels_spec, strict=True)):
            acc, ppl = c.score(model, m, "test")
            sp, nnz = _sparsity(m, dense_w)
            out.append(
                SetScore(
                    f"{prefix}{lv.freq_khz // 1000}mhz",
                    lv.freq_khz,
                    opts.levels[child.levels[i]],
                    sp,
                    nnz,
                    cnt.mults,
                    lat,
                    acc,
                    ppl,
                    m,
                )
            )
        return out

    rl_sets = c.set_masks(bp_w, bp_masks, cands, best)
    finetune_sets(rl_sets, "RL sets", opts.seed + 17)
    backbone = {k: v.clone() for k, v in model.state_dict().items()}
    rl_scores = scored(rl_sets, "pp-", best)
    bp_on_backbone = c.score(model, bp_masks, "test")

    rpp_sets = random_matched_sets(
        bp_w, bp_masks, rl_sets, c.bp_config, opts, torch.Generator().manual_seed(opts.seed + 19)
    )
    finetune_sets(rpp_sets, "BP+rPP baseline", opts.seed + 17)
    rpp_scores = scored(rpp_sets, "rpp-", best)

    # --- the bundle --------------------------------------------------------------------
    rep.stage("writing bundle", 1)
    cfg = c.bp_config
    bundle = Bundle.create(
        task.kind,
        task.model_config(),
        backbone=backbone,
        dense=dense_state,
        reference={
            "dense": {
                "accuracy": dense_test[0],
                "perplexity": dense_test[1],
                "nonzero_mults": dense_ops,
                "nonzero_adds": dense_ops,
            },
            "bp": {
                "accuracy": bp_test[0],
                "perplexity": bp_test[1],
                "nonzero_mults": bp_ops.mults,
                "nonzero_adds": bp_ops.adds,
                "sparsity": bp_sparsity,
                "nnz": bp_nnz,
            },
        },
        baselines={
            "rbp": {
                "sparsity": rbp_sparsity,
                "accuracy": rbp_test[0],
                "perplexity": rbp_test[1],
                "compare_to": "bp",
                "bp_accuracy": bp_test[0],
                "bp_sparsity": bp_sparsity,
            },
            "bp+rpp": {
                "sets": [s.record() for s in rpp_scores],
                "compare_to": [s.name for s in rl_scores],
            },
        },
        provenance={
            "data": task.spec,
            "metric": task.metric,
            "seed": opts.seed,
            "episodes": episodes,
            "profile": profile.name,
            "budget": b.to_dict(),
            "dense_cache": dense_info,
            "bp_config": cfg.to_dict(),
            "family": opts.family,
            "candidates": opts.candidates,
            "exclusive": opts.exclusive,
            "compacts": COMPACTS[opts.family],
            "levels": list(opts.levels),
            "estimator": opts.estimator,
            "latency_table": None if table is None else table.provenance(TABLE_FILE),
            "deadlines": {
                "mode": mode,
                "asked": opts.deadlines,
                "rule": DEADLINE_RULES[mode],
                "scale": scale,
                "deadline_ms": {str(lv.freq_khz): lv.deadline_ms for lv in c.levels_spec},
            },
            "reward": {"norm": opts.reward_norm, **rcfg.to_dict()},
            "loss_weights": list(c.loss_weights),
            "dense_valid_accuracy": dense_valid[0],
            "bp_valid_accuracy": bp_valid[0],
            "search": {
                "best_episode": next(
                    e["episode"] for e in result.log if e["reward"] == result.best_reward
                ),
                "best_reward": result.best_reward,
                "best_child": best.to_dict(),
                "rewards": [e["reward"] for e in result.log],
                "scoring": "masked evaluation of a jointly trained supernet (supernet.py)",
                "supernet_steps": b.supernet_steps,
                "child_tokens": b.child_tokens,
                "level_combinations": {
                    "allowed": len(space.allowed or ()),
                    "of": len(space.combos),
                },
            },
        },
    )

    def pattern_set(name: str, masks: dict[str, torch.Tensor], meta: dict[str, Any]) -> PatternSet:
        fam = "elementwise" if opts.family == "elementwise" else None
        layers = {
            n: LayerPattern.from_mask(n, masks[n], cfg.block_rows, cfg.block_cols, fam)
            for n in names
        }
        return PatternSet(name, layers, meta)

    for s in rl_scores:
        bundle.add_set(
            pattern_set(
                s.name,
                s.masks,
                {"level": s.level, "latency_ms": s.latency_ms, "compacts": COMPACTS[opts.family]},
            ),
            s.ops,
            s.ops,
            s.accuracy,
            s.perplexity,
            s.freq_khz,
        )
    bundle.add_set(
        PatternSet(
            "bp",
            {
                n: LayerPattern.from_mask(n, bp_masks[n], cfg.block_rows, cfg.block_cols)
                for n in names
            },
            {"level": None, "what": "the BP mask alone, on the jointly fine-tuned backbone"},
        ),
        bp_ops.mults,
        bp_ops.adds,
        bp_on_backbone[0],
        bp_on_backbone[1],
        None,
    )
    bundle.provenance["wall_time_s"] = round(time.monotonic() - t0, 1)
    bundle.provenance["run_key"] = run_key
    bundle.save(opts.out)
    (opts.out / "search_log.json").write_text(json.dumps(result.log, indent=1))
    rep.advance()
    return opts.out


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


def _finished_bundle(out: Path, run_key: str) -> Path | None:
    """``out`` if it already holds a valid bundle made with exactly these inputs."""
    from lab.runtime.bundle import Bundle

    if not (out / "bundle.json").is_file():
        return None
    try:
        done = Bundle.load(out)
    except ValueError:
        return None
    return out if done.provenance.get("run_key") == run_key else None


def random_matched_sets(
    weights: dict[str, torch.Tensor],
    bp: dict[str, torch.Tensor],
    target_sets: list[dict[str, torch.Tensor]],
    cfg: BPConfig,
    opts: CompressOptions,
    generator: torch.Generator,
) -> list[dict[str, torch.Tensor]]:
    """BP+rPP: per set and layer, random patterns whose zero count makes the layer's
    non-zeros nearest to the target set's (so the comparison is at equal sparsity)."""
    out = []
    R, C = cfg.block_rows, cfg.block_cols
    steps = C if opts.family == "block-column" else R * C
    for target in target_sets:
        masks = {}
        for name, w in weights.items():
            goal = int(target[name].sum())
            best, best_gap = bp[name], abs(int(bp[name].sum()) - goal)
            lo, hi = 1, steps - 1  # binary search on the zeros per pattern
            while lo <= hi:
                n = (lo + hi) // 2
                pats = random_patterns(R, C, [n / steps], opts.slots, opts.family, generator)[0]
                m = bp[name] & assign_patterns(w * bp[name], pats)[1]
                kept = int(m.sum())
                if abs(kept - goal) < best_gap:
                    best, best_gap = m, abs(kept - goal)
                if kept > goal:
                    lo = n + 1
                elif kept < goal:
                    hi = n - 1
                else:
                    break
            masks[name] = best
        out.append(masks)
    return out
