"""The torch reference's executable forms of one pruned layer under one pattern set.

The runtime is the native engine (``lab.runtime.engine``); these forms are its PyTorch
reference (``ReconfigurableModel(executor="torch")``, and ``auto`` where the engine cannot
run a model), for correctness, training and models the engine does not run. Forms that
others run the same masks with live in ``lab.bench.layer_forms`` as anchors.

Every form is built once, at load, from the backbone weight and the set's pattern, and
then only called: nothing here rewrites weight data at inference time. Forms:

- ``BlockColumnLinear`` (the fast path): the kept input columns of every block-row are
  gathered once (``index_select``) and multiplied by prebuilt compact weights in a batched
  GEMM (``torch.baddbmm``, bias fused). Block-rows whose kept-column counts differ a lot
  are grouped into buckets padded to their largest count, so ragged masks do not pay for
  the widest block-row everywhere. The compact weights live in a ``BlockColumnPool``
  shared by all sets of the layer; each set holds only views and gather indices.
- ``DenseLinear``: ``F.linear`` with a (possibly pre-masked) dense weight. Runs layers that
  a set does not cover and elementwise patterns (which do not compact).
- ``DenseEmbedding`` and ``BlockColumnEmbedding``: a lookup, then the looked-up rows
  multiplied by their block-row's kept columns (a ``(n_block_rows, dim)`` table).

>>> import torch
>>> from lab.runtime.pattern_set import LayerPattern
>>> w, b = torch.randn(10, 7), torch.randn(10)
>>> mask = (torch.rand(4, 7) < 0.5).repeat_interleave(3, dim=0)[:10]
>>> k = BlockColumnLinear.build(w, b, LayerPattern.from_mask("fc", mask, 3, 3))
>>> x = torch.randn(5, 7)
>>> torch.allclose(k(x), torch.nn.functional.linear(x, w * mask, b), atol=1e-5)
True
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from lab.runtime.pattern_set import LayerPattern

# Per-bucket overhead (one gather + one batched GEMM call), expressed as weight elements of
# padding it is worth: a bucket is split off when that saves more padded work than this.
BUCKET_OVERHEAD_ELEMENTS = 24_576
# Gathered inputs are produced and consumed in chunks of about this size (cache-resident).
GATHER_CHUNK_BYTES = 256 * 1024
# From this many tokens on, inputs are transposed once per call and kept columns gathered
# as contiguous rows of the transpose (``index_select`` on dim 0 copies whole rows; on
# dim 1 it copies single floats, which cost as much as the GEMM at 35-128 tokens). Below
# it the transpose costs more than it saves. Measured here (1 thread, 32-row blocks).
ROW_GATHER_MIN_TOKENS = 16
# ... and only for layers doing at least this many multiply-adds per input element
# (``macs_per_row / in_features``): the transpose costs as much as a small layer's GEMM.
ROW_GATHER_MIN_REUSE = 140
# Chunk size of the row-gathered inputs (they are consumed by bmm as transposed operands).
ROW_GATHER_CHUNK_BYTES = 1024 * 1024
# How a pool stores a bucket: contiguous segments cut at the sets' widths (every set runs
# on contiguous weights; products of segments are summed), or one tensor that sets use
# through strided prefix views (one GEMM per chunk). Measured here: views win from about
# 16 tokens (fewer GEMM calls); at 1 token segments win end to end on a large model (each
# set's weights contiguous). ``ReconfigurableModel(layout="auto")`` picks by its row hint.
LAYOUTS = ("segments", "views")


def tensors_nbytes(*tensors: torch.Tensor | None) -> int:
    """Bytes of the given tensors' elements (None counts nothing)."""
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


class Kernel:
    """A prepared layer form: ``__call__(x)`` and ``nbytes`` (bytes it holds of its own)."""

    kind = "kernel"
    compacts = False

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def nbytes(self) -> int:
        """Bytes of tensors held by this form alone (shared backbone tensors excluded)."""
        return 0

    @property
    def macs_per_row(self) -> int:
        """Multiply-accumulates per input row (token), padding included."""
        return 0


