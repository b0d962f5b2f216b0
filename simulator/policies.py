"""Switching policies: which variant (pattern set) runs at each frequency level.

Every policy is a table level -> variant fixed before the run, plus the governor it runs
under, registered by name (``register_policy``: a new policy is a table function and one
registration, see the README's "How to add"). The built-in ones (``POLICIES``):

- ``rt3``: at each level, the most accurate of the reconfigurable model's variants (every
  variant but the unpruned one: RT3 switches among pattern sets of one BP backbone and
  cannot run the separate dense model) whose latency meets the deadline there; when none
  does, the fastest, with its misses counted and a warning.
- ``dense-max``: the unpruned model (the variant named ``dense``, else the one with
  sparsity 0) at the highest level, always: no DVFS (the governor is fixed at the top
  level) and no pruning.
- ``dvfs-only``: one fixed variant, the most accurate (``dvfs-only:NAME`` picks another),
  under the profile's governor. ``dvfs-only:bp`` (the BP model following the governor) is
  RT3's own comparison; ``dvfs-only:dense`` the unpruned model following the governor.
- ``static-sparse``: the sparsest variant throughout, under the profile's governor.
- ``oracle``: see ``simulator.oracle``: with perfect knowledge of the whole discharge, the
  per-level choice that maximises accuracy-weighted completed inferences.

Under an accuracy bound (``simulate(max_accuracy_loss=...)``, ``simulator.accuracy_bound``)
each policy instead runs the longest-lasting table of its ``TableSpace`` whose mean
accuracy stays within the bound (registered as ``space``; without one, its own table).

"Most accurate" ranks by accuracy when every variant has one; otherwise by sparsity (least
sparse = most accurate) and the result's ``mean_accuracy`` is None.
The deadline at a level is the profile's timing constraint there for continuous, Poisson
and trace workloads; for a periodic workload it is the period, or the profile's constraint
when that is smaller.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from contracts.policies import BASELINES, REFERENCE, baselines_first
from simulator.device import Device, VariantSpec
from simulator.errors import SimulatorInputError
from simulator.registry import Registry


@dataclass(frozen=True)
class PolicyInputs:
    """What a policy chooses its level -> variant table from: the device, the levels the
    governor can reach, the workload's own deadline (None: the profile's constraints
    only), the ``ARG`` of a ``NAME:ARG`` form, and ``score``, which simulates a table and
    returns its accuracy-weighted completed inferences (hindsight, for the oracle)."""

    device: Device
    levels: list[int]
    workload_deadline_s: float | None
    arg: str = ""
    score: Callable[[dict[int, str]], float] | None = None


PolicyTable = Callable[[PolicyInputs], dict[int, str]]


@dataclass(frozen=True)
class TableSpace:
    """The level -> variant tables a policy may choose from under an accuracy bound
    (``simulate(max_accuracy_loss=...)``): ``options[i]`` are the variants allowed at
    ``levels[i]``, most accurate first, and every combination is a table; with
    ``same_set`` one variant runs at every level and ``options`` holds one tuple, the sets.

    >>> space = TableSpace((800, 1000), (("a", "b"), ("a",)))
    >>> space.count(), list(space.tables())
    (2, [{800: 'a', 1000: 'a'}, {800: 'b', 1000: 'a'}])
    >>> TableSpace((800, 1000), (("a", "b"),), same_set=True).count()
    2
    """

    levels: tuple[int, ...]
    options: tuple[tuple[str, ...], ...]
    same_set: bool = False

    def count(self) -> int:
        """How many tables the space holds."""
        total = 1
        for opts in self.options:
            total *= len(opts)
        return total

    def tables(self) -> Iterator[dict[int, str]]:
        """Every table, in order (the most accurate first)."""
        if self.same_set:
            for name in self.options[0]:
                yield dict.fromkeys(self.levels, name)
            return
        for combo in itertools.product(*self.options):
            yield dict(zip(self.levels, combo, strict=True))


PolicySpace = Callable[[PolicyInputs], TableSpace]


@dataclass(frozen=True)
class Policy:
    """A registered policy: ``table`` picks its level -> variant table; ``governor``, when
    set, replaces the run's governor (``dense-max``: ``max``); ``takes_arg``: it accepts
    ``NAME:ARG``; ``compared``: the forms ``simulate --compare`` runs (a ``NAME:ARG`` form
    only where ARG is a variant); ``space``: the tables it chooses the longest-lasting of
    under an accuracy bound (None: its own table, checked against the bound)."""

    name: str
    table: PolicyTable
    governor: str | None = None
    takes_arg: bool = False
    compared: tuple[str, ...] = ()
    space: PolicySpace | None = None


POLICY_REGISTRY: Registry[Policy] = Registry("policy")


def register_policy(
    name: str,
    table: PolicyTable,
    *,
    governor: str | None = None,
    takes_arg: bool = False,
    compared: tuple[str, ...] | None = None,
    replace: bool = False,
    space: PolicySpace | None = None,
) -> None:
    """Make ``name`` a policy (``simulate(policy=NAME)``, ``--policy NAME``, a sweep's
    ``policies``). ``compared`` defaults to ``(name,)``: ``simulate --compare`` runs it
    after rt3 and the baselines, and reports compare rt3 against it. ``space``: the
    tables it may choose from under an accuracy bound (see ``TableSpace``); without one
    its own table is checked against the bound."""
    forms = (name,) if compared is None else tuple(compared)
    POLICY_REGISTRY.add(name, Policy(name, table, governor, takes_arg, forms, space), replace)


def unregister_policy(name: str) -> None:
    """Forget a registered policy."""
    POLICY_REGISTRY.remove(name)


def policy_names() -> tuple[str, ...]:
    """The registered policies' names, the built-in ones (``POLICIES``) first."""
    return POLICY_REGISTRY.names()


