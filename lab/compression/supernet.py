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
    from lab.compression.finetune import joint_steps

    return joint_steps(
        model, sample, loss_weights, objective, steps, keep, generator, batch_size, lr, on_step
    )
