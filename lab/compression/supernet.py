"""The shared-weight supernet that scores the search's children cheaply.

RT3 fine-tunes every child for an epoch before scoring it; at this project's budgets that
allowed 6 (quick) or 24 (default) children, too few for REINFORCE to learn (on a noise-free
toy reward over the same decisions the mean reward of the last quarter of episodes minus the
first was -0.39 to +0.10 at 6 episodes and +0.22 to +1.07 at 300). Here, as in Once-for-All
and HAT, the BP backbone is trained once, jointly, for ``supernet_steps`` steps on children
drawn uniformly from the search space (each step: one random child's three sets, RT3's
weighted joint loss), and every child is then scored by masked evaluation of those shared
weights, with no steps of its own. A child costs three forward passes over ``child_tokens``
validation tokens, so 100 (quick) or 300 (default) episodes fit the budgets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

    from lab.compression.finetune import Objective

SetSampler = Callable[["torch.Generator"], Sequence[Mapping[str, "torch.Tensor"]]]


def train_supernet(
    model: nn.Module,
    sample: SetSampler,
    loss_weights: Sequence[float],
    objective: Objective,
    steps: int,
    keep: Mapping[str, torch.Tensor],
    generator: torch.Generator,
    batch_size: int,
    lr: float,
    on_step: Callable[[int, float], None] | None = None,
) -> float:
    """Train the shared weights of ``model`` for ``steps`` steps, each on the sets of one
    child ``sample(generator)`` draws; ``keep`` (BP) is re-applied after every step.
    Returns the last weighted loss (nan when ``steps`` is 0)."""
    import torch

    from lab.compression.finetune import masked_params, reapply

    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    windows = objective.batches(generator, batch_size)
    reapply(model, keep)
    last = float("nan")
    for step in range(steps):
        sets = sample(generator)
        if len(sets) != len(loss_weights):
            raise ValueError(f"{len(sets)} sets but {len(loss_weights)} loss weights")
        inputs, targets = next(windows)
        total = torch.zeros(())
        for masks, w in zip(sets, loss_weights, strict=True):
            total = total + w * objective.loss(model, inputs, targets, masked_params(model, masks))
        opt.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        reapply(model, keep)
        last = float(total.detach())
        if on_step is not None:
            on_step(step, last)
    model.eval()
    return last
