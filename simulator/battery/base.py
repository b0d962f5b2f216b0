"""The battery interface: a load, and a model that integrates it exactly between events."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simulator.errors import SimulatorInputError

if TYPE_CHECKING:
    from device_profiles.schema import DeviceProfile


@dataclass(frozen=True)
class Load:
    """A power load as phases ``(power_w, fraction of time)``.

    One phase is a constant load. Several phases describe a load that cycles fast compared
    with the battery's time constants (busy then idle, every inference): coulomb models
    draw each phase's current in proportion, the Thevenin model solves each phase's current
    against the same state. ``fast`` mode integrates whole cycles this way; ``exact`` mode
    only ever uses constant loads.
    """

    phases: tuple[tuple[float, float], ...]
    mean_w: float = field(init=False, repr=False, compare=False)
    peak_w: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # mean_w: the time-averaged power (W); peak_w: the highest phase power (W), the one
        # that sets the cutoff voltage. Both computed once: the engine reads them per request.
        object.__setattr__(self, "mean_w", sum(p * f for p, f in self.phases))
        object.__setattr__(self, "peak_w", max(p for p, f in self.phases if f > 0))

    @classmethod
    def constant(cls, power_w: float) -> Load:
        """A constant load of ``power_w`` watts."""
        return cls(((power_w, 1.0),))


class BatteryModel(ABC):
    """A battery under a power load: state of charge, terminal voltage, exact stepping.

    ``advance_until(load, t_max, soc_floor)`` integrates up to ``t_max`` seconds and stops
    early at the first event: ``"empty"`` (the battery cannot carry the load any more) or
    ``"soc"`` (the state of charge reached ``soc_floor``). It returns the elapsed time and
    the event (None when ``t_max`` was reached).
    """

    name: str = ""

    @classmethod
    def from_profile(
        cls, profile: DeviceProfile, capacity_mah: float, initial_soc: float
    ) -> BatteryModel:
        """The model of ``profile``'s battery at ``capacity_mah`` (a registry factory)."""
        raise NotImplementedError(f"{cls.__name__}: no from_profile; register a factory")

    @abstractmethod
    def soc(self) -> float:
        """State of charge, 1 full to 0 empty (as the model defines it)."""

    @abstractmethod
    def voltage(self, power_w: float) -> float:
        """Terminal voltage (V) under a constant load of ``power_w``."""

    @abstractmethod
    def snapshot(self) -> tuple[float, ...]:
        """The state, to restore later."""

    @abstractmethod
    def restore(self, state: tuple[float, ...]) -> None:
        """Return to a state taken by ``snapshot``."""

    @abstractmethod
    def advance_until(
        self, load: Load, t_max: float, soc_floor: float | None = None
    ) -> tuple[float, str | None]:
        """Integrate up to ``t_max`` s, stopping at ``"empty"`` or ``"soc"``."""

    def advance(self, load: Load, dt: float) -> None:
        """Integrate ``dt`` seconds (events are ignored, the state just moves on)."""
        self.advance_until(load, dt, None)

    def safe_cycles(
        self, phases: tuple[tuple[float, float], ...], n_max: int, soc_floor: float | None = None
    ) -> int:
        """Advance over whole cycles of ``phases`` ((power_w, seconds), ...) that surely hold
        no event, at most ``n_max``; return how many.

        This default integrates the cycle-averaged load (each phase in proportion) and stops
        one cycle short of the averaged event, which is exact for models whose drain is
        linear in the charge (ideal, Peukert) and leaves only the ripple within a cycle
        unresolved for the others; models with an exact cycle map override it.
        """
        period = sum(d for _, d in phases)
        load = Load(tuple((p, d / period) for p, d in phases if d > 0))
        state = self.snapshot()
        dt, hit = self.advance_until(load, n_max * period, soc_floor)
        if hit is None:
            return n_max
        self.restore(state)
        n = max(0, math.floor(dt / period) - 1)
        if n:
            self.advance(load, n * period)
        return n

    def time_until(
        self, load: Load, t_max: float = math.inf, soc_floor: float | None = None
    ) -> tuple[float, str | None]:
        """(time, event) of the next event under ``load``, without changing the state."""
        state = self.snapshot()
        try:
            return self.advance_until(load, t_max, soc_floor)
        finally:
            self.restore(state)


class LinearBattery(BatteryModel):
    """A battery whose one state, the quantity ``left`` of ``full``, falls linearly at a rate
    the load sets, at a constant nominal voltage (ideal: energy at the mean power; Peukert:
    effective charge at Peukert's current). A subclass sets ``full``, ``left`` and
    ``nominal_voltage_v`` and defines :meth:`drain_rate`; stepping is in closed form."""

    full: float
    left: float
    nominal_voltage_v: float

    @abstractmethod
    def drain_rate(self, load: Load) -> float:
        """How fast ``load`` uses up the quantity (its unit per second)."""

    def soc(self) -> float:
        """The quantity left over the full quantity."""
        return self.left / self.full

    def voltage(self, power_w: float) -> float:
        """The nominal voltage, whatever the load."""
        return self.nominal_voltage_v

    def snapshot(self) -> tuple[float, ...]:
        """(quantity left,)."""
        return (self.left,)

    def restore(self, state: tuple[float, ...]) -> None:
        """Set the quantity left."""
        (self.left,) = state

    def advance_until(
        self, load: Load, t_max: float, soc_floor: float | None = None
    ) -> tuple[float, str | None]:
        """Closed form: the quantity falls linearly at :meth:`drain_rate`."""
        rate = self.drain_rate(load)
        t_empty = linear_time(self.left, rate, 0.0, t_max)
        t_soc = (
            math.inf
            if soc_floor is None
            else linear_time(self.left, rate, soc_floor * self.full, t_max)
        )
        dt = min(t_max, t_empty, t_soc)
        if math.isinf(dt):
            raise ValueError("advance_until: no event and no t_max under a zero load")
        if dt == t_empty and t_empty <= t_max:
            self.left = 0.0
            return t_empty, "empty"
        self.left -= rate * dt
        if dt == t_soc and t_soc <= t_max:
            return dt, "soc"
        return dt, None


def linear_time(level: float, rate: float, floor: float, t_max: float) -> float:
    """Time for a quantity falling at ``rate`` from ``level`` to reach ``floor`` (capped)."""
    if level <= floor:
        return 0.0
    if rate <= 0:
        return math.inf if t_max == math.inf else t_max + 1.0
    return (level - floor) / rate


def profile_params(profile: DeviceProfile, model: str) -> Any:
    """The profile's ``battery.<model>`` parameters; ``SimulatorInputError`` when it has none
    (a profile carries parameters only for the models it can be simulated with)."""
    params = getattr(profile.battery, model, None)
    if params is None:
        raise SimulatorInputError(
            f"profile {profile.name!r}: battery.{model} is missing; the {model} model needs it"
        )
    return params
