"""Per-layer forms others run the same masks with: the anchors of ``rt3lab bench runtime``.

None of these is a runtime option (the runtime is the native engine, its reference the
PyTorch forms of ``lab.runtime.kernels``); each is a layer form a bench anchor
(``lab.bench.anchors``) puts in place of the torch reference's forms, to time what the
runtime is compared with:

- ``MaskPerCallLinear``: ``F.linear(x, weight * mask, bias)``, the mask applied in every
  call (what a masked training framework runs);
- ``BsrLinear``: the masked weight in PyTorch's block-sparse (BSR) layout, ``torch.addmm``;
- ``NativeBlockColumnLinear``: the per-layer C kernel (``lab.runtime.native``): each
  block-row's kept input columns read inside its multiply loop, outputs written in place;
  the packed weights live in a ``NativeBlockColumnPool`` shared by the sets. With every
  weight kept (``native_dense_forms``) it is the dense model on the same kernel;
- ``InstantLinear``: answers at once, to time the rest of the model (``instant_forms``).

>>> import torch
>>> w, mask = torch.randn(6, 4), torch.rand(6, 4) < 0.5
>>> x = torch.randn(3, 4)
>>> form = MaskPerCallLinear(w, None, mask)
>>> torch.allclose(form(x), x @ (w * mask).T)
True
>>> bsr_blocksize((64, 48), 32)
16
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from lab.runtime import kernels as K
from lab.runtime.kernels import pad_block_rows, tensors_nbytes

if TYPE_CHECKING:
    from torch import nn

    from lab.runtime.pattern_set import LayerPattern


class MaskPerCallLinear(K.Kernel):
    """Anchor: ``F.linear(x, weight * mask, bias)``, the mask applied in every call."""

    kind = "mask-per-call"

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, mask: torch.Tensor):
        self.weight, self.bias, self.mask = weight, bias, mask.to(weight.dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)

    @property
    def nbytes(self) -> int:
        return tensors_nbytes(self.mask)

    @property
    def macs_per_row(self) -> int:
        return self.weight.numel()


def bsr_blocksize(shape: tuple[int, int], preferred: int) -> int:
    """Largest square block size <= ``preferred`` dividing both dimensions (MKL needs square)."""
    for size in range(min(preferred, *shape), 0, -1):
        if shape[0] % size == 0 and shape[1] % size == 0:
            return size
    return 1


class BsrLinear(K.Kernel):
    """Anchor: the masked weight in PyTorch BSR, run as ``torch.addmm(b, W_bsr, x.T).T``."""

    kind = "bsr"

    def __init__(self, masked_weight: torch.Tensor, bias: torch.Tensor | None, block: int):
        size = bsr_blocksize(tuple(masked_weight.shape), block)
        with warnings.catch_warnings():  # "BSR support is in beta": the point of an anchor
            warnings.simplefilter("ignore", UserWarning)
            self.weight = masked_weight.to_sparse_bsr((size, size))
        out = masked_weight.shape[0]
        self.bias = (bias if bias is not None else torch.zeros(out)).reshape(out, 1)
        self.nnz_blocks = int(self.weight.values().shape[0])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        y = torch.addmm(self.bias, self.weight, flat.t()).t()
        return y.reshape(*x.shape[:-1], y.shape[-1])

    @property
    def nbytes(self) -> int:
        w = self.weight
        return tensors_nbytes(w.values(), w.col_indices(), w.crow_indices())


class NativeBlockColumnPool:
    """Packed weights of one layer for the native kernel (``lab.runtime.native``), shared by
    several sets: per block-row, one 32-float row per pool position of the sets' union
    (``SharedOrder``), no padding. A set runs the first positions it needs of every
    block-row with its own column indices (a position it does not keep reads a zero
    column), so nested sets cost only their indices.
    """

    def __init__(
        self, weight: torch.Tensor, bias: torch.Tensor | None, patterns: dict[str, LayerPattern]
    ):
        from lab.runtime import native

        self.kernel = native.kernel()
        if self.kernel is None:
            raise ValueError(f"native kernel unavailable: {native.status()}")
        if weight.dtype != torch.float32:
            raise ValueError(f"the native kernel runs float32 weights, not {weight.dtype}")
        out, inp = weight.shape
        shared = K.SharedOrder.of(patterns, inp)
        if shared.block_rows != native.BLOCK_ROWS:
            raise ValueError(
                f"the native kernel runs blocks of {native.BLOCK_ROWS} rows, not "
                f"{shared.block_rows}"
            )
        self.shared, self.keep = shared, shared.keep
        self.out_features, self.in_features = out, inp
        B, nbr = shared.block_rows, shared.n_block_rows
        w, self.bias = pad_block_rows(weight, bias, nbr * B)
        counts = shared.union_counts
        self.start = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)[:-1]])
        width = int(counts.max()) if nbr else 0
        cols = shared.order[:, :width]  # (nbr, width)
        packed = torch.gather(w.view(nbr, B, inp), 2, cols.unsqueeze(1).expand(-1, B, -1))
        valid = torch.arange(width).unsqueeze(0) < counts.unsqueeze(1)  # (nbr, width)
        self.w = packed.transpose(1, 2)[valid].contiguous()  # (sum of counts, B)

    @property
    def nbytes(self) -> int:
        """Bytes of the packed weights, block-row starts and bias copy."""
        return tensors_nbytes(self.w, self.start, self.bias)

    def serves(self, form: K.Kernel) -> bool:
        """Whether ``form`` runs on this pool's weights."""
        return isinstance(form, NativeBlockColumnLinear) and form.packed.w is self.w

    def form(self, name: str) -> NativeBlockColumnLinear:
        """Set ``name``'s form: the pool's weights, its own column indices and ends."""
        from lab.runtime.native import Packed

        shared = self.shared
        widths = shared.row_widths[name]
        members = torch.arange(shared.n_block_rows)
        union = int(shared.union_counts.max()) if widths.numel() else 0
        idx = shared.set_columns(name, members, union)  # (nbr, union)
        pos = torch.arange(union).unsqueeze(0)
        runs = pos < widths.unsqueeze(1)  # the positions this set runs
        zero = bool((idx[runs] == self.in_features).any())
        idx = torch.where(runs, idx, 0)  # never read: any valid column
        cols = idx[pos < shared.union_counts.unsqueeze(1)].to(torch.int32).contiguous()
        packed = Packed(self.start, self.start + widths, cols, self.w, self.bias)
        return NativeBlockColumnLinear(
            self.kernel, packed, self.in_features, self.out_features, zero
        )