def policy_forms() -> str:
    """The registered policies as ``--policy`` takes them.

    >>> policy_forms()
    'rt3, dense-max, dvfs-only[:NAME], static-sparse, oracle'
    """
    return ", ".join(p.name + "[:NAME]" * p.takes_arg for p in POLICY_REGISTRY.parts())


def find_policy(policy: str) -> tuple[Policy, str]:
    """The registered policy of a ``NAME`` or ``NAME:ARG`` string, and its ARG."""
    base, _, arg = policy.partition(":")
    names = ", ".join(policy_names())
    if base not in POLICY_REGISTRY:
        raise SimulatorInputError(f"policy: unknown {policy!r}, expected one of {names}")
    found = POLICY_REGISTRY.get(base)
    if arg and not found.takes_arg:
        forms = " or ".join(f"{p.name}:NAME" for p in POLICY_REGISTRY.parts() if p.takes_arg)
        raise SimulatorInputError(
            f"policy: unknown {policy!r}, expected one of {names} (or {forms})"
        )
    return found, arg


def headline_policies(variant_names: list[str] | tuple[str, ...]) -> list[str]:
    """``rt3`` and every registered policy's compared forms this set of variants can run
    (``dvfs-only:NAME`` needs NAME), the baselines in ``BASELINES`` order.

    >>> headline_policies(["dense", "bp", "pp-1"])
    ['rt3', 'dense-max', 'dvfs-only:bp', 'dvfs-only:dense', 'static-sparse', 'oracle']
    >>> headline_policies(["dense", "a"])
    ['rt3', 'dense-max', 'dvfs-only:dense', 'static-sparse', 'oracle']
    """
    names = set(variant_names)
    forms = [
        form
        for p in POLICY_REGISTRY.parts()
        for form in p.compared
        if not form.partition(":")[2] or form.partition(":")[2] in names
    ]
    return [REFERENCE, *baselines_first(forms)]


def unpruned(device: Device) -> VariantSpec:
    """The unpruned model: the variant named ``dense``, else the one with sparsity 0."""
    for v in device.variants:
        if v.name == "dense":
            return v
    for v in device.variants:
        if v.sparsity == 0.0:
            return v
    raise SimulatorInputError(
        "policy dense-max: needs the unpruned model (a variant named 'dense' or with "
        f"sparsity 0); variants are {[v.name for v in device.variants]}"
    )


def deadline_s(device: Device, khz: int, workload_deadline_s: float | None) -> float | None:
    """The deadline at ``khz``: the smaller of the profile's constraint and the workload's."""
    options = [d for d in (device.constraint_s.get(khz), workload_deadline_s) if d is not None]
    return min(options) if options else None


def by_accuracy(variants: tuple[VariantSpec, ...]) -> list[VariantSpec]:
    """Variants from most to least accurate (accuracy, else least sparse first)."""
    if all(v.accuracy is not None for v in variants):
        return sorted(variants, key=lambda v: -v.accuracy)
    missing = [v.name for v in variants if v.sparsity is None]
    if missing:
        raise SimulatorInputError(
            f"variants {missing}: need an accuracy or a sparsity to be ranked"
        )
    return sorted(variants, key=lambda v: v.sparsity)


def reconfigurable(device: Device) -> tuple[VariantSpec, ...]:
    """The variants RT3 can switch among: all but the unpruned model (all of them when
    there is nothing else)."""
    try:
        dense = unpruned(device)
    except SimulatorInputError:
        return device.variants
    sets = tuple(v for v in device.variants if v is not dense)
    return sets or device.variants


def rt3_options(device: Device, khz: int, workload_deadline_s: float | None) -> list[VariantSpec]:
    """The reconfigurable variants meeting the deadline at ``khz``, most accurate first;
    where none does, the fastest of them alone."""
    limit = deadline_s(device, khz, workload_deadline_s)
    options = reconfigurable(device)
    meets = [v for v in by_accuracy(options) if limit is None or v.latency(khz) <= limit]
    return meets or [min(options, key=lambda v: v.latency(khz))]


def rt3_choice(
    device: Device, khz: int, workload_deadline_s: float | None
) -> tuple[VariantSpec, bool]:
    """(the variant RT3 runs at ``khz``, whether it meets the deadline)."""
    limit = deadline_s(device, khz, workload_deadline_s)
    first = rt3_options(device, khz, workload_deadline_s)[0]
    return first, limit is None or first.latency(khz) <= limit


