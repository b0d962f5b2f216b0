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

from typing import TYPE_CHECKING, Any

from lab.compression.finetune import StepPlan, joint_steps
from lab.compression.search.controller import random_child

if TYPE_CHECKING:
    from torch import nn

    from lab.compression.block_pruning import BlockPruned
    from lab.compression.compressor import Compressor
    from lab.compression.search.controller import SearchSpace


def train_supernet(
    c: Compressor, model: nn.Module, bp: BlockPruned, cands: dict[str, Any], space: SearchSpace
) -> dict[str, Any]:
    """Train the shared weights, from the BP model, for the budget's ``supernet_steps``
    steps of RT3's weighted joint loss, each on the sets of one child drawn uniformly from
    ``space``; BP's masks are re-applied after every step. Returns the trained state dict
    (``model`` ends on it)."""
    b = c.budget
    model.load_state_dict(bp.state)
    c.reporter.stage("supernet (joint training on random children)", b.supernet_steps)
    with c.seeded(23):
        joint_steps(
            model,
            lambda g: c.patterns.set_masks(bp.weights, bp.masks, cands, random_child(space, g)),
            c.loss_weights,
            c.task.objective(),
            bp.masks,
            StepPlan(
                b.supernet_steps,
                c.generator(23),
                b.batch_size,
                c.finetune_lr,
                c.report_step,
                c.teacher,
            ),
        )
    return {k: v.clone() for k, v in model.state_dict().items()}
