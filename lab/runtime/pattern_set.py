"""Pattern sets: per-layer pruning masks in a form that says how they execute.

A mask has the weight's shape: ``(out_features, in_features)`` for ``nn.Linear``,
``(num_embeddings, embedding_dim)`` for ``nn.Embedding``. Two families exist:

- ``block-column``: output rows are grouped into block-rows of ``block_rows`` consecutive
  rows (the last one may be shorter); inside a block-row every row keeps the same input
  columns. BP (whole columns of a ``block_rows x block_cols`` block removed), PP patterns
  whose kept positions are whole block columns, and their intersection are all of this
  family. It compacts: per block-row, gather the kept inputs and run a dense GEMM.
  Stored as ``indices`` (int32, the kept input columns of each block-row, concatenated,
  ascending inside a block-row) and ``offsets`` (int64, ``n_block_rows + 1`` entries,
  ``indices[offsets[b]:offsets[b + 1]]`` are block-row ``b``'s columns).
- ``elementwise``: any 2-D mask (RT3's free patterns). Stored as packed bits: ``indices``
  is uint8, the row-major flattened mask packed 8 positions a byte, least significant bit
  first; ``offsets`` is an empty int64 tensor. Executed as masked dense; it does not compact.

>>> import torch
>>> mask = torch.ones(4, 6, dtype=torch.bool)
>>> mask[:2, 1] = False  # block-row 0 drops column 1
>>> mask[2:, 4:] = False  # block-row 1 drops columns 4 and 5
>>> p = LayerPattern.from_mask("fc", mask, block_rows=2, block_cols=2)
>>> p.family, p.indices.tolist(), p.offsets.tolist(), p.nnz
('block-column', [0, 2, 3, 4, 5, 0, 1, 2, 3], [0, 5, 9], 18)
>>> bool((p.mask() == mask).all())
True
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

FAMILIES = ("block-column", "elementwise")
FORMAT = "rt3lab-pattern-set"
VERSION = 1


class PatternSetError(ValueError):
    """A pattern or pattern-set file is malformed; the message names the layer, field or file."""


@dataclass(frozen=True, eq=False)
class LayerPattern:
    """The kept positions of one layer's weight, in the block-column or elementwise family."""

    layer: str
    shape: tuple[int, int]
    family: str
    block_rows: int
    block_cols: int
    indices: torch.Tensor
    offsets: torch.Tensor

    def __post_init__(self) -> None:
        import torch

        where = f"layer {self.layer!r}"
        shape = tuple(int(s) for s in self.shape)
        if len(shape) != 2 or min(shape) <= 0:
            raise PatternSetError(f"{where}: shape {self.shape} must be two positive ints")
        object.__setattr__(self, "shape", shape)
        if self.family not in FAMILIES:
            raise PatternSetError(f"{where}: family {self.family!r} is not one of {FAMILIES}")
        if int(self.block_rows) <= 0 or int(self.block_cols) <= 0:
            raise PatternSetError(
                f"{where}: block_rows/block_cols {self.block_rows}x{self.block_cols} "
                "must be positive"
            )
        if self.indices.dim() != 1 or self.offsets.dim() != 1:
            raise PatternSetError(f"{where}: indices and offsets must be 1-D tensors")
        rows, cols = shape
        if self.family == "elementwise":
            want = math.ceil(rows * cols / 8)
            if self.indices.dtype != torch.uint8 or self.indices.numel() != want:
                raise PatternSetError(
                    f"{where}: elementwise indices must be {want} uint8 bytes of packed bits, "
                    f"got {self.indices.numel()} {self.indices.dtype}"
                )
            if self.offsets.numel() != 0:
                raise PatternSetError(f"{where}: elementwise offsets must be empty")
            return
        if self.indices.dtype != torch.int32:
            raise PatternSetError(f"{where}: indices dtype {self.indices.dtype}, expected int32")
        if self.offsets.dtype != torch.int64:
            raise PatternSetError(f"{where}: offsets dtype {self.offsets.dtype}, expected int64")
        n_br = self.n_block_rows
        if self.offsets.numel() != n_br + 1:
            raise PatternSetError(
                f"{where}: offsets has {self.offsets.numel()} entries, expected "
                f"n_block_rows + 1 = {n_br + 1} (rows {rows}, block_rows {self.block_rows})"
            )
        off = self.offsets
        if int(off[0]) != 0 or int(off[-1]) != self.indices.numel():
            raise PatternSetError(
                f"{where}: offsets must start at 0 and end at len(indices) = "
                f"{self.indices.numel()}, got {int(off[0])}..{int(off[-1])}"
            )
        counts = off[1:] - off[:-1]
        if bool((counts < 0).any()) or bool((counts > cols).any()):
            raise PatternSetError(f"{where}: offsets must be non-decreasing steps of <= {cols}")
        if self.indices.numel():
            idx = self.indices.long()
            if int(idx.min()) < 0 or int(idx.max()) >= cols:
                raise PatternSetError(
                    f"{where}: indices must lie in [0, {cols}), got "
                    f"{int(idx.min())}..{int(idx.max())}"
                )
            # Strictly ascending inside each block-row: every step is positive except at
            # block-row starts.
            step = idx[1:] - idx[:-1]
            starts = torch.zeros(idx.numel(), dtype=torch.bool)
            starts[off[1:-1][off[1:-1] < idx.numel()]] = True
            if bool(((step <= 0) & ~starts[1:]).any()):
                raise PatternSetError(
                    f"{where}: indices must be strictly ascending inside each block-row"
                )

    @property
    def n_block_rows(self) -> int:
        """Number of block-rows (the last one may hold fewer than ``block_rows`` rows)."""
        return math.ceil(self.shape[0] / int(self.block_rows))

    @property
    def numel(self) -> int:
        """Number of positions in the weight."""
        return self.shape[0] * self.shape[1]

    def kept_counts(self) -> torch.Tensor:
        """Kept input columns per block-row (block-column family), int64."""
        if self.family != "block-column":
            raise PatternSetError(f"layer {self.layer!r}: kept_counts needs block-column")
        return self.offsets[1:] - self.offsets[:-1]

    def block_row_sizes(self) -> torch.Tensor:
        """Output rows in each block-row, int64 (the last may be short)."""
        import torch

        sizes = torch.full((self.n_block_rows,), int(self.block_rows), dtype=torch.int64)
        sizes[-1] = self.shape[0] - int(self.block_rows) * (self.n_block_rows - 1)
        return sizes

    @property
    def nnz(self) -> int:
        """Number of kept weight positions."""
        if self.family == "elementwise":
            return int(self.mask().sum())
        return int((self.kept_counts() * self.block_row_sizes()).sum())

    @property
    def density(self) -> float:
        """Kept fraction of the weight's positions."""
        return self.nnz / self.numel

    def mask(self) -> torch.Tensor:
        """The boolean mask, shape ``self.shape``."""
        import numpy as np
        import torch

        rows, cols = self.shape
        if self.family == "elementwise":
            bits = np.unpackbits(self.indices.numpy(), bitorder="little")[: rows * cols]
            return torch.from_numpy(bits.astype(bool)).reshape(rows, cols)
        per_block = torch.zeros(self.n_block_rows, cols, dtype=torch.bool)
        block_of = torch.repeat_interleave(
            torch.arange(self.n_block_rows), self.kept_counts(), output_size=self.indices.numel()
        )
        per_block[block_of, self.indices.long()] = True
        return per_block.repeat_interleave(self.block_row_sizes(), dim=0, output_size=rows)

    @classmethod
    def from_mask(
        cls,
        layer: str,
        mask: torch.Tensor,
        block_rows: int,
        block_cols: int,
        family: str | None = None,
    ) -> LayerPattern:
        """Build a pattern from a 2-D boolean mask.

        ``family=None`` picks ``block-column`` when every block-row keeps the same columns in
        all its rows, else ``elementwise``. Asking for ``block-column`` on a mask that is not
        raises ``PatternSetError``.
        """
        import numpy as np
        import torch

        mask = torch.as_tensor(mask)
        if mask.dim() != 2:
            raise PatternSetError(f"layer {layer!r}: mask must be 2-D, got {tuple(mask.shape)}")
        mask = mask.to(torch.bool).cpu()
        rows, cols = mask.shape
        if family not in (None, *FAMILIES):
            raise PatternSetError(f"layer {layer!r}: family {family!r} is not one of {FAMILIES}")
        if block_rows <= 0 or block_cols <= 0:
            raise PatternSetError(f"layer {layer!r}: block sizes must be positive")
        n_br = math.ceil(rows / block_rows)
        firsts = mask[::block_rows]  # first row of each block-row
        expanded = firsts.repeat_interleave(
            torch.tensor([min(block_rows, rows - b * block_rows) for b in range(n_br)]),
            dim=0,
            output_size=rows,
        )
        is_block_column = bool(torch.equal(expanded, mask))
        if family == "block-column" and not is_block_column:
            raise PatternSetError(
                f"layer {layer!r}: mask is not block-column for block_rows {block_rows}: "
                "some block-row's rows keep different columns"
            )
        if family == "elementwise" or not is_block_column:
            packed = np.packbits(mask.reshape(-1).numpy(), bitorder="little")
            return cls(
                layer,
                (rows, cols),
                "elementwise",
                block_rows,
                block_cols,
                torch.from_numpy(packed.copy()),
                torch.zeros(0, dtype=torch.int64),
            )
        nz = firsts.nonzero()  # row-major: sorted by block-row, then by column
        counts = firsts.sum(dim=1)
        offsets = torch.zeros(n_br + 1, dtype=torch.int64)
        offsets[1:] = torch.cumsum(counts, 0)
        return cls(
            layer,
            (rows, cols),
            "block-column",
            block_rows,
            block_cols,
            nz[:, 1].to(torch.int32).contiguous(),
            offsets,
        )

    def __and__(self, other: LayerPattern) -> LayerPattern:
        """The intersection of two patterns of the same layer (e.g. a PP pattern on BP)."""
        if self.shape != other.shape:
            raise PatternSetError(
                f"layer {self.layer!r}: cannot intersect shapes {self.shape} and {other.shape}"
            )
        return LayerPattern.from_mask(
            self.layer, self.mask() & other.mask(), self.block_rows, self.block_cols
        )

    def __eq__(self, other: object) -> bool:
        import torch

        if not isinstance(other, LayerPattern):
            return NotImplemented
        return (
            self.layer == other.layer
            and self.shape == other.shape
            and self.family == other.family
            and int(self.block_rows) == int(other.block_rows)
            and int(self.block_cols) == int(other.block_cols)
            and self.indices.dtype == other.indices.dtype
            and torch.equal(self.indices, other.indices)
            and torch.equal(self.offsets, other.offsets)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"LayerPattern({self.layer!r}, shape={self.shape}, family={self.family!r}, "
            f"block={self.block_rows}x{self.block_cols}, density={self.density:.4f})"
        )


