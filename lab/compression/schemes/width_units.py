"""Width variants (DynaBERT): whole attention heads and FFN neurons, as masks on the runtime.

After :func:`rewire` a layer's heads and neurons are in descending importance, so width
``w`` keeps the first ``k`` of each: a narrower variant's units are a subset of a wider
one's. A variant is masks of the weights' shapes, whole rows and columns:

- a removed head ``h`` (head size ``d = emb / heads``): rows ``h d .. (h+1) d`` of each of
  Q, K and V in ``self_attn.in_proj`` and the same columns of ``self_attn.out_proj``;
- a removed neuron ``j``: row ``j`` of ``linear1`` and column ``j`` of ``linear2``.

Biases are not masked: a removed head's or neuron's output is read by no kept weight, so the
model computes exactly what it would without the unit. In the block-column format
(:mod:`lab.runtime.pattern_set`) a removed unit's rows are whole block-rows with no kept
column and its columns are absent from every block-row, so the native engine runs a
variant as a dense model of that width. That needs head and neuron counts in whole
block-rows: the head size a multiple of the block height, and a neuron count below the
full width a multiple of it (:func:`width_plan` rounds to the nearest).

>>> plan = width_plan({"emb": 64, "ff": 200, "heads": 2, "layers": 1}, (1.0, 0.5, 0.25), 32)
>>> plan.heads, plan.neurons
((2, 1, 1), (200, 96, 64))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lab.compression.sparsifier import CompressionError

if TYPE_CHECKING:
    import torch
    from torch import nn

# DynaBERT's width multipliers, widest first.
WIDTHS: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25)


@dataclass(frozen=True)
class WidthPlan:
    """How many heads and FFN neurons each width keeps in every layer (widest first)."""

    widths: tuple[float, ...]
    heads: tuple[int, ...]
    neurons: tuple[int, ...]
    emb: int
    ff: int
    n_heads: int
    layers: int

    @property
    def head_size(self) -> int:
        """Columns per head (``emb / heads``)."""
        return self.emb // self.n_heads


def width_plan(config: dict[str, Any], widths: tuple[float, ...], block: int) -> WidthPlan:
    """The kept heads and neurons per width for an RT3 Transformer ``config`` with
    ``block``-row blocks; ``CompressionError`` when heads do not fill whole block-rows or
    the widths are not descending in (0, 1] starting at 1."""
    emb, ff, heads, layers = (int(config[k]) for k in ("emb", "ff", "heads", "layers"))
    if not widths or widths[0] != 1.0 or any(not 0 < w <= 1 for w in widths):
        raise CompressionError(f"width multipliers {widths}: expected 1.0 first, each in (0, 1]")
    if list(widths) != sorted(widths, reverse=True):
        raise CompressionError(f"width multipliers {widths}: expected descending")
    d = emb // heads
    if d % block:
        raise CompressionError(
            f"--scheme width: head size {d} (emb {emb} / heads {heads}) is not a multiple of "
            f"the block height {block}, so a head is not whole block-rows; give --block "
            "dividing it"
        )
    head_counts = tuple(max(1, round(w * heads)) for w in widths)
    neuron_counts = tuple(
        ff if w == 1.0 else min(ff, max(block, round(w * ff / block) * block)) for w in widths
    )
    return WidthPlan(tuple(widths), head_counts, neuron_counts, emb, ff, heads, layers)


def width_masks(plan: WidthPlan, i: int) -> dict[str, torch.Tensor]:
    """Width ``plan.widths[i]``'s masks on every encoder layer (rewired: first units kept)."""
    import torch

    e, f, d = plan.emb, plan.ff, plan.head_size
    kh, kf = plan.heads[i] * d, plan.neurons[i]
    head_cols = torch.zeros(e, dtype=torch.bool)
    head_cols[:kh] = True
    neurons = torch.zeros(f, dtype=torch.bool)
    neurons[:kf] = True
    masks = {}
    for layer in range(plan.layers):
        p = f"layers.{layer}."
        masks[p + "self_attn.in_proj"] = head_cols.repeat(3)[:, None].expand(3 * e, e).clone()
        masks[p + "self_attn.out_proj"] = head_cols[None, :].expand(e, e).clone()
        masks[p + "linear1"] = neurons[:, None].expand(f, e).clone()
        masks[p + "linear2"] = neurons[None, :].expand(e, f).clone()
    return masks


def unit_orders(
    head_scores: torch.Tensor, neuron_scores: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per layer, heads and neurons by descending importance (a stable sort: ties keep
    their order), ``(layers, heads)`` and ``(layers, ff)`` indices."""
    import torch

    heads = torch.argsort(head_scores, dim=1, descending=True, stable=True)
    neurons = torch.argsort(neuron_scores, dim=1, descending=True, stable=True)
    return heads, neurons


def rewire(model: nn.Module, heads: torch.Tensor, neurons: torch.Tensor) -> None:
    """Permute ``model``'s heads and FFN neurons in place to the orders ``heads[l]`` and
    ``neurons[l]`` (each layer's units, new position first): the function is unchanged."""
    import torch

    with torch.no_grad():
        for i, layer in enumerate(model.layers):
            att = layer.self_attn
            e = att.in_proj.weight.shape[1]
            d = e // att.heads
            cols = (heads[i][:, None] * d + torch.arange(d)[None, :]).reshape(-1)
            rows = torch.cat([cols + k * e for k in range(3)])
            att.in_proj.weight.copy_(att.in_proj.weight[rows])
            att.in_proj.bias.copy_(att.in_proj.bias[rows])
            att.out_proj.weight.copy_(att.out_proj.weight[:, cols])
            n = neurons[i]
            layer.linear1.weight.copy_(layer.linear1.weight[n])
            layer.linear1.bias.copy_(layer.linear1.bias[n])
            layer.linear2.weight.copy_(layer.linear2.weight[:, n])