class NativeBlockColumnLinear(K.Kernel):
    """A block-column set run by the native kernel: the input columns are read inside the
    multiply (no gathered copies), every block-row multiplies only its own kept columns (no
    bucket padding) and writes its outputs in place (no reordering). Built by
    ``NativeBlockColumnPool``; ``build`` makes a standalone one."""

    kind = "native"
    compacts = True

    def __init__(
        self, kernel: Any, packed: Any, in_features: int, out_features: int, zero_column: bool
    ):
        self.kernel, self.packed = kernel, packed
        self.in_features, self.out_features = in_features, out_features
        self.zero_column = zero_column
        self._staging: dict[int, torch.Tensor] = {}  # zero-column workspaces per token count

    @classmethod
    def build(
        cls, weight: torch.Tensor, bias: torch.Tensor | None, pattern: LayerPattern
    ) -> NativeBlockColumnLinear:
        """A form with packed weights of its own (raises ValueError without the kernel)."""
        return NativeBlockColumnPool(weight, bias, {"_": pattern}).form("_")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"native block-column layer: input has {x.shape[-1]} features, "
                f"expected {self.in_features}"
            )
        flat = x.reshape(-1, x.shape[-1]).contiguous()
        T, n_in = flat.shape
        if self.zero_column:  # positions the set does not keep read column n_in: zeros
            ws = self._staging.get(T)
            if ws is None or ws.dtype != flat.dtype:
                if len(self._staging) >= 8:  # a few token counts at most; drop the oldest
                    del self._staging[next(iter(self._staging))]
                ws = self._staging[T] = torch.zeros(T, n_in + 1, dtype=flat.dtype)
            ws[:, :n_in].copy_(flat)
            flat = ws
        rows = self.packed.n_block_rows * 32
        y = torch.empty(T, rows, dtype=flat.dtype)
        self.kernel.forward(flat, self.packed, y)
        if rows != self.out_features:
            y = y[:, : self.out_features].contiguous()
        return y.reshape(*lead, self.out_features)

    @property
    def nbytes(self) -> int:
        """Own bytes: the column indices and block-row ends (weights live in the pool)."""
        return tensors_nbytes(self.packed.cols, self.packed.end)

    @property
    def macs_per_row(self) -> int:
        return int((self.packed.end - self.packed.start).sum()) * 32


def native_dense_forms(linears: dict[str, nn.Module]) -> dict[str, K.Kernel] | None:
    """Every weight of these Linear layers kept, run by the native kernel: the dense model
    on the same kernel as the native per-layer sets (a control that separates what sparsity
    buys from what the kernel buys). None without the kernel."""
    from lab.runtime import native
    from lab.runtime.pattern_set import LayerPattern

    if native.kernel() is None:
        return None
    forms: dict[str, K.Kernel] = {}
    for name, m in linears.items():
        ones = torch.ones(m.weight.shape, dtype=torch.bool)
        full = LayerPattern.from_mask(name, ones, native.BLOCK_ROWS, native.BLOCK_ROWS)
        bias = None if m.bias is None else m.bias.detach()
        forms[name] = NativeBlockColumnLinear.build(m.weight.detach(), bias, full)
    return forms


class InstantLinear(K.Kernel):
    """A pruned Linear that answers instantly (zeros, kept per shape): with every pruned
    layer in this form, a forward pass times the rest of the model (the Amdahl bound)."""

    kind = "instant"

    def __init__(self, out_features: int):
        self.out_features = out_features
        self._zeros: dict[tuple[int, ...], torch.Tensor] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = (*x.shape[:-1], self.out_features)
        if shape not in self._zeros:
            self._zeros[shape] = torch.zeros(shape, dtype=x.dtype)
        return self._zeros[shape]


def instant_forms(linears: dict[str, nn.Module]) -> dict[str, K.Kernel]:
    """Forms that make every one of these Linear layers answer instantly."""
    return {name: InstantLinear(m.out_features) for name, m in linears.items()}
