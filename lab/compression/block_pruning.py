"""Block-structured pruning (BP): reweighted group lasso, hard pruning, masked retraining.

Groups are *block-columns* by default: one input column inside a ``block_rows`` x
``block_cols`` block, i.e. ``block_rows`` consecutive output rows of one column (the family
the runtime compacts: per block-row, gather the kept inputs, one dense GEMM). *Block-rows*
(``groups: block-row``: one output row inside a block, ``block_cols`` consecutive inputs)
are offered too; they are pruned and trained the same way but their masks are not
block-column, so they are stored and executed as element-wise masks.

The penalty of Li et al. (EMNLP Findings 2020), which RT3's BP uses:
``strength * sum_g w_g ||g||_2`` with ``w_g = 1 / (||g||_2 + eps)`` recomputed every few
steps, which drives whole groups towards zero; then each layer keeps its largest groups
until its configured sparsity is reached (hard pruning), and training continues with the
masks re-applied after every optimizer step.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.compression.blocks import (
    column_group_norms,
    column_group_sizes,
    expand_column_groups,
)
from lab.compression.finetune import StepPlan, train_masked
from lab.compression.latency.estimators import OpCounts, op_counts
from lab.compression.sparsifier import (
    CompressionError,
    Sparsifier,
    check_sparsity,
    mask_sparsity,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

    from lab.compression.compressor import Compressor

DEFAULT_CONFIG = Path(__file__).with_name("bp_rt3.yaml")
GROUP_KINDS = ("block-column", "block-row")


@dataclass(frozen=True)
class BPConfig:
    """Block size, group kind, lasso settings and per-layer sparsity (glob keys allowed).

    >>> cfg = BPConfig(layers={"decoder": 0.7, "layers.*.linear1": 0.9})
    >>> cfg.sparsity_for(["embedding", "layers.0.linear1", "decoder"])
    {'embedding': 0.0, 'layers.0.linear1': 0.9, 'decoder': 0.7}
    """

    block_rows: int = 32
    block_cols: int = 32
    groups: str = "block-column"
    lasso_strength: float = 1e-4
    lasso_eps: float = 1e-3
    reweight_every: int = 20
    layers: dict[str, float] = field(default_factory=dict)
    default: float = 0.0
    source: str = "<inline>"

    def __post_init__(self) -> None:
        where = self.source
        for name in ("block_rows", "block_cols", "reweight_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise CompressionError(f"{where}: field {name!r} = {v!r}, expected an int >= 1")
        if self.groups not in GROUP_KINDS:
            raise CompressionError(
                f"{where}: field 'groups' = {self.groups!r}, expected one of {GROUP_KINDS}"
            )
        for name in ("lasso_strength", "lasso_eps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise CompressionError(f"{where}: field {name!r} = {v!r}, expected a number >= 0")
        for key, value in self.layers.items():
            check_sparsity(value, f"{where}: layers.{key}")
        check_sparsity(self.default, f"{where}: default")

    def sparsity_for(self, names: list[str]) -> dict[str, float]:
        """Per-layer sparsity for ``names``: exact key, else first matching glob, else default."""
        out = {}
        for name in names:
            if name in self.layers:
                out[name] = float(self.layers[name])
                continue
            match = next((k for k in self.layers if fnmatch.fnmatchcase(name, k)), None)
            out[name] = float(self.layers[match]) if match is not None else float(self.default)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON form (recorded in bundle provenance): every field, in field order."""
        return asdict(self)


