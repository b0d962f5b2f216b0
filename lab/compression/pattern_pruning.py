"""Pattern pruning (PP): per-layer pattern candidates, nearest-pattern assignment, stacking on BP.

A *pattern* is a ``block_rows x block_cols`` boolean mask. Each weight matrix is zero-padded
and cut into blocks; each block takes, among its layer's chosen patterns, the one with the
smallest Euclidean distance between the block and the block masked by it (equivalently, the
one that removes the least squared weight). The result is intersected with the BP mask, so
PP stacks on BP.

Two families:

- ``block-column`` (default, **compacts**): a pattern keeps whole columns of the block, so
  every block-row of the resulting mask keeps the same input columns in all its rows and the
  runtime executes it as gathered inputs plus a dense GEMM per block-row.
- ``elementwise`` (RT3's original free 2-D patterns, **does not compact**): any positions of
  the block; the runtime can only run it as a masked dense layer, no faster than dense.

Candidates come from RT3's shrunken search space: sample ``sample`` blocks of the BP weights
and sum their magnitudes element-wise; repeat ``repeats`` times; keep the ``keep`` sums with
the largest totals; for each sparsity level zero the ``n`` smallest entries of each kept sum
(``block-column``: the ``n`` columns of smallest L2 norm, ``n = round(level x block_cols)``;
``elementwise``: the ``n = round(level x block_rows x block_cols)`` smallest entries).
A level above zero zeros at least one column (or entry); at least one is always kept.

``fitted_patterns`` is rt3lab's alternative search space (``--candidates fitted``): per
level, Lloyd iterations on the pruning objective itself. Blocks are assigned to their
nearest of ``k`` patterns, each pattern is refitted to keep the columns (entries) of most
squared weight over its blocks, until the assignment stops changing; every step lowers the
weight the layer's patterns remove. RT3's sums of ten random blocks all approach the layer's
mean column profile, so its ten candidates are near copies and four slots act like one;
after BP has zeroed different columns in different blocks, that mean profile also keeps
columns BP already removed. Fitted candidates are distinct and follow the BP structure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lab.compression.blocks import from_blocks, to_blocks
from lab.compression.sparsifier import CompressionError, Sparsifier, check_sparsity

if TYPE_CHECKING:
    import torch

# RT3's ten levels, in zeros per 100x100 pattern: 100, 1300, ..., 9900 -> fractions.
RT3_LEVELS: tuple[float, ...] = (0.01, 0.13, 0.25, 0.37, 0.50, 0.62, 0.75, 0.87, 0.93, 0.99)
FAMILIES = ("block-column", "elementwise")
COMPACTS = {"block-column": True, "elementwise": False}
CANDIDATE_SPACES = ("rt3", "fitted")


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise CompressionError(f"pattern family {family!r}: expected one of {FAMILIES}")


def check_candidates(space: str) -> None:
    """Raise a clear error unless ``space`` names a candidate search space."""
    if space not in CANDIDATE_SPACES:
        raise CompressionError(f"candidates {space!r}: expected one of {CANDIDATE_SPACES}")


def _zeros(level: float, i: int, width: int) -> int:
    """Zeros per pattern of ``width`` columns or entries at ``level``: at least one when
    ``level > 0`` (RT3's 1% level is 0.32 of a 32-column block, which would otherwise
    prune nothing and make its set the BP model), and one is always kept."""
    n = round(check_sparsity(level, f"level {i}") * width)
    return min(max(n, 1 if level > 0 else 0), width - 1)


def _drop_lowest(scores: torch.Tensor, n_zero: int) -> torch.Tensor:
    """``(k, F)`` booleans: True except at each row's ``n_zero`` smallest scores."""
    import torch

    order = torch.argsort(scores, dim=1, stable=True)
    keep = torch.ones_like(scores, dtype=torch.bool)
    keep.scatter_(1, order[:, :n_zero], False)
    return keep


def _as_blocks(keep: torch.Tensor, family: str, rows: int, cols: int) -> torch.Tensor:
    """``(k, C)`` kept columns (``block-column``) or ``(k, R*C)`` kept entries
    (``elementwise``) as ``(k, R, C)`` patterns."""
    k = keep.shape[0]
    if family == "block-column":
        return keep.unsqueeze(1).expand(k, rows, cols)
    return keep.reshape(k, rows, cols)


