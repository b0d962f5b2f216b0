"""Search methods over the same space, at an equal number of child evaluations.

A method is ``(space, evaluate, n, seed) -> [(child, outcome), ...]``: it calls
``evaluate(child, i)`` exactly ``n`` times (``i`` counting from 0) and returns every child
with its outcome, in order. :data:`SEARCH_METHODS` names them: RT3's REINFORCE
(:func:`rl_search`), uniform random search (:func:`random_search`) and HAT's evolutionary
search (:func:`evolutionary_search`); ``rt3lab bench search`` runs each of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lab.compression.search.controller import Child, SearchSpace, random_child
from lab.compression.search.reinforce import Evaluator, Outcome, Search, SearchConfig

if TYPE_CHECKING:
    import torch

SearchMethod = Callable[[SearchSpace, Evaluator, int, int], list[tuple[Child, Outcome]]]


def rl_search(
    space: SearchSpace, evaluate: Evaluator, n: int, seed: int
) -> list[tuple[Child, Outcome]]:
    """RT3's controller trained by REINFORCE for ``n`` episodes (no checkpoints)."""
    out: list[tuple[Child, Outcome]] = []

    def ev(child: Child, episode: int) -> Outcome:
        outcome = evaluate(child, episode)
        out.append((child, outcome))
        return outcome

    Search(space, SearchConfig(seed=seed), None).run(ev, n)
    return out


def random_search(
    space: SearchSpace, evaluate: Evaluator, n: int, seed: int
) -> list[tuple[Child, Outcome]]:
    """``n`` children drawn uniformly (allowed level combinations only, as RL samples)."""
    import torch

    g = torch.Generator().manual_seed(10_007 + seed)
    out = []
    for i in range(n):
        child = random_child(space, g)
        out.append((child, evaluate(child, i)))
    return out


def _mutate(space: SearchSpace, child: Child, g: torch.Generator, p: float) -> Child:
    import torch

    fresh = random_child(space, g)
    combo = fresh.levels if float(torch.rand((), generator=g)) < p else child.levels
    choices = tuple(
        tuple(
            tuple(
                f if float(torch.rand((), generator=g)) < p else c
                for c, f in zip(cs, fs, strict=True)
            )
            for cs, fs in zip(cl, fl, strict=True)
        )
        for cl, fl in zip(child.choices, fresh.choices, strict=True)
    )
    return Child(combo, choices)


def _crossover(a: Child, b: Child, g: torch.Generator) -> Child:
    import torch

    pick = [float(torch.rand((), generator=g)) < 0.5 for _ in a.choices]
    choices = tuple(x if k else y for x, y, k in zip(a.choices, b.choices, pick, strict=True))
    return Child(a.levels, choices)


def evolutionary_search(
    space: SearchSpace,
    evaluate: Evaluator,
    n: int,
    seed: int,
    population: int = 10,
    parents: int = 5,
    mutation: float = 0.1,
) -> list[tuple[Child, Outcome]]:
    """HAT-style evolution: a random population, then generations of the ``parents`` best
    so far, half the offspring mutated (every decision redrawn with ``mutation``), half
    crossed over (each set's patterns from one parent, the first parent's levels)."""
    import torch

    g = torch.Generator().manual_seed(20_011 + seed)
    out: list[tuple[Child, Outcome]] = []

    def ev(child: Child) -> None:
        out.append((child, evaluate(child, len(out))))

    for _ in range(min(population, n)):
        ev(random_child(space, g))
    while len(out) < n:
        best = sorted(out, key=lambda co: -co[1].reward)[:parents]
        for k in range(population):
            if len(out) >= n:
                break
            i, j = (int(x) for x in torch.randint(len(best), (2,), generator=g))
            if k % 2 == 0:
                ev(_mutate(space, best[i][0], g, mutation))
            else:
                ev(_crossover(best[i][0], best[j][0], g))
    return out


SEARCH_METHODS: dict[str, SearchMethod] = {
    "rl": rl_search,
    "random": random_search,
    "evolution": evolutionary_search,
}