def load_bp_config(path: str | Path | None = None, **overrides: Any) -> BPConfig:
    """Read a BP config YAML (default: RT3's released per-layer sparsities, ``bp_rt3.yaml``)."""
    import yaml

    p = Path(path) if path is not None else DEFAULT_CONFIG
    if not p.is_file():
        raise CompressionError(f"{p}: BP config file not found")
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise CompressionError(f"{p}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise CompressionError(f"{p}: top level must be a mapping")
    known = set(BPConfig.__dataclass_fields__) - {"source"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise CompressionError(f"{p}: unknown field(s) {unknown}; expected some of {sorted(known)}")
    layers = doc.get("layers") or {}
    if not isinstance(layers, dict):
        raise CompressionError(f"{p}: field 'layers' must map layer names to sparsities")
    doc = {**doc, "layers": {str(k): v for k, v in layers.items()}, "source": str(p)}
    doc.update({k: v for k, v in overrides.items() if v is not None})
    return BPConfig(**doc)


# --- groups -------------------------------------------------------------------------------


def group_norms(weight: torch.Tensor, cfg: BPConfig) -> torch.Tensor:
    """L2 norm of every group of ``weight`` (block-column: ``(n_block_rows, in)``)."""
    if cfg.groups == "block-column":
        return column_group_norms(weight, cfg.block_rows)
    return column_group_norms(weight.t(), cfg.block_cols)


def group_sizes(weight: torch.Tensor, cfg: BPConfig) -> torch.Tensor:
    """Elements per group, the same shape as :func:`group_norms` (edge groups are short)."""
    rows, cols = weight.shape
    if cfg.groups == "block-column":
        return column_group_sizes(rows, cols, cfg.block_rows)
    return column_group_sizes(cols, rows, cfg.block_cols)


def expand_groups(groups: torch.Tensor, shape: tuple[int, int], cfg: BPConfig) -> torch.Tensor:
    """A group mask expanded to the weight mask of ``shape``."""
    if cfg.groups == "block-column":
        return expand_column_groups(groups, shape[0], cfg.block_rows)
    return expand_column_groups(groups, shape[1], cfg.block_cols).t()


def prune_groups(scores: torch.Tensor, sizes: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep the highest-scoring groups; drop the lowest until ``sparsity`` of elements is gone.

    Drops the prefix (in ascending score) whose element count is nearest to the target,
    so the layer's sparsity is as close to ``sparsity`` as group sizes allow.

    >>> import torch
    >>> prune_groups(torch.tensor([3.0, 1.0, 2.0, 4.0]), torch.ones(4, dtype=torch.long), 0.5)
    tensor([ True, False, False,  True])
    """
    import torch

    flat_scores, flat_sizes = scores.flatten(), sizes.flatten()
    order = torch.argsort(flat_scores, stable=True)
    cum = torch.cumsum(flat_sizes[order], 0)
    target = sparsity * float(flat_sizes.sum())
    # number of groups to drop: the prefix length whose element count is nearest target
    candidates = torch.cat([torch.zeros(1, dtype=cum.dtype), cum])
    n_drop = int(torch.argmin((candidates.double() - target).abs()))
    keep = torch.ones_like(flat_scores, dtype=torch.bool)
    keep[order[:n_drop]] = False
    return keep.reshape(scores.shape)


class BlockPruner(Sparsifier):
    """BP: a reweighted group-lasso penalty during training, then hard group pruning."""

    def __init__(self, config: BPConfig) -> None:
        super().__init__()
        self.config = config
        self._reweights: dict[str, torch.Tensor] = {}
        self._calls = 0

    def reweight(self) -> None:
        """Recompute ``w_g = 1 / (||g|| + eps)`` from the current weights."""
        import torch

        with torch.no_grad():
            for name, module in self.modules.items():
                norms = group_norms(module.weight.detach(), self.config)
                self._reweights[name] = 1.0 / (norms + self.config.lasso_eps)

    def penalty(self) -> torch.Tensor:
        """The group-lasso term to add to the loss (layers with sparsity > 0 only).

        Re-weights every ``reweight_every`` calls; the first call re-weights too.
        """
        import torch

        if self._calls % self.config.reweight_every == 0:
            self.reweight()
        self._calls += 1
        total = torch.zeros(())
        for name, module in self.modules.items():
            if self.sparsity[name] <= 0.0:
                continue
            norms = group_norms(module.weight, self.config)
            total = total + (self._reweights[name] * norms).sum()
        return self.config.lasso_strength * total

    def update_mask(
        self, name: str, weight: torch.Tensor, mask: torch.Tensor, sparsity: float
    ) -> torch.Tensor:
        """Drop the lowest-norm groups of the (already masked) weight to reach ``sparsity``."""
        norms = group_norms(weight * mask, self.config)
        groups = prune_groups(norms, group_sizes(weight, self.config), sparsity)
        return expand_groups(groups, tuple(weight.shape), self.config)


class RandomBlockPruner(BlockPruner):
    """rBP, the baseline: random groups at the same per-layer sparsity as BP."""

    def __init__(self, config: BPConfig, generator: torch.Generator) -> None:
        super().__init__(config)
        self.generator = generator

    def update_mask(
        self, name: str, weight: torch.Tensor, mask: torch.Tensor, sparsity: float
    ) -> torch.Tensor:
        """Drop random groups to reach ``sparsity``."""
        import torch

        sizes = group_sizes(weight, self.config)
        scores = torch.rand(sizes.shape, generator=self.generator)
        groups = prune_groups(scores, sizes, sparsity)
        return expand_groups(groups, tuple(weight.shape), self.config)


def block_column_of(mask: torch.Tensor, block_rows: int) -> bool:
    """True if every block-row of ``mask`` keeps the same columns in all its rows."""
    import torch

    firsts = mask[::block_rows]
    return bool(torch.equal(expand_column_groups(firsts, mask.shape[0], block_rows), mask))


# --- the BP stage of compress --------------------------------------------------------------


def block_prune(c: Compressor, model: nn.Module, random: bool) -> dict[str, torch.Tensor]:
    """BP (or rBP when ``random``) on ``model`` in place, on the run's budget: the group
    lasso phase, hard pruning, masked retraining (rBP retrains for both phases' steps, the
    same budget), both phases taught by the dense model when distillation is on
    (``c.teacher``); returns the masks."""
    b = c.budget
    names = list(c.task.prunable(model))
    sparsity = c.bp_config.sparsity_for(names)
    gen = c.generator(7 if random else 3)
    pruner = RandomBlockPruner(c.bp_config, gen) if random else BlockPruner(c.bp_config)
    pruner.prepare(model, sparsity)
    label = "rBP" if random else "BP"
    c.reporter.stage(
        f"{label}: group lasso + prune + retrain", b.bp_lasso_steps + b.bp_retrain_steps
    )

    def train(steps: int, penalty: Any = None) -> None:
        plan = StepPlan(steps, gen, b.batch_size, c.finetune_lr, c.report_step, c.teacher)
        train_masked(model, c.task.objective(), pruner.masks, plan, b.seq_len, penalty)

    with c.seeded(11 if random else 5):
        if not random:
            train(b.bp_lasso_steps, pruner.penalty)
        pruner.step()
        # rBP gets the lasso phase's steps as extra retraining: the same budget
        train(b.bp_retrain_steps + (b.bp_lasso_steps if random else 0))
    return pruner.squash_mask()


@dataclass(frozen=True)
class BlockPruned:
    """The BP model (its masks, state and weights) with its figures, and rBP's beside it
    (None when not run)."""

    masks: dict[str, Any]
    state: dict[str, Any]
    weights: dict[str, Any]
    sparsity: float
    nnz: int
    ops: OpCounts
    test: tuple[float, float | None]
    valid: tuple[float, float | None]
    rbp_sparsity: float | None
    rbp_test: tuple[float, float | None] | None
    rbp_masks: dict[str, Any] | None = None  # kept in the bundle, so evaluate re-scores rBP
    rbp_state: dict[str, Any] | None = None


def run_bp(
    c: Compressor,
    model: nn.Module,
    dense_state: dict[str, Any],
    dense_weights: dict[str, Any],
    with_rbp: bool = True,
) -> BlockPruned:
    """BP on the dense ``model`` (it ends as the BP model), scored on test and validation
    tokens; with ``with_rbp`` rBP too, from the same dense state, scored on test tokens."""
    names = list(c.task.prunable(model))
    masks = block_prune(c, model, random=False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    weights = c.weights(model)
    sparsity, nnz = mask_sparsity(masks, dense_weights)
    ops = op_counts(model, masks, names, c.task.seq_len)
    test = c.score(model, masks, "test")
    valid = c.score(model, masks, "valid")
    rbp_sparsity, rbp_test, rbp_masks, rbp_state = None, None, None, None
    if with_rbp:
        model.load_state_dict(dense_state)
        rbp_masks = block_prune(c, model, random=True)
        rbp_sparsity, _ = mask_sparsity(rbp_masks, dense_weights)
        rbp_test = c.score(model, rbp_masks, "test")
        rbp_state = {k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict(state)
    return BlockPruned(
        masks, state, weights, sparsity, nnz, ops, test, valid, rbp_sparsity, rbp_test,
        rbp_masks, rbp_state,
    )  # fmt: skip