def patterns_from_scores(
    scores: torch.Tensor, levels: Sequence[float], family: str
) -> torch.Tensor:
    """Patterns from score blocks ``(k, R, C)``: ``(n_levels, k, R, C)`` booleans.

    For each level the smallest-scoring columns (``block-column``) or entries
    (``elementwise``) are zeroed.

    >>> import torch
    >>> s = torch.tensor([[[1.0, 5.0, 2.0, 9.0]]])  # one 1x4 score block
    >>> patterns_from_scores(s, [0.5], "block-column")[0, 0].int().tolist()
    [[0, 1, 0, 1]]
    """
    import torch

    _check_family(family)
    k, rows, cols = scores.shape
    feats = scores.norm(dim=1) if family == "block-column" else scores.reshape(k, -1)
    out = torch.zeros(len(levels), k, rows, cols, dtype=torch.bool)
    for i, level in enumerate(levels):
        keep = _drop_lowest(feats, _zeros(level, i, feats.shape[1]))
        out[i] = _as_blocks(keep, family, rows, cols)
    return out


def candidate_patterns(
    weight: torch.Tensor,
    block_rows: int,
    block_cols: int,
    levels: Sequence[float] = RT3_LEVELS,
    family: str = "block-column",
    generator: torch.Generator | None = None,
    sample: int = 10,
    repeats: int = 16,
    keep: int = 10,
) -> torch.Tensor:
    """RT3's shrunken search space for one layer: ``(n_levels, keep, block_rows, block_cols)``."""
    import torch

    _check_family(family)
    if keep > repeats:
        raise CompressionError(f"candidates: keep ({keep}) must not exceed repeats ({repeats})")
    blocks = to_blocks(weight.detach().abs(), block_rows, block_cols)
    blocks = blocks.reshape(-1, block_rows, block_cols)
    n = blocks.shape[0]
    sums = torch.empty(repeats, block_rows, block_cols)
    for r in range(repeats):
        if n >= sample:
            idx = torch.randperm(n, generator=generator)[:sample]
        else:
            idx = torch.randint(n, (sample,), generator=generator)
        sums[r] = blocks[idx].sum(0)
    top = torch.argsort(sums.sum((1, 2)), descending=True, stable=True)[:keep]
    return patterns_from_scores(sums[top], levels, family)


def fitted_patterns(
    weight: torch.Tensor,
    block_rows: int,
    block_cols: int,
    levels: Sequence[float] = RT3_LEVELS,
    family: str = "block-column",
    generator: torch.Generator | None = None,
    keep: int = 10,
    iters: int = 20,
) -> torch.Tensor:
    """Fitted candidates for one layer: ``(n_levels, keep, block_rows, block_cols)``.

    Seeds are ``keep`` blocks drawn k-means++ style (by the squared distance of their
    energy profiles to the seeds so far) from the blocks that hold any weight; then, per
    level, Lloyd iterations (nearest-pattern assignment, refit each pattern to its blocks)
    for at most ``iters`` rounds. A pattern left without blocks keeps its previous columns.
    """
    import torch

    _check_family(family)
    energy = to_blocks(weight.detach().float() ** 2, block_rows, block_cols)
    energy = energy.reshape(-1, block_rows, block_cols)
    # block-column: (n, C), what keeping each column saves; elementwise: (n, R*C)
    feats = energy.sum(1) if family == "block-column" else energy.flatten(1)
    width = feats.shape[1]
    live = feats[feats.sum(1) > 0]
    if live.shape[0] == 0:  # an all-zero layer: any pattern removes nothing
        live = torch.ones(1, width)
    # k-means++ seeding on the shape of each block (energy fractions)
    shape = live / live.sum(1, keepdim=True)
    first = int(torch.randint(live.shape[0], (1,), generator=generator))
    seeds = [first]
    d2 = ((shape - shape[first]) ** 2).sum(1)
    while len(seeds) < keep:
        if float(d2.sum()) <= 0:
            nxt = int(torch.randint(live.shape[0], (1,), generator=generator))
        else:
            nxt = int(torch.multinomial(d2, 1, generator=generator))
        seeds.append(nxt)
        d2 = torch.minimum(d2, ((shape - shape[nxt]) ** 2).sum(1))
    init = live[seeds]  # (keep, F)

    out = torch.zeros(len(levels), keep, block_rows, block_cols, dtype=torch.bool)
    for i, level in enumerate(levels):
        n_zero = _zeros(level, i, width)
        pats = _drop_lowest(init, n_zero)
        choice = None
        for _ in range(iters):
            new = torch.argmin(live @ (~pats).float().t(), dim=1)
            if choice is not None and torch.equal(new, choice):
                break
            choice = new
            sums = torch.zeros(keep, width).index_add_(0, choice, live)
            used = torch.bincount(choice, minlength=keep) > 0
            pats = torch.where(used.unsqueeze(1), _drop_lowest(sums, n_zero), pats)
        out[i] = _as_blocks(pats, family, block_rows, block_cols)
    return out


