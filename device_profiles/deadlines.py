"""Which variants meet each level's deadline: a board whose variants can only miss.

A profile's ``workload.timing_constraints`` give a deadline per level, and a workload may
add its own (a periodic request's period): the deadline at a level is the smaller of the
two. A variant meets it when its latency there (the profile's latency table, else RT3's
op-count model) is within it. When no variant meets the deadline at any level, every
inference misses under every policy and governor: the shipped boards carry only ``dense``
and ``bp``, and RT3's own ``bp`` misses 115 ms by 0.4 ms, so such a board needs pattern
sets measured on it first (``rt3lab profile --bundle``).

>>> from device_profiles import load_profile
>>> only_misses(load_profile("rt3-paper"))
True
>>> [(d.freq_khz, d.meets) for d in level_deadlines(load_profile("odroid-xu4"))][-1]
(2000000, ('bp',))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from device_profiles.schema import DeviceProfile, Variant

# The command that measures pattern sets on a board (the hint every message gives).
PROFILE_A_BUNDLE = "rt3lab profile --bundle BUNDLE --board {board} --out PROFILE.yaml"


@dataclass(frozen=True)
class LevelDeadline:
    """One level: its deadline (None: none), the variants that meet it, and those whose
    latency there is unknown (no table entry and no op-count model)."""

    freq_khz: int
    deadline_ms: float | None
    meets: tuple[str, ...]
    unknown: tuple[str, ...] = ()


def variant_latency_ms(profile: DeviceProfile, variant: Variant, freq_khz: int) -> float | None:
    """A variant's latency at a level: its table's entry, else the profile's op-count model
    when the variant has op counts, else None."""
    have = variant.latency_at(freq_khz)
    if have is not None:
        return have
    model = profile.latency_model
    if model is None or variant.nonzero_mults is None or variant.nonzero_adds is None:
        return None
    return model.latency_ms(variant.nonzero_mults, variant.nonzero_adds, freq_khz)


def _merged(profile: DeviceProfile, extra: Sequence[Variant]) -> list[Variant]:
    """The profile's variants with ``extra`` added, an extra replacing one of its name."""
    by_name = {v.name: v for v in profile.variants}
    by_name.update({v.name: v for v in extra})
    return list(by_name.values())


def level_deadlines(
    profile: DeviceProfile, extra: Sequence[Variant] = (), deadline_ms: float | None = None
) -> list[LevelDeadline]:
    """Every level of the inference cluster with its deadline and the variants meeting it;
    ``extra`` variants (a bundle's) join the profile's, ``deadline_ms`` is the workload's."""
    out = []
    variants = _merged(profile, extra)
    for khz in profile.levels_khz:
        limits = [d for d in (profile.deadline_ms(khz), deadline_ms) if d is not None]
        limit = min(limits) if limits else None
        lat = {v.name: variant_latency_ms(profile, v, khz) for v in variants}
        within = {n for n, ms in lat.items() if ms is not None and (limit is None or ms <= limit)}
        meets = tuple(n for n in lat if n in within)
        unknown = tuple(n for n, ms in lat.items() if ms is None)
        out.append(LevelDeadline(khz, limit, meets, unknown))
    return out


def only_misses(
    profile: DeviceProfile, extra: Sequence[Variant] = (), deadline_ms: float | None = None
) -> bool:
    """True when the profile has variants and none meets the deadline at any level (every
    level has one, and every latency is known): every inference misses, whatever runs."""
    levels = level_deadlines(profile, extra, deadline_ms)
    return bool(_merged(profile, extra)) and all(
        d.deadline_ms is not None and not d.meets and not d.unknown for d in levels
    )


def _mhz(khz: int) -> str:
    return f"{khz / 1000:g} MHz"


def deadline_note(
    profile: DeviceProfile, extra: Sequence[Variant] = (), deadline_ms: float | None = None
) -> str | None:
    """One line on what the variants can meet: None when every constrained level has a
    variant meeting its deadline; else which levels none meets, and, when that is every
    level, that every inference misses and a bundle must be profiled first.

    >>> from device_profiles import load_profile
    >>> print(deadline_note(load_profile("rt3-paper")))  # doctest: +ELLIPSIS
    rt3-paper: no variant (dense, bp) meets the deadline at any level (94-115 ms), so ...
    """
    levels = level_deadlines(profile, extra, deadline_ms)
    names = ", ".join(v.name for v in _merged(profile, extra))
    hint = PROFILE_A_BUNDLE.format(board=profile.name)
    if only_misses(profile, extra, deadline_ms):
        limits = [d.deadline_ms for d in levels if d.deadline_ms is not None]
        span = f"{min(limits):g}-{max(limits):g} ms" if min(limits) != max(limits) else ""
        return (
            f"{profile.name}: no variant ({names}) meets the deadline at any level"
            f"{f' ({span})' if span else ''}, so every inference misses under every policy; "
            f"measure pattern sets that do on the board first: `{hint}`, then simulate "
            "PROFILE.yaml"
        )
    missed = [d for d in levels if d.deadline_ms is not None and not d.meets and not d.unknown]
    if not missed:
        return None
    at = ", ".join(f"{_mhz(d.freq_khz)} ({d.deadline_ms:g} ms)" for d in missed)
    return (
        f"{profile.name}: no variant ({names}) meets the deadline at {at}: every inference "
        f"run there misses; pattern sets that do come from `{hint}`"
    )
