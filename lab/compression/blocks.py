"""Block geometry: cutting a weight into ``block_rows x block_cols`` blocks and back.

A *block-column group* is one input column inside one block-row: ``block_rows``
consecutive output rows (fewer in the last block-row) of a single column. BP removes whole
groups; a block-column mask is fully described by a ``(n_block_rows, in_features)`` boolean
group mask.

>>> import torch
>>> w = torch.arange(12.0).reshape(3, 4)
>>> column_group_norms(w, block_rows=2).shape
torch.Size([2, 4])
>>> g = torch.tensor([[True, False, True, True], [False] * 4])
>>> expand_column_groups(g, rows=3, block_rows=2).int().tolist()
[[1, 0, 1, 1], [1, 0, 1, 1], [0, 0, 0, 0]]
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def n_block_rows(rows: int, block_rows: int) -> int:
    """Number of block-rows covering ``rows`` rows (the last may be short)."""
    return math.ceil(rows / block_rows)


def column_group_sizes(rows: int, cols: int, block_rows: int) -> torch.Tensor:
    """Elements in each block-column group, shape ``(n_block_rows, cols)``, int64."""
    import torch

    nbr = n_block_rows(rows, block_rows)
    sizes = torch.full((nbr,), block_rows, dtype=torch.int64)
    sizes[-1] = rows - block_rows * (nbr - 1)
    return sizes.unsqueeze(1).expand(nbr, cols).contiguous()


def column_group_norms(weight: torch.Tensor, block_rows: int) -> torch.Tensor:
    """L2 norm of every block-column group, shape ``(n_block_rows, in_features)``."""
    import torch.nn.functional as F

    rows, cols = weight.shape
    nbr = n_block_rows(rows, block_rows)
    padded = F.pad(weight, (0, 0, 0, nbr * block_rows - rows))
    return padded.reshape(nbr, block_rows, cols).norm(dim=1)


def expand_column_groups(groups: torch.Tensor, rows: int, block_rows: int) -> torch.Tensor:
    """A ``(n_block_rows, cols)`` group mask expanded to the ``(rows, cols)`` weight mask.

    ``block_rows`` must be given: it cannot be inferred from ``rows / n_block_rows`` when
    the last block-row is short (200 rows in 32-row blocks are 6 x 32 + 8, not 7 x 29).
    """
    if groups.shape[0] != n_block_rows(rows, block_rows):
        raise ValueError(
            f"{groups.shape[0]} block-rows cannot cover {rows} rows in blocks of {block_rows}"
        )
    return groups.repeat_interleave(block_rows, dim=0)[:rows]


def to_blocks(weight: torch.Tensor, block_rows: int, block_cols: int) -> torch.Tensor:
    """Zero-pad and cut into blocks: ``(n_block_rows, n_block_cols, block_rows, block_cols)``."""
    import torch.nn.functional as F

    rows, cols = weight.shape
    nbr, nbc = n_block_rows(rows, block_rows), math.ceil(cols / block_cols)
    padded = F.pad(weight, (0, nbc * block_cols - cols, 0, nbr * block_rows - rows))
    return padded.reshape(nbr, block_rows, nbc, block_cols).permute(0, 2, 1, 3)


def from_blocks(blocks: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Inverse of :func:`to_blocks`: reassemble and crop the padding away."""
    nbr, nbc, br, bc = blocks.shape
    return blocks.permute(0, 2, 1, 3).reshape(nbr * br, nbc * bc)[:rows, :cols]
