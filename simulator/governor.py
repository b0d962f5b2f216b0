"""DVFS governors: battery-level thresholds that cap the frequency, or a fixed frequency.

A governor is a list of stages. Stage 0 runs at ``start_khz``; crossing the j-th threshold
(battery left below ``steps[j].battery_below``) enters stage j + 1, whose level is the
lowest cap seen so far. ``basis`` says what "battery left" means: ``energy`` is the fraction
of the nominal energy not yet drawn (RT3's 50/30/20 split), ``soc`` the battery model's
state of charge (Android's battery saver).

Specs accepted by ``governor_from_spec``: ``profile`` (the profile's governor),
``rt3-split`` (RT3's energy split: the highest of three levels for the first 50% of the
energy, the middle for the next 30%, the lowest for the last 20%), ``max`` (fixed at the
highest level), ``fixed`` (fixed at the profile's start level) and ``fixed:KHZ``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from simulator.errors import SimulatorInputError

if TYPE_CHECKING:
    from device_profiles.schema import DeviceProfile


@dataclass(frozen=True)
class Governor:
    """Threshold stages over one basis; ``steps`` are (battery_below, cap_khz), descending.

    >>> g = Governor("energy", 1400000, ((0.5, 1000000), (0.2, 800000)))
    >>> [g.level(s) for s in range(3)], g.threshold(1), g.threshold(2)
    ([1400000, 1000000, 800000], 0.2, None)
    """

    basis: Literal["energy", "soc"]
    start_khz: int
    steps: tuple[tuple[float, int], ...] = ()
    name: str = "profile"

    def level(self, stage: int) -> int:
        """The frequency (kHz) in ``stage``."""
        caps = [self.start_khz] + [cap for _, cap in self.steps[:stage]]
        return min(caps)

    def threshold(self, stage: int) -> float | None:
        """The battery level whose crossing ends ``stage``, or None for the last stage."""
        return self.steps[stage][0] if stage < len(self.steps) else None

    def levels(self) -> list[int]:
        """Every level the governor can run at, in stage order, without repeats."""
        out: list[int] = []
        for s in range(len(self.steps) + 1):
            if self.level(s) not in out:
                out.append(self.level(s))
        return out


def governor_from_spec(profile: DeviceProfile, spec: str = "profile") -> Governor:
    """Build a governor for ``profile`` from a spec (see the module docstring)."""
    levels = profile.levels_khz
    gov = profile.governor
    if spec == "profile":
        if gov.policy == "fixed":
            g = Governor(gov.basis, gov.start_khz, (), "fixed")
        else:
            steps = tuple((s.battery_below, s.cap_khz) for s in gov.steps)
            g = Governor(gov.basis, gov.start_khz, steps, "profile")
    elif spec == "max":
        g = Governor(gov.basis, levels[-1], (), "max")
    elif spec == "fixed":
        g = Governor(gov.basis, gov.start_khz, (), "fixed")
    elif spec.startswith("fixed:"):
        try:
            khz = int(spec.split(":", 1)[1])
        except ValueError:
            raise SimulatorInputError(
                f"governor: {spec!r}: expected fixed:KHZ with an integer kHz"
            ) from None
        g = Governor(gov.basis, khz, (), spec)
    elif spec == "rt3-split":
        constrained = sorted(
            {
                tc.freq_khz
                for tc in (profile.workload.timing_constraints if profile.workload else [])
            }
        )
        three = constrained[-3:] if len(constrained) >= 3 else levels[-3:]
        if len(three) < 3:
            raise SimulatorInputError(
                f"governor: rt3-split needs three levels, profile {profile.name!r} has {levels}"
            )
        g = Governor("energy", three[2], ((0.5, three[1]), (0.2, three[0])), "rt3-split")
    else:
        raise SimulatorInputError(
            f"governor: unknown {spec!r}, expected profile, rt3-split, max, fixed or fixed:KHZ"
        )
    for khz in g.levels():
        if khz not in levels:
            raise SimulatorInputError(
                f"governor: level {khz} kHz is not a level of the inference cluster "
                f"{profile.inference_cluster!r} {levels}"
            )
    return g
