"""Policy names: the simulator's built-in switching policies and the headline baselines.

Every table, plot and JSON names a policy by these strings. ``REFERENCE`` is the policy
the others are compared against; ``BASELINES`` are the forms a headline compares it with,
in the order reports show them (defined in simulator/README.md, "Baselines"). A policy
registered with the simulator (``simulator.register_policy``) shows up after them.

>>> compared_policies(["oracle", "rt3", "toy", "dense-max", "dvfs-only:pp-1"])
['dense-max', 'oracle', 'toy']
"""

from __future__ import annotations

from collections.abc import Iterable

REFERENCE = "rt3"
# The simulator's built-in policies (``NAME:ARG`` forms take an argument, e.g. dvfs-only:bp).
POLICIES: tuple[str, ...] = (REFERENCE, "dense-max", "dvfs-only", "static-sparse", "oracle")
# The baselines every headline compares rt3 against, by these names everywhere.
BASELINES: tuple[str, ...] = (
    "dense-max",
    "dvfs-only:bp",
    "dvfs-only:dense",
    "static-sparse",
    "oracle",
)


def fixed_set_run(policy: str) -> bool:
    """Whether ``policy`` is a ``POLICY:ARG`` form that is not a baseline: one pattern set
    held fixed (the demo's ``dvfs-only:pp-1``), a point of the accuracy-life front rather
    than a policy to compare against.

    >>> fixed_set_run("dvfs-only:pp-1"), fixed_set_run("dvfs-only:bp"), fixed_set_run("toy")
    (True, False, False)
    """
    return ":" in policy and policy not in BASELINES


def baselines_first(policies: Iterable[str]) -> list[str]:
    """``policies`` with the baselines first, in ``BASELINES`` order, then the others in
    the order given.

    >>> baselines_first(["toy", "oracle", "dense-max"])
    ['dense-max', 'oracle', 'toy']
    """
    rank = {name: i for i, name in enumerate(BASELINES)}
    return sorted(policies, key=lambda p: rank.get(p, len(BASELINES)))


def compared_policies(policies: Iterable[str]) -> list[str]:
    """The policies among ``policies`` (e.g. a run's result rows) that rt3 is compared
    against: each once, ``baselines_first``; rt3 itself and fixed-set runs are left out."""
    return baselines_first(
        dict.fromkeys(p for p in policies if p != REFERENCE and not fixed_set_run(p))
    )