def plan_table(
    policy: str,
    device: Device,
    levels: list[int],
    workload_deadline_s: float | None,
    score: Callable[[dict[int, str]], float] | None = None,
) -> dict[int, str]:
    """The level -> variant table of ``policy`` (``score``: see ``PolicyInputs``)."""
    found, arg = find_policy(policy)
    by_accuracy(device.variants)  # raises when the variants cannot be ranked at all
    return found.table(PolicyInputs(device, levels, workload_deadline_s, arg, score))


def _rt3(inp: PolicyInputs) -> dict[int, str]:
    return {k: rt3_choice(inp.device, k, inp.workload_deadline_s)[0].name for k in inp.levels}


def _dense_max(inp: PolicyInputs) -> dict[int, str]:
    return dict.fromkeys(inp.levels, unpruned(inp.device).name)


def _dvfs_only(inp: PolicyInputs) -> dict[int, str]:
    dev = inp.device
    name = dev.variant(inp.arg).name if inp.arg else by_accuracy(dev.variants)[0].name
    return dict.fromkeys(inp.levels, name)


def _static_sparse(inp: PolicyInputs) -> dict[int, str]:
    # the sparsest variant (ties: the least accurate), not the least accurate: under
    # resampled accuracies (simulator.uncertainty) the choice must not follow the noise
    ranked = by_accuracy(inp.device.variants)
    sparsest = max((v.sparsity or 0.0) for v in ranked)
    pick = [v for v in ranked if (v.sparsity or 0.0) == sparsest][-1]
    return dict.fromkeys(inp.levels, pick.name)


def _rt3_space(inp: PolicyInputs) -> TableSpace:
    dev, deadline = inp.device, inp.workload_deadline_s
    options = tuple(tuple(v.name for v in rt3_options(dev, k, deadline)) for k in inp.levels)
    return TableSpace(tuple(inp.levels), options)


def _fixed_space(inp: PolicyInputs) -> TableSpace:
    """One variant at every level: the one named by ARG, else any."""
    dev = inp.device
    ranked = [dev.variant(inp.arg)] if inp.arg else by_accuracy(dev.variants)
    names = tuple(v.name for v in ranked)
    return TableSpace(tuple(inp.levels), (names,), same_set=True)


def _oracle_space(inp: PolicyInputs) -> TableSpace:
    from simulator.oracle import candidates

    dev, deadline = inp.device, inp.workload_deadline_s
    options = tuple(tuple(candidates(dev, k, deadline)) for k in inp.levels)
    return TableSpace(tuple(inp.levels), options)


def _oracle(inp: PolicyInputs) -> dict[int, str]:
    from simulator.oracle import oracle_table

    if inp.score is None:
        raise SimulatorInputError("policy oracle: needs a score (simulate runs it with one)")
    return oracle_table(inp.device, inp.levels, inp.workload_deadline_s, inp.score)


def deadline_warnings(
    device: Device, table: dict[int, str], workload_deadline_s: float | None
) -> list[str]:
    """One warning per level whose chosen variant misses the deadline."""
    out = []
    for khz, name in table.items():
        limit = deadline_s(device, khz, workload_deadline_s)
        lat = device.variant(name).latency(khz)
        if limit is not None and lat > limit:
            meets = [v.name for v in device.variants if v.latency(khz) <= limit]
            what = "no variant meets it" if not meets else f"variants that meet it: {meets}"
            out.append(
                f"{khz} kHz: {name!r} takes {lat * 1e3:.3f} ms, over the "
                f"{limit * 1e3:.3f} ms deadline ({what}); every inference there misses"
            )
        elif limit is not None and khz in device.variant(name).exits:
            dist = device.variant(name).exits[khz]
            late = sum(s for x, s in zip(dist.latency_s, dist.share, strict=True) if x > limit)
            if late > 0:
                out.append(
                    f"{khz} kHz: {name!r} (early exit) takes {lat * 1e3:.3f} ms on average, "
                    f"within the {limit * 1e3:.3f} ms deadline, but {late:.1%} of its "
                    "inferences leave at an exit past it and miss"
                )
    return out


def _builtin(
    name: str,
    table: PolicyTable,
    space: PolicySpace | None,
    governor: str | None = None,
    arg: bool = False,
) -> None:
    """Register a built-in policy; its compared forms are its entries in ``BASELINES``."""
    forms = tuple(b for b in BASELINES if b.partition(":")[0] == name)
    register_policy(name, table, governor=governor, takes_arg=arg, compared=forms, space=space)


# Under an accuracy bound: rt3 any per-level table of deadline-meeting sets, dvfs-only and
# static-sparse any one set (dvfs-only:NAME its own), the oracle any of its tables;
# dense-max is the unpruned model, whose loss is 0 by definition.
_builtin("rt3", _rt3, _rt3_space)
_builtin("dense-max", _dense_max, None, governor="max")
_builtin("dvfs-only", _dvfs_only, _fixed_space, arg=True)
_builtin("static-sparse", _static_sparse, _fixed_space)
_builtin("oracle", _oracle, _oracle_space)