class DenseKernel(Kernel):
    """A dense form over ``weight``; ``owned`` says whether ``weight`` belongs to this form
    (else it is the backbone's, counted there)."""

    kind = "dense"
    weight: torch.Tensor
    owned: bool

    @property
    def nbytes(self) -> int:
        return tensors_nbytes(self.weight) if self.owned else 0


class DenseLinear(DenseKernel):
    """``F.linear(x, weight, bias)``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, owned: bool = False):
        self.weight, self.bias, self.owned = weight, bias, owned

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    @property
    def macs_per_row(self) -> int:
        return self.weight.numel()


Segment = tuple[torch.Tensor, torch.Tensor]  # (flat gather indices, weights (n, k, B))
Part = tuple[torch.Tensor, list[Segment], torch.Tensor | None]  # (block-row ids, ..., bias)


class BlockColumnLinear(Kernel):
    """Compact block-column execution: gathered inputs, prebuilt weights, batched GEMM.

    ``parts`` are ``(block-row ids, segments, bias (n, 1, B) or None)``; a part's kept
    positions are split into segments ``(flat gather indices, weights (n, k, B))`` whose
    products are summed. Segment weights are contiguous tensors of a ``BlockColumnPool``
    shared by all sets: a set uses the first segments of each bucket (or, in the ``views``
    layout, a strided prefix view of one tensor). An index equal to
    ``in_features`` reads a zero column appended to the input (positions the shared layout
    holds but this set does not keep).

    The gathered inputs of a segment are ``tokens x n x k`` floats, as large as its weights
    when ``tokens`` is near ``B``: they are produced and consumed in chunks of block-rows
    small enough to stay in cache (``GATHER_CHUNK_BYTES``), into workspaces kept per token
    count. A form is therefore not re-entrant; ``ReconfigurableModel`` serialises calls.
    At many tokens a large layer gathers whole rows of the transposed input instead
    (``ROW_GATHER_MIN_TOKENS``, ``ROW_GATHER_MIN_REUSE``; ``in_features`` enables it) and
    hands them to ``bmm`` as a transposed operand: same GEMMs, a far cheaper gather.
    """

    kind = "block-column"
    compacts = True

    def __init__(
        self,
        out_features: int,
        block_rows: int,
        parts: list[Part],
        fill: torch.Tensor | None,
        zero_column: bool,
        in_features: int | None = None,
    ):
        self.out_features = out_features
        self.block_rows = block_rows
        self.n_block_rows = math.ceil(out_features / block_rows)
        self.parts = parts
        self.fill = fill  # (n_block_rows * B,): bias (or zeros) for block-rows with no part
        self.zero_column = zero_column
        members = torch.cat([m for m, *_ in parts]) if parts else torch.zeros(0, dtype=torch.long)
        self.members = members
        self.in_order = fill is None and torch.equal(members, torch.arange(self.n_block_rows))
        # The workspace holds the computed block-rows (bucket order), then the block-rows no
        # part computes (bias only, written once per plan); ``source_row[b]`` is where
        # block-row ``b`` sits, so one contiguous-row ``index_select`` restores the order.
        nbr = self.n_block_rows
        covered = torch.zeros(nbr, dtype=torch.bool)
        covered[members] = True
        self.empty_rows = torch.arange(nbr)[~covered]
        self.source_row = torch.empty(nbr, dtype=torch.long)
        self.source_row[torch.cat([members, self.empty_rows])] = torch.arange(nbr)
        self._plans: dict[int, list[tuple[Any, ...]]] = {}
        reuse = self.macs_per_row / in_features if in_features else 0.0
        # token counts from which the transposed input is row-gathered (see the constants)
        self.row_gather_from = ROW_GATHER_MIN_TOKENS if reuse >= ROW_GATHER_MIN_REUSE else None
        self._outs: dict[int, torch.Tensor] = {}
        self._staging: dict[int, torch.Tensor] = {}  # gather sources per token count

    @classmethod
    def build(
        cls, weight: torch.Tensor, bias: torch.Tensor | None, pattern: LayerPattern
    ) -> BlockColumnLinear:
        """A form with its own compact weights (no sharing with other sets)."""
        return BlockColumnPool(weight, bias, {"_": pattern}).form("_")

    def _plan(self, T: int, dtype: torch.dtype) -> tuple[torch.Tensor, list[tuple[Any, ...]]]:
        """Workspace ``(n_block_rows, T, B)`` and steps for ``T`` tokens: (indices, gather
        output, GEMM operand ``(n, T, k)``, weights, bias, output, accumulate). Which way
        inputs are gathered depends on ``T`` (see ``ROW_GATHER_MIN_TOKENS``)."""
        if T in self._plans and self._outs[T].dtype == dtype:
            return self._outs[T], self._plans[T]
        rows = self._row_gather(T)
        budget = ROW_GATHER_CHUNK_BYTES if rows else GATHER_CHUNK_BYTES
        B, nbr = self.block_rows, self.n_block_rows
        out = torch.empty(nbr, T, B, dtype=dtype)
        if self.empty_rows.numel():  # bias-only block-rows, after the computed ones
            bias = self.fill.view(nbr, 1, B)[self.empty_rows]
            out[self.members.numel() :] = bias.to(dtype)
        plan = []
        row = 0
        for members, segments, bb in self.parts:
            n = members.numel()
            for j, (idx, wc) in enumerate(segments):
                k = wc.shape[1]
                chunk = max(1, min(n, budget // max(1, T * k * 4)))
                buf = torch.empty(T * chunk * k, dtype=dtype)
                for s in range(0, n, chunk):
                    e = min(n, s + chunk)
                    m = e - s
                    if rows:  # gathered rows of the transposed input: (m * k, T)
                        gathered = buf[: m * k * T].view(m * k, T)
                        operand = gathered.view(m, k, T).transpose(1, 2)
                    else:  # gathered columns of the input: (T, m * k)
                        gathered = buf[: T * m * k].view(T, m * k)
                        operand = gathered.view(T, m, k).transpose(0, 1)
                    plan.append(
                        (
                            idx[s * k : e * k],
                            gathered,
                            operand,
                            wc[s:e],
                            None if bb is None or j > 0 else bb[s:e],
                            out[row + s : row + e],
                            j > 0,
                        )
                    )
            row += n
        if len(self._plans) > 8:  # a few token counts at most; drop the oldest
            oldest = next(iter(self._plans))
            del self._plans[oldest], self._outs[oldest]
            self._staging.pop(oldest, None)
        self._plans[T], self._outs[T] = plan, out
        return out, plan

    def _row_gather(self, T: int) -> bool:
        return self.row_gather_from is not None and self.row_gather_from <= T

    def _staged(self, flat: torch.Tensor) -> tuple[torch.Tensor, int]:
        """The gather source and its dim: the input (transposed for row gathers), with a
        zero column (row) appended when a set gathers positions it does not keep; one copy
        into a workspace kept per token count (its zero column written once)."""
        T, n_in = flat.shape
        rows = self._row_gather(T)
        if not self.zero_column and not rows:
            return flat, 1
        ws = self._staging.get(T)
        if ws is None or ws.dtype != flat.dtype:
            shape = (n_in + self.zero_column, T) if rows else (T, n_in + self.zero_column)
            ws = torch.zeros(shape, dtype=flat.dtype)
            self._staging[T] = ws
        if rows:
            ws[:n_in].copy_(flat.t())
            return ws, 0
        ws[:, :n_in].copy_(flat)
        return ws, 1

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        flat = x.reshape(-1, x.shape[-1])
        T = flat.shape[0]
        B, nbr = self.block_rows, self.n_block_rows
        out, plan = self._plan(T, flat.dtype)
        source, dim = self._staged(flat)
        for idx, gathered, g, wc, bb, dst, accumulate in plan:
            torch.index_select(source, dim, idx, out=gathered)
            if accumulate:
                dst.baddbmm_(g, wc)
            elif bb is None:
                torch.bmm(g, wc, out=dst)
            else:
                torch.baddbmm(bb, g, wc, out=dst)
        # one pass from the workspace (block-rows in bucket order, (nbr, T, B)) into a
        # fresh (T, nbr, B) output in block-row order
        y = torch.empty(T, nbr, B, dtype=out.dtype)
        if self.in_order:
            y.copy_(out.transpose(0, 1))
        else:
            torch.index_select(out.transpose(0, 1), 1, self.source_row, out=y)
        y = y.view(T, nbr * B)
        if nbr * B != self.out_features:  # contiguous, as nn.Linear's (callers .view it)
            y = y[:, : self.out_features].contiguous()
        return y.reshape(*lead, self.out_features)

    @property
    def nbytes(self) -> int:
        """Own bytes: gather indices and block-row ids (weights and bias live in the pool)."""
        return sum(tensors_nbytes(m, *(idx for idx, _ in segs)) for m, segs, _ in self.parts)

    @property
    def macs_per_row(self) -> int:
        return sum(wc.numel() for _, segs, _ in self.parts for _, wc in segs)


@dataclass
class SharedOrder:
    """How several block-column sets of one layer share packed weights.

    Per block-row the union of the sets' kept columns, ordered so that columns kept by more
    sets come first: for nested sets (RT3's, each inside BP) every set's columns are then a
    prefix. ``order[b, p]`` is the column at pool position ``p`` of block-row ``b``,
    ``position`` the inverse, ``union_counts[b]`` the union's size, ``keep[s]`` set ``s``'s
    ``(n_block_rows, in)`` kept columns and ``row_widths[s][b]`` the positions it needs
    (its last kept position + 1).
    """

    block_rows: int
    n_block_rows: int
    keep: dict[str, torch.Tensor]
    order: torch.Tensor
    position: torch.Tensor
    union_counts: torch.Tensor
    row_widths: dict[str, torch.Tensor]

    @classmethod
    def of(cls, patterns: dict[str, LayerPattern], in_features: int) -> SharedOrder:
        """The shared order of ``patterns`` (block-column, one block height)."""
        first = next(iter(patterns.values()))
        B = int(first.block_rows)
        for name, p in patterns.items():
            if p.family != "block-column" or int(p.block_rows) != B:
                raise ValueError(
                    f"layer {p.layer!r}, set {name!r}: pools need block-column patterns with "
                    f"block_rows {B}, got {p.family} with {p.block_rows}"
                )
        inp = in_features
        nbr = first.n_block_rows
        keep = {name: p.mask()[::B] for name, p in patterns.items()}
        votes = torch.stack(list(keep.values())).sum(0)  # (nbr, inp) sets keeping each column
        # per block-row, pool order: most votes first, then column index
        key = (len(keep) + 1 - votes) * (inp + 1) + torch.arange(inp)
        key[votes == 0] = torch.iinfo(key.dtype).max
        order = key.argsort(dim=1)  # (nbr, inp): pool position -> column
        position = torch.empty_like(order)  # column -> pool position
        position.scatter_(1, order, torch.arange(inp).expand(nbr, inp))
        widths = {name: torch.where(k, position, -1).max(1).values + 1 for name, k in keep.items()}
        return cls(B, nbr, keep, order, position, (votes > 0).sum(1), widths)

    def set_columns(self, name: str, members: torch.Tensor, width: int) -> torch.Tensor:
        """``(len(members), width)`` input columns of set ``name`` at the first ``width``
        pool positions of these block-rows; positions it does not keep read column ``in``
        (a zero column the caller appends)."""
        cols = self.order[members, :width]
        ok = torch.gather(self.keep[name][members], 1, cols)
        return torch.where(ok, cols, self.order.shape[1])


class BlockColumnPool:
    """Compact weights of one layer shared by several block-column sets.

    Per block-row the pool holds the union of the sets' kept columns, ordered so that
    columns kept by more sets come first: for nested sets (RT3's, each inside BP) every
    set's columns are then a prefix. Each bucket of block-rows (see ``_buckets``) stores
    its weights as contiguous segments cut at the sets' widths, so a set runs on the
    first segments with its own gather indices and no weight copy. Non-nested sets stay
    correct: positions a set does not keep gather a zero input column.
    """

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        patterns: dict[str, LayerPattern],
        layout: str = "segments",
    ):
        if layout not in LAYOUTS:
            raise ValueError(f"pool layout {layout!r} is not one of {LAYOUTS}")
        self.layout = layout
        out, inp = weight.shape
        shared = SharedOrder.of(patterns, inp)
        self.shared = shared
        B, nbr = shared.block_rows, shared.n_block_rows
        self.out_features, self.in_features, self.block_rows = out, inp, B
        self.n_block_rows = nbr
        w, self.bias_pad = pad_block_rows(weight, bias, nbr * B)
        w = w.view(nbr, B, inp)
        order, union_counts = shared.order, shared.union_counts
        self.order, self.position, self.keep = order, shared.position, shared.keep
        self.row_widths = shared.row_widths
        # buckets: (block-row ids, segment bounds, segment weights, bias)
        self.buckets: list[tuple[torch.Tensor, list[int], list[torch.Tensor], Any]] = []
        total = torch.stack(list(self.row_widths.values())).sum(0)
        for members in _buckets(union_counts.tolist(), B):
            m = torch.tensor(members)
            if layout == "views":  # widest first: a set cuts a bucket into runs of its widths
                m = m[torch.argsort(total[m], descending=True, stable=True)]
            k_max = int(union_counts[m].max())
            cols = order[m, :k_max]  # (n, k_max)
            wc = torch.gather(w[m], 2, cols.unsqueeze(1).expand(-1, B, -1))  # (n, B, k_max)
            wc = wc.transpose(1, 2).contiguous()  # (n, k_max, B)
            # zero the weights where the position is padding beyond a row's union width
            pad = torch.arange(k_max).unsqueeze(0) >= union_counts[m].unsqueeze(1)
            wc[pad] = 0.0
            widths = {k_max}
            if layout == "segments":
                widths |= {self._width(name, m) for name in self.keep}
            bounds = [0, *sorted(k for k in widths if k > 0)]
            segs = [wc[:, a:b].contiguous() for a, b in itertools.pairwise(bounds)]
            bb = None if self.bias_pad is None else self.bias_pad.view(nbr, 1, B)[m].contiguous()
            self.buckets.append((m, bounds, segs, bb))
        # the weights' addresses, to tell which forms run on this pool
        self._ptrs = {seg.data_ptr() for _, _, segs, _ in self.buckets for seg in segs}

    def _width(self, name: str, members: torch.Tensor) -> int:
        """Pool positions set ``name`` needs in these block-rows (its last kept position + 1)."""
        return int(self.row_widths[name][members].max())

    @property
    def nbytes(self) -> int:
        """Bytes of the shared compact weights and bias copies."""
        own = sum(tensors_nbytes(*segs, bb) for _, _, segs, bb in self.buckets)
        return own + tensors_nbytes(self.bias_pad)

    def serves(self, form: Kernel) -> bool:
        """Whether ``form`` runs on this pool's weights."""
        if not isinstance(form, BlockColumnLinear):
            return False
        return any(w.data_ptr() in self._ptrs for _, segs, _ in form.parts for _, w in segs)

    def form(self, name: str) -> BlockColumnLinear:
        """The executable form of set ``name`` on this pool (shared segments, own indices)."""
        inp = self.in_features
        parts: list[Part] = []
        zero_column = False
        covered = 0
        for m, bounds, segs, bb in self.buckets:
            k_set = self._width(name, m)
            if k_set <= 0:
                continue  # the set keeps nothing in these block-rows: bias only
            idx = self.shared.set_columns(name, m, k_set)
            zero_column = zero_column or bool((idx == inp).any())
            if self.layout == "views":  # strided views of the bucket's weights, per run
                widths = self.row_widths[name][m].tolist()
                for a, b in _runs(widths, self.block_rows):
                    k = max(widths[a:b])
                    if k > 0:
                        flat_idx = idx[a:b, :k].reshape(-1).contiguous()
                        bias = None if bb is None else bb[a:b]
                        parts.append((m[a:b], [(flat_idx, segs[0][a:b, :k])], bias))
                        covered += b - a
                continue
            used = [
                (idx[:, a:b].reshape(-1).contiguous(), seg)
                for a, b, seg in zip(bounds, bounds[1:], segs, strict=False)
                if b <= k_set
            ]
            parts.append((m, used, bb))
            covered += m.numel()
        fill = None
        if covered < self.n_block_rows or not parts:
            fill = (
                self.bias_pad
                if self.bias_pad is not None
                else torch.zeros(self.n_block_rows * self.block_rows)
            )
        return BlockColumnLinear(
            self.out_features, self.block_rows, parts, fill, zero_column, self.in_features
        )


def pad_block_rows(
    weight: torch.Tensor, bias: torch.Tensor | None, rows: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``weight`` and ``bias`` padded with zero rows to ``rows`` (whole block-rows)."""
    pad = rows - weight.shape[0]
    w = F.pad(weight.detach(), (0, 0, 0, pad))
    return w, None if bias is None else F.pad(bias.detach(), (0, pad))


def _runs(widths: list[int], block_rows: int) -> list[tuple[int, int]]:
    """Cut block-rows kept in this order into contiguous runs ``[a, b)``, each padded to its
    widest member: dynamic programming on padded weight plus a per-call overhead (as
    ``_buckets``, but the order is fixed because the weights are shared views)."""
    n = len(widths)
    best = [0.0] + [math.inf] * n
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        widest = 0
        for i in range(j - 1, -1, -1):
            widest = max(widest, widths[i])
            cost = best[i] + (j - i) * widest * block_rows + BUCKET_OVERHEAD_ELEMENTS
            if cost < best[j]:
                best[j], cut[j] = cost, i
    runs = []
    j = n
    while j > 0:
        runs.append((cut[j], j))
        j = cut[j]
    return runs[::-1]


def _buckets(counts: list[int], block_rows: int) -> list[list[int]]:
    """Group block-rows (by kept-column count) into padded buckets; empty rows dropped.

    Dynamic programming over the block-rows sorted by count: a bucket costs its padded
    weight (members x largest count x block_rows) plus a fixed per-call overhead.
    """
    order = sorted((b for b, c in enumerate(counts) if c > 0), key=lambda b: -counts[b])
    if not order:
        return []
    n = len(order)
    ks = [counts[b] for b in order]  # descending
    best = [0.0] + [math.inf] * n
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        # bucket = order[i:j]; its widest member is ks[i]
        for i in range(j - 1, -1, -1):
            cost = best[i] + (j - i) * ks[i] * block_rows + BUCKET_OVERHEAD_ELEMENTS
            if cost < best[j]:
                best[j], cut[j] = cost, i
            if (j - i) * ks[i] * block_rows > best[j]:
                break  # wider buckets only cost more from here on
    groups = []
    j = n
    while j > 0:
        i = cut[j]
        groups.append(sorted(order[i:j]))
        j = i
    return groups[::-1]


class DenseEmbedding(DenseKernel):
    """A plain lookup."""

    def __init__(self, weight: torch.Tensor, padding_idx: int | None, owned: bool = False):
        self.weight, self.padding_idx, self.owned = weight, padding_idx, owned

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.embedding(tokens, self.weight, self.padding_idx)


class BlockColumnEmbedding(Kernel):
    """Lookup, then multiply each row by its block-row's kept-column mask."""

    kind = "block-column"

    def __init__(self, weight: torch.Tensor, padding_idx: int | None, pattern: LayerPattern):
        self.weight, self.padding_idx = weight, padding_idx
        self.block_rows = int(pattern.block_rows)
        table = torch.zeros(pattern.n_block_rows, pattern.shape[1], dtype=weight.dtype)
        block_of = torch.repeat_interleave(
            torch.arange(pattern.n_block_rows), pattern.kept_counts()
        )
        table[block_of, pattern.indices.long()] = 1.0
        self.table = table

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        rows = F.embedding(tokens, self.weight, self.padding_idx)
        return rows * F.embedding(
            torch.div(tokens, self.block_rows, rounding_mode="floor"), self.table
        )

    @property
    def nbytes(self) -> int:
        return tensors_nbytes(self.table)
