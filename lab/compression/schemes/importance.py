"""How much each attention head and FFN neuron matters (DynaBERT's importance).

DynaBERT ranks heads and neurons by the loss change from masking them, estimated to first
order (Michel et al., "Are Sixteen Heads Really Better than One?", which DynaBERT follows):
put a gate ``m`` (= 1) on a unit's output ``a``; ``dL/dm = sum(grad_a * a)`` over the
unit's outputs, and its absolute value, summed over batches of the training split, is the
unit's importance. Here ``a`` is a head's slice of the attention context (what
``out_proj`` reads) or a neuron's activation after the ReLU (what ``linear2`` reads), and
the gradients are those of the task's own training loss, model in eval mode (no dropout).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

    from lab.compression.finetune import Objective


def unit_importance(
    model: nn.Module, objective: Objective, batches: int, generator: torch.Generator, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(heads, neurons)``: every encoder layer's head and FFN-neuron importance,
    ``(layers, heads)`` and ``(layers, ff)``, over ``batches`` training batches of ``size``
    drawn with ``generator``; the weights are left as they were (gradients cleared)."""
    import torch

    from lab.host.compute import to_device

    layers = list(model.layers)
    n_heads = layers[0].self_attn.heads
    heads = torch.zeros(len(layers), n_heads, dtype=torch.float64)
    neurons = torch.zeros(len(layers), layers[0].linear1.out_features, dtype=torch.float64)
    seen: dict[tuple[str, int], torch.Tensor] = {}

    def keep(kind: str, i: int):  # a pre-hook holding the Linear's input, its grad kept
        def hook(_mod: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            args[0].retain_grad()
            seen[(kind, i)] = args[0]

        return hook

    handles = []
    for i, layer in enumerate(layers):
        handles.append(layer.self_attn.out_proj.register_forward_pre_hook(keep("head", i)))
        handles.append(layer.linear2.register_forward_pre_hook(keep("neuron", i)))
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    windows = objective.batches(generator, size)
    try:
        for _ in range(batches):
            inputs, targets = (to_device(t, dev) for t in next(windows))
            model.zero_grad(set_to_none=True)
            objective.loss(model, inputs, targets).backward()
            for i in range(len(layers)):
                ctx = seen[("head", i)]
                gate = (ctx * ctx.grad).reshape(-1, n_heads, ctx.shape[-1] // n_heads)
                heads[i] += gate.sum(dim=(0, 2)).abs().double().cpu()
                act = seen[("neuron", i)]
                neurons[i] += (
                    (act * act.grad).reshape(-1, act.shape[-1]).sum(0).abs().double().cpu()
                )
            seen.clear()
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return heads, neurons
