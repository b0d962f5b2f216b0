"""One pruning lifecycle for every scheme: ``prepare -> step -> squash_mask``.

Modelled on ``torch.ao.pruning``: a sparsifier holds one boolean mask per weight (the
weight's shape), a new scheme overrides one method, :meth:`Sparsifier.update_mask`, and
the lifecycle guarantees the invariants every scheme needs:

- masks only shrink: ``step`` intersects the proposed mask with the current one, so a
  pruned weight is never revived;
- pruned weights stay zero: call :meth:`Sparsifier.apply` after every optimizer step.

>>> import torch
>>> from torch import nn
>>> class Smallest(Sparsifier):
...     def update_mask(self, name, weight, mask, sparsity):
...         k = int(sparsity * weight.numel())
...         keep = torch.ones(weight.numel(), dtype=torch.bool)
...         keep[weight.abs().flatten().argsort()[:k]] = False
...         return keep.reshape(weight.shape)
>>> fc = nn.Sequential(nn.Linear(4, 4))
>>> s = Smallest()
>>> s.prepare(fc, {"0": 0.5})
>>> s.step()
>>> int(s.masks["0"].sum()), int((fc[0].weight != 0).sum())
(8, 8)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn


class CompressionError(ValueError):
    """Bad compression input: a config, a sparsity, a layer name; the message names it."""


def check_sparsity(value: object, where: str) -> float:
    """``value`` as a float in [0, 1), else ``CompressionError`` naming ``where``.

    >>> check_sparsity(0.5, "layers.0.linear1")
    0.5
    >>> check_sparsity(1.0, "decoder")
    Traceback (most recent call last):
    ...
    lab.compression.sparsifier.CompressionError: decoder: sparsity 1.0 is outside [0, 1)
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CompressionError(f"{where}: sparsity {value!r} is not a number in [0, 1)")
    v = float(value)
    if not 0.0 <= v < 1.0:
        raise CompressionError(f"{where}: sparsity {value!r} is outside [0, 1)")
    return v


def mask_sparsity(
    masks: Mapping[str, torch.Tensor], weights: Mapping[str, torch.Tensor]
) -> tuple[float, int]:
    """``(sparsity, non-zeros)`` of ``weights`` under ``masks`` (a layer without a mask
    counts dense).

    >>> import torch
    >>> mask_sparsity({"a": torch.tensor([True, False])}, {"a": torch.ones(2), "b": torch.ones(2)})
    (0.25, 3)
    """
    nnz = sum(int(masks[k].sum()) if k in masks else weights[k].numel() for k in weights)
    total = sum(w.numel() for w in weights.values())
    return 1.0 - nnz / total, nnz


def prunable_weights(model: nn.Module) -> dict[str, nn.Module]:
    """Every ``nn.Linear`` and ``nn.Embedding`` of ``model`` by qualified name, in order."""
    from torch import nn

    return {
        name: m
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear | nn.Embedding) and name
    }


class Sparsifier:
    """Masks for named ``nn.Linear``/``nn.Embedding`` weights; subclasses set ``update_mask``."""

    def __init__(self) -> None:
        self.modules: dict[str, nn.Module] = {}
        self.sparsity: dict[str, float] = {}
        self.masks: dict[str, torch.Tensor] = {}

    def prepare(
        self,
        model: nn.Module,
        config: Mapping[str, float],
        masks: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        """Attach to ``model``: ``config`` maps layer name to target sparsity in [0, 1).

        ``masks`` optionally starts from existing masks (e.g. PP starts from BP's).
        """
        import torch

        layers = prunable_weights(model)
        for name, sparsity in config.items():
            if name not in layers:
                raise CompressionError(
                    f"layer {name!r}: not an nn.Linear/nn.Embedding of the model; "
                    f"expected one of {sorted(layers)}"
                )
            self.sparsity[name] = check_sparsity(sparsity, f"layer {name!r}")
            module = layers[name]
            self.modules[name] = module
            start = None if masks is None else masks.get(name)
            if start is None:
                start = torch.ones_like(module.weight, dtype=torch.bool)
            elif start.shape != module.weight.shape:
                raise CompressionError(
                    f"layer {name!r}: mask shape {tuple(start.shape)} differs from weight "
                    f"shape {tuple(module.weight.shape)}"
                )
            self.masks[name] = start.to(torch.bool).clone()
        self.apply()

    def update_mask(
        self, name: str, weight: torch.Tensor, mask: torch.Tensor, sparsity: float
    ) -> torch.Tensor:
        """The scheme's proposal for layer ``name``: a boolean mask of ``weight``'s shape."""
        raise NotImplementedError

    def step(self) -> None:
        """Ask the scheme for new masks, intersect them with the current ones, apply."""
        import torch

        with torch.no_grad():
            for name, module in self.modules.items():
                proposed = self.update_mask(
                    name, module.weight.detach(), self.masks[name], self.sparsity[name]
                )
                self.masks[name] = self.masks[name] & proposed.to(torch.bool)
        self.apply()

    def apply(self) -> None:
        """Zero every pruned weight (call after each optimizer step)."""
        import torch

        with torch.no_grad():
            for name, module in self.modules.items():
                module.weight.mul_(self.masks[name])

    def squash_mask(self) -> dict[str, torch.Tensor]:
        """Apply the masks for good, detach from the model and return them."""
        self.apply()
        masks = {k: v.clone() for k, v in self.masks.items()}
        self.modules.clear()
        return masks
