"""What ``compress`` is asked to do: the request as the command line gives it
(:class:`CompressRequest`), the options it resolves to (:class:`CompressOptions`), and the
progress sink every stage reports to (:class:`Reporter`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lab.compression.budget import Budget
from lab.compression.distill import Distillation, check_ablation
from lab.compression.pattern_pruning import RT3_LEVELS

DISTILL = Distillation()  # compress's default: the dense model teaches (frozen, shared)

if TYPE_CHECKING:
    import torch

    from device_profiles import DeviceProfile
    from lab.compression.tasks import Task


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
    latency_table: Path | None = None  # choose on this recorded table instead of measuring
    scheme: str = "rt3"  # the reconfiguration scheme (contracts.schemes.SCHEMES)
    # the dense model teaches BP, the supernet and the final fine-tuning (None: --no-distill)
    distill: Distillation | None = DISTILL
    # also fine-tune the chosen sets without distillation, kept for evaluate
    distill_ablation: bool = False


# The fields of CompressRequest that CompressOptions takes unchanged, under the same name
# (the others are resolved: profile, budget, block, no_cache).
PASSED = (
    "out", "seed", "episodes", "bp_config", "family", "candidates", "exclusive", "estimator",
    "deadlines", "reward_norm", "threads", "latency_table", "scheme", "distill_ablation",
)  # fmt: skip


@dataclass(frozen=True)
class CompressRequest:
    """``rt3lab compress`` as asked, before anything is loaded: the command's options by
    name, with its defaults (``quick``: the demo budget; ``size``: the model size, default
    the budget's; ``block``: rows = columns; ``device``: cpu, cuda[:N] or auto;
    ``latency_table``: a recorded table, or a bundle holding one, to choose on instead of
    measuring; ``scheme``: what the variants are, ``contracts.schemes.SCHEMES``)."""

    out: Path
    model: str = "rt3-transformer"
    data: str = "builtin"
    profile: str = "rt3-paper"
    episodes: int | None = None
    quick: bool = False
    seed: int = 0
    bp_config: Path | None = None
    block: int | None = None
    family: str = "block-column"
    candidates: str = "fitted"
    exclusive: float = 1.0
    estimator: str = "measured"
    deadlines: str = "auto"
    reward_norm: str = "auto"
    size: str | None = None
    no_cache: bool = False
    threads: int | None = None
    device: str = "auto"
    latency_table: Path | None = None
    scheme: str = "rt3"
    distill: bool = True
    distill_temperature: float = Distillation.temperature
    distill_alpha: float = Distillation.alpha
    distill_hidden_weight: float = Distillation.hidden_weight
    distill_ablation: bool = False

    def distillation(self) -> Distillation | None:
        """The distillation settings asked for (checked: ``DistillationError`` names the
        option), None with ``--no-distill``."""
        d = Distillation(self.distill_temperature, self.distill_alpha, self.distill_hidden_weight)
        return d if self.distill else None

    def resolve(self) -> tuple[Task, DeviceProfile, CompressOptions, torch.device]:
        """The task (data loaded), profile, options and compute device; the cheap inputs
        are checked first, before any data is read (``ValueError`` naming the option)."""
        from dataclasses import replace

        from contracts.schemes import check_scheme
        from device_profiles import load_profile
        from lab.compression import budget as budgets
        from lab.compression.block_pruning import load_bp_config
        from lab.compression.latency.table import table_file
        from lab.compression.pattern_pruning import check_candidates
        from lab.compression.search.reward import governor_levels
        from lab.compression.sparsifier import CompressionError
        from lab.compression.tasks import MODEL_SPECS, load_task
        from lab.host.compute import resolve_device

        check_scheme(self.scheme)
        if self.model != "rt3-transformer" and not self.model.startswith("hf:"):
            raise CompressionError(f"--model {self.model}: expected one of {list(MODEL_SPECS)}")
        if self.threads is not None:
            from lab.host.threads import check_threads

            check_threads(self.threads)  # a huge pool would crash before any work
        dev = resolve_device(self.device)  # an unusable device fails before any data is read
        budget = budgets.QUICK if self.quick else budgets.DEFAULT
        if self.size is not None:
            budget = replace(budget, size=self.size)
            budget.model_config()  # validates the size name
        prof = load_profile(self.profile)
        governor_levels(prof)
        check_candidates(self.candidates)
        load_bp_config(self.bp_config, block_rows=self.block, block_cols=self.block)
        if self.latency_table is not None:
            table_file(self.latency_table)
            _table_scheme(self.latency_table, self.scheme)
        distill = self.distillation()
        check_ablation(distill, self.distill_ablation)
        same = {name: getattr(self, name) for name in PASSED}
        opts = CompressOptions(
            profile=prof.name,
            budget=budget,
            block_rows=self.block,
            block_cols=self.block,
            use_cache=not self.no_cache,
            distill=distill,
            **same,
        )
        return load_task(self.model, self.data, budget), prof, opts, dev


def _table_scheme(given: Path, scheme: str) -> None:
    """``--latency-table BUNDLE``: the bundle must be of ``scheme`` (one line, exit 2)."""
    import json

    from contracts.schemes import expect_scheme

    index = given / "bundle.json"
    if not index.is_file():
        return  # a table file: it records no scheme
    try:
        doc = json.loads(index.read_text())
    except (OSError, ValueError):
        return  # not a bundle's index: table_file already chose the table beside it
    if isinstance(doc, dict):
        expect_scheme(doc, scheme, f"--latency-table {index}")
