"""The RL controller: an RNN cell (35 hidden units, RT3's FNAS lineage) that emits a child.

A child is one sequence of decisions: first which ``n_sets`` of the sparsity levels to use
(one choice among all combinations, in ascending sparsity, mapped to the governor's levels
from the highest frequency down), then for every set, every layer and every pattern slot
one candidate index. Each decision feeds its embedding back as the next input.

RT3 samples every combination and penalises children that break a timing constraint.
Latency comes from an estimator, so which combinations break one is known before any
child is trained: ``SearchSpace.allowed`` lists the combinations worth sampling and the
controller never samples the others (invalid-action masking). Episodes are then spent on
children that can win, instead of on penalties.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class SearchSpace:
    """What the controller chooses among.

    >>> s = SearchSpace(layers=("a", "b"), n_levels=10, n_sets=3, slots=4, n_candidates=10)
    >>> len(s.combos), s.n_pattern_decisions
    (120, 24)
    """

    layers: tuple[str, ...]
    n_levels: int = 10
    n_sets: int = 3
    slots: int = 4
    n_candidates: int = 10
    allowed: tuple[int, ...] | None = None  # indices into ``combos`` (None: all of them)

    def __post_init__(self) -> None:
        if self.allowed is not None:
            n = len(self.combos)
            if not self.allowed or any(not 0 <= i < n for i in self.allowed):
                raise ValueError(f"allowed level combinations must be indices in [0, {n})")

    @property
    def combos(self) -> list[tuple[int, ...]]:
        """Every choice of ``n_sets`` level indices, ascending."""
        return list(itertools.combinations(range(self.n_levels), self.n_sets))

    @property
    def n_pattern_decisions(self) -> int:
        """Candidate choices per child: sets x layers x slots."""
        return self.n_sets * len(self.layers) * self.slots

    def signature(self) -> dict[str, object]:
        """JSON identity (a resumed search must have the same space)."""
        return {
            "layers": list(self.layers),
            "n_levels": self.n_levels,
            "n_sets": self.n_sets,
            "slots": self.slots,
            "n_candidates": self.n_candidates,
            "allowed": None if self.allowed is None else list(self.allowed),
        }


@dataclass(frozen=True)
class Child:
    """One sampled child: level indices (ascending sparsity) and pattern choices."""

    levels: tuple[int, ...]
    choices: tuple[tuple[tuple[int, ...], ...], ...]  # [set][layer][slot]

    @classmethod
    def decode(cls, space: SearchSpace, actions: list[int]) -> Child:
        """Turn the controller's action sequence into a child."""
        combo = space.combos[actions[0]]
        rest = actions[1:]
        n_layers = len(space.layers)
        choices = tuple(
            tuple(
                tuple(rest[(s * n_layers + li) * space.slots + k] for k in range(space.slots))
                for li in range(n_layers)
            )
            for s in range(space.n_sets)
        )
        return cls(tuple(combo), choices)

    def to_dict(self) -> dict[str, object]:
        """JSON form."""
        return {
            "levels": list(self.levels),
            "choices": [[list(c) for c in s] for s in self.choices],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Child:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(d["levels"]), tuple(tuple(tuple(c) for c in s) for s in d["choices"]))


def build_controller(space: SearchSpace, hidden: int = 35) -> torch.nn.Module:
    """A fresh controller for ``space`` (initialise under a seeded RNG for reproducibility)."""
    import torch
    from torch import nn

    class Controller(nn.Module):
        """RNN-cell policy over the level combination and the pattern slots."""

        def __init__(self) -> None:
            super().__init__()
            self.cell = nn.RNNCell(hidden, hidden)
            self.start = nn.Parameter(torch.zeros(1, hidden))
            self.combo_embed = nn.Embedding(len(space.combos), hidden)
            self.cand_embed = nn.Embedding(space.n_candidates, hidden)
            self.combo_head = nn.Linear(hidden, len(space.combos))
            self.cand_head = nn.Linear(hidden, space.n_candidates)
            # -inf on the level combinations the space rules out: never sampled
            barred = torch.zeros(len(space.combos))
            if space.allowed is not None:
                barred.fill_(float("-inf"))
                barred[list(space.allowed)] = 0.0
            self.register_buffer("barred", barred, persistent=False)

        def sample(self, generator: torch.Generator) -> tuple[list[int], torch.Tensor]:
            """Sample one action sequence; returns the actions and their summed log-prob."""
            h = torch.zeros(1, hidden)
            x = self.start
            actions: list[int] = []
            log_prob = torch.zeros(())
            for step in range(1 + space.n_pattern_decisions):
                h = self.cell(x, h)
                head, embed = (
                    (self.combo_head, self.combo_embed)
                    if step == 0
                    else (self.cand_head, self.cand_embed)
                )
                logits = head(h) + self.barred if step == 0 else head(h)
                logp = torch.log_softmax(logits, dim=-1)
                a = int(torch.multinomial(logp.exp(), 1, generator=generator))
                actions.append(a)
                log_prob = log_prob + logp[0, a]
                x = embed(torch.tensor([a]))
            return actions, log_prob

    return Controller()


def random_child(space: SearchSpace, generator: torch.Generator) -> Child:
    """A child drawn uniformly: an allowed level combination and every slot's candidate.

    >>> import torch
    >>> s = SearchSpace(layers=("a",), n_levels=4, n_sets=2, slots=2, n_candidates=3)
    >>> c = random_child(s, torch.Generator().manual_seed(0))
    >>> len(c.levels), len(c.choices[0][0])
    (2, 2)
    """
    import torch

    allowed = list(space.allowed) if space.allowed is not None else list(range(len(space.combos)))
    combo = allowed[int(torch.randint(len(allowed), (1,), generator=generator))]
    picks = torch.randint(space.n_candidates, (space.n_pattern_decisions,), generator=generator)
    return Child.decode(space, [combo, *(int(x) for x in picks)])
