"""One ``compress`` run's shared state: the :class:`Compressor` every stage reads.

It validates the options once (estimator, loss weights, deadlines, reward normalisation,
candidate space, exclusive discount), loads the BP config, splits the profile's governor
into levels, and answers what several stages ask: a seeded RNG (``seeded``,
``generator``: the run's seed plus a fixed offset per stage), how a set scores on
validation or test tokens (``score``), and how long it takes at a DVFS level
(``latency_ms``: the measured table or RT3's op counts).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from lab.compression.block_pruning import BPConfig, load_bp_config
from lab.compression.distill import Teacher, check_ablation
from lab.compression.finetune import applied_masks
from lab.compression.latency.estimators import ESTIMATORS, OpCounts, estimator_for, op_counts
from lab.compression.latency.table import (
    TABLE_FILE,
    LatencyTable,
    layer_densities,
    measure_table,
    read_table,
)
from lab.compression.latency.timing import TimingSetup
from lab.compression.pattern_pruning import check_candidates
from lab.compression.pattern_sets import PatternSets
from lab.compression.reproducible import run_threads
from lab.compression.search.calibration import parse_deadlines
from lab.compression.search.reward import LevelSpec, governor_levels
from lab.compression.sparsifier import CompressionError
from lab.compression.tasks import LMTask, Task

if TYPE_CHECKING:
    import torch
    from torch import nn

    from device_profiles import DeviceProfile
    from lab.compression.options import CompressOptions, Reporter


class Compressor:
    """The run's validated settings, its pattern sets (:attr:`patterns`) and its latency
    estimate; :func:`lab.compression.pipeline.compress` drives the stages with it."""

    def __init__(
        self,
        task: Task,
        profile: DeviceProfile,
        opts: CompressOptions,
        reporter: Reporter,
    ) -> None:
        self.task = task
        self.profile = profile
        # one thread count for the whole run, resolved once (reproducible.run_threads)
        threads, self.threads_from = run_threads(opts.threads)
        self.opts = opts = replace(opts, threads=threads)
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
        if opts.latency_table is not None and opts.estimator != "measured":
            raise CompressionError(
                f"--latency-table {opts.latency_table}: applies to --estimator measured, "
                f"not {opts.estimator}"
            )
        self.table: LatencyTable | None = None  # set by measure_latency (measured estimator)
        # how the table came to be (provenance.reproducibility.latency)
        self.table_source = f"{opts.estimator}: computed from the model, the same on any host"
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
        self.patterns = PatternSets(self.bp_config, opts)
        check_ablation(opts.distill, opts.distill_ablation)
        # the dense model once trained (set_teacher), when distillation is on
        self.teacher: Teacher | None = None

    def set_teacher(self, dense: nn.Module) -> None:
        """Make a frozen copy of the trained ``dense`` model the teacher of every student
        trained from now on (none when ``--no-distill``)."""
        if self.opts.distill is not None:
            self.teacher = Teacher(dense, self.opts.distill)

    # --- randomness and weights ----------------------------------------------------------

    @contextlib.contextmanager
    def seeded(self, offset: int) -> Iterator[None]:
        """Torch's global RNG seeded with the run's seed + ``offset`` inside the block, and
        restored after it."""
        import torch

        with torch.random.fork_rng():
            torch.manual_seed(self.opts.seed + offset)
            yield

    def generator(self, offset: int) -> torch.Generator:
        """A generator seeded with the run's seed + ``offset``."""
        import torch

        return torch.Generator().manual_seed(self.opts.seed + offset)

    def report_step(self, step: int, loss: float) -> None:
        """A training loop's ``on_step``: one unit of the current stage, its loss the note."""
        self.reporter.advance(1, f"loss {loss:.2f}")

    def weights(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """A copy of every prunable layer's weight."""
        return {n: m.weight.detach().clone() for n, m in self.task.prunable(model).items()}

    # --- scoring -------------------------------------------------------------------------

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

    # --- latency -------------------------------------------------------------------------

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
        """The measured table (``out/latency_table.json``): the one ``--latency-table``
        names (refused unless it fits this host, thread count, layers and buckets), else
        read back when this host and thread count measured it for these layers and
        buckets, else measured through the runtime; written beside the bundle. A corrupt
        or foreign table is refused, naming it."""
        patterns = self.patterns
        buckets = [dict(bp)] + [
            patterns.set_masks(weights, bp, cands, patterns.level_child(i, len(weights)))[0]
            for i in range(len(self.opts.levels))
        ]
        return self.latency_table(model, buckets, out)

    def latency_table(
        self, model: nn.Module, buckets: list[dict[str, torch.Tensor]], out: Path
    ) -> LatencyTable:
        """:meth:`measure_latency` for any ``buckets`` (layer masks, every dict naming the
        same layers, e.g. another scheme's variants): the given table, the one read back, or
        one measured on the runtime; written to ``out/latency_table.json`` and kept as the
        run's estimate (:attr:`table`)."""
        names = list(buckets[0])
        threads = self.opts.threads
        assert threads is not None  # resolved in __init__
        path = out / TABLE_FILE
        want = {
            n: sorted({round(d, 6) for d in [1.0] + [layer_densities(b)[n] for b in buckets]})
            for n in names
        }
        out.mkdir(parents=True, exist_ok=True)
        given = self.opts.latency_table
        table: LatencyTable | None = None
        if given is not None:
            table = read_table(given, threads, want)
            self.table_source = f"given: {given} (--latency-table), measured {table.date}"
        elif path.is_file():
            table = LatencyTable.load(path, threads=threads, layers=names)
            self.table_source = f"read back from {path}, measured {table.date} on this host"
            table = table if table.buckets() == want else None
        if table is None:
            self.reporter.stage("latency table (measured on the runtime)", 1)
            cfg = self.bp_config
            setup = TimingSetup(cfg.block_rows, cfg.block_cols, threads, self.task.seq_len)
            table = measure_table(model, buckets, setup)
            self.reporter.advance()
            self.table_source = (
                "measured by this run: timing noise makes another run measure another table "
                "and possibly choose other sets; --latency-table repeats these choices"
            )
        table.save(path)
        self.table = table
        return table
