"""The inference in flight at a governor step, and the two rules for it.

- ``finish`` (the default): the core slows down mid-inference. The fraction of the work
  done at the old clock stays done; the rest runs at the new clock, at the latency of the
  variant that was running, after the cluster's transition stall. Each clock's busy power
  is drawn for the time spent there. The inference keeps the deadline it started with, and
  keeps its pattern set: a switch the policy chose for the new level happens after it.
- ``rerun`` (the rule before issue 29): the inference is abandoned (its energy spent,
  counted in ``aborted``) and re-run from scratch at the new level, on the new level's
  pattern set, judged against the new level's deadline.

An early-exit inference keeps its exit under both rules (the same input): its rest runs at
that exit's latency at the new clock, and a re-run takes the same exit again.

Work is counted in inferences: ``left`` is the fraction of one still to do, and a segment
of ``dt`` s at a clock where the whole inference takes ``latency`` s does ``dt / latency``.

>>> f = InFlight("bp", 0.115, 0.0, 1.0)
>>> f.ran(0.05, 0.1)  # half of it done at the old clock
>>> f.left
0.5
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from simulator.battery.base import Load
from simulator.errors import SimulatorInputError

if TYPE_CHECKING:
    from simulator.engine import Machine

GOVERNOR_STEPS = ("finish", "rerun")


def check_governor_step(rule: str) -> str:
    """``rule`` when it is one of ``GOVERNOR_STEPS``, else an error naming the option.

    >>> check_governor_step("abort")
    Traceback (most recent call last):
    ...
    simulator.errors.SimulatorInputError: governor_step: unknown 'abort', expected finish or rerun
    """
    if rule not in GOVERNOR_STEPS:
        raise SimulatorInputError(f"governor_step: unknown {rule!r}, expected finish or rerun")
    return rule


@dataclass
class InFlight:
    """An inference a governor step caught under the ``finish`` rule: its pattern set, the
    deadline it started with, the user-process factors at its start (a change applies from
    the next request boundary) and the fraction of its work left."""

    variant: str
    limit_s: float | None
    extra_w: float
    slowdown: float
    left: float = 1.0
    point: int | None = None  # an early-exit variant's exit draw (``simulator.exits``)

    def at(self, machine: Machine) -> tuple[Load, float]:
        """(busy load, latency of the whole inference) at the machine's current clock (an
        early-exit inference: its own exit's latency at that clock)."""
        khz = machine.khz
        busy = Load.constant(machine.dev.busy_w[khz] + self.extra_w)
        return busy, machine.dev.variant(self.variant).drawn(khz, self.point) * self.slowdown

    def ran(self, dt: float, latency: float) -> None:
        """Count ``dt`` s of work at a clock where the whole inference takes ``latency``."""
        self.left = max(0.0, self.left - dt / latency)