@dataclass(eq=False)
class PatternSet:
    """A named set of layer patterns (one sparsity level), with free-form JSON ``meta``."""

    name: str
    layers: dict[str, LayerPattern]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise PatternSetError(f"pattern set name {self.name!r} must be a non-empty string")
        for key, pat in self.layers.items():
            if pat.layer != key:
                raise PatternSetError(
                    f"pattern set {self.name!r}: key {key!r} holds a pattern of layer {pat.layer!r}"
                )
        try:
            json.dumps(self.meta)
        except TypeError as exc:
            raise PatternSetError(f"pattern set {self.name!r}: meta is not JSON: {exc}") from exc

    @classmethod
    def from_masks(
        cls,
        name: str,
        masks: Mapping[str, torch.Tensor],
        block_rows: int,
        block_cols: int,
        meta: dict[str, Any] | None = None,
    ) -> PatternSet:
        """Build a set from ``{layer name: boolean mask}``; families are detected per layer."""
        layers = {
            layer: LayerPattern.from_mask(layer, m, block_rows, block_cols)
            for layer, m in masks.items()
        }
        return cls(name, layers, dict(meta or {}))

    def masks(self) -> dict[str, torch.Tensor]:
        """``{layer: boolean mask}`` for every layer of the set."""
        return {layer: p.mask() for layer, p in self.layers.items()}

    @property
    def nnz(self) -> int:
        """Kept positions over all the set's layers."""
        return sum(p.nnz for p in self.layers.values())

    @property
    def numel(self) -> int:
        """Positions over all the set's layers."""
        return sum(p.numel for p in self.layers.values())

    @property
    def density(self) -> float:
        """Kept fraction over the set's layers (``nnz / numel``)."""
        return self.nnz / self.numel if self.layers else 1.0

    @property
    def family(self) -> str:
        """``block-column`` or ``elementwise`` if all layers agree, else ``mixed``."""
        fams = {p.family for p in self.layers.values()}
        return fams.pop() if len(fams) == 1 else ("block-column" if not fams else "mixed")

    def save(self, path: str | Path) -> None:
        """Write the set as one safetensors file with JSON metadata (no pickle)."""
        from safetensors.torch import save_file

        tensors = {}
        header = {}
        for layer, p in self.layers.items():
            tensors[f"indices/{layer}"] = p.indices.contiguous()
            tensors[f"offsets/{layer}"] = p.offsets.contiguous()
            header[layer] = {
                "shape": list(p.shape),
                "family": p.family,
                "block_rows": int(p.block_rows),
                "block_cols": int(p.block_cols),
            }
        metadata = {
            "format": FORMAT,
            "version": str(VERSION),
            "name": self.name,
            "layers": json.dumps(header),
            "meta": json.dumps(self.meta),
        }
        save_file(tensors, str(path), metadata=metadata)

    @classmethod
    def load(cls, path: str | Path) -> PatternSet:
        """Read a set written by ``save``; ``PatternSetError`` names the file and the fault."""
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise PatternSetError(f"{path}: pattern-set file not found")
        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        except Exception as exc:
            raise PatternSetError(f"{path}: not a readable safetensors file ({exc})") from exc
        if metadata.get("format") != FORMAT:
            raise PatternSetError(
                f"{path}: metadata format {metadata.get('format')!r}, expected {FORMAT!r}"
            )
        if metadata.get("version") != str(VERSION):
            raise PatternSetError(
                f"{path}: metadata version {metadata.get('version')!r}, expected {VERSION}"
            )
        try:
            header = json.loads(metadata["layers"])
            meta = json.loads(metadata.get("meta", "{}"))
            name = metadata["name"]
        except (KeyError, json.JSONDecodeError) as exc:
            raise PatternSetError(f"{path}: metadata 'layers'/'name'/'meta' bad: {exc}") from exc
        layers = {}
        for layer, h in header.items():
            try:
                layers[layer] = LayerPattern(
                    layer,
                    tuple(h["shape"]),
                    h["family"],
                    int(h["block_rows"]),
                    int(h["block_cols"]),
                    tensors[f"indices/{layer}"],
                    tensors[f"offsets/{layer}"],
                )
            except KeyError as exc:
                raise PatternSetError(f"{path}: layer {layer!r} lacks {exc}") from exc
            except PatternSetError as exc:
                raise PatternSetError(f"{path}: {exc}") from exc
        extra = set(tensors) - {f"{k}/{layer}" for layer in header for k in ("indices", "offsets")}
        if extra:
            raise PatternSetError(f"{path}: tensors {sorted(extra)} belong to no listed layer")
        return cls(name, layers, meta)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PatternSet):
            return NotImplemented
        return (
            self.name == other.name
            and self.meta == other.meta
            and self.layers.keys() == other.layers.keys()
            and all(self.layers[k] == other.layers[k] for k in self.layers)
        )

    __hash__ = None  # type: ignore[assignment]