def random_patterns(
    block_rows: int,
    block_cols: int,
    levels: Sequence[float],
    count: int,
    family: str,
    generator: torch.Generator,
) -> torch.Tensor:
    """rPP, the baseline: random patterns with the same zeros per level as the candidates."""
    import torch

    scores = torch.rand(count, block_rows, block_cols, generator=generator)
    if family == "block-column":
        # random column scores, constant down each column
        scores = scores[:, :1, :].expand(count, block_rows, block_cols).contiguous()
    return patterns_from_scores(scores, levels, family)


def assign_patterns(
    weight: torch.Tensor, patterns: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Give each block its nearest pattern; returns ``(choice, mask)``.

    ``patterns`` is ``(k, R, C)``. ``choice[i, j]`` is the index of the pattern of block
    ``(i, j)`` (ties go to the lowest index); ``mask`` has ``weight``'s shape. The distance
    ``||B - B*P||`` is the norm of what the pattern removes.

    >>> import torch
    >>> w = torch.tensor([[1.0, 0.1, 0.1, 1.0]])
    >>> p = torch.tensor([[[True, False]], [[False, True]]])
    >>> choice, mask = assign_patterns(w, p)
    >>> choice.tolist(), mask.int().tolist()
    ([[0, 1]], [[1, 0, 0, 1]])
    """
    import torch

    k, br, bc = patterns.shape
    rows, cols = weight.shape
    blocks = to_blocks(weight.detach().float() ** 2, br, bc)  # (nbr, nbc, R, C)
    nbr, nbc = blocks.shape[:2]
    removed = (~patterns).reshape(k, br * bc).float()
    dist = blocks.reshape(nbr, nbc, br * bc) @ removed.t()  # (nbr, nbc, k)
    choice = torch.argmin(dist, dim=-1)
    mask = from_blocks(patterns[choice], rows, cols)
    return choice, mask


class PatternPruner(Sparsifier):
    """PP in the shared lifecycle: each layer's mask becomes (current mask) & (nearest patterns).

    Prepare it with the BP masks as starting masks so the result stacks on BP; the
    ``sparsity`` values of ``prepare`` are unused (the patterns fix the sparsity).
    """

    def __init__(self, patterns: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.patterns = patterns

    def update_mask(
        self, name: str, weight: torch.Tensor, mask: torch.Tensor, sparsity: float
    ) -> torch.Tensor:
        """The nearest-pattern mask of the already-masked weight."""
        return assign_patterns(weight * mask, self.patterns[name])[1]


def stack_patterns(
    weights: dict[str, torch.Tensor],
    bp_masks: dict[str, torch.Tensor],
    patterns: dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Masks of one pattern set: ``bp & nearest(patterns)`` per layer; other layers keep BP.

    A functional shortcut of :class:`PatternPruner` that leaves the weights untouched.
    """
    out = {}
    for name, bp in bp_masks.items():
        if name in patterns:
            out[name] = bp & assign_patterns(weights[name] * bp, patterns[name])[1]
        else:
            out[name] = bp.clone()
    return out


def exclusive_weights(
    weights: dict[str, torch.Tensor], used: dict[str, torch.Tensor], discount: float
) -> dict[str, torch.Tensor]:
    """Weights for fitting and assigning a sparser set's patterns: the squared weight
    already kept by a denser set counts ``1 - discount`` (``weights * sqrt(1 - discount *
    used)``); layers missing from ``used`` are unchanged.

    The sets share one weight tensor in joint fine-tuning. Fitted to the plain weights,
    a sparser set keeps nearly a subset of a denser one's weights (on the default budget
    90% of the sparsest set's weights lie in the densest set, 85% with random patterns),
    so nearly every weight it keeps is also trained for the denser sets, whose losses
    weigh more. Discounting what the denser sets keep gives the sparser set weights of
    its own; ``discount = 0`` is the plain nearest-pattern objective.
    """
    if not 0.0 <= discount <= 1.0:
        raise CompressionError(f"exclusive discount {discount}: expected a value in [0, 1]")
    out = {}
    for name, w in weights.items():
        if name in used:
            out[name] = w * (1.0 - discount * used[name].to(w.dtype)).sqrt()
        else:
            out[name] = w
    return out
