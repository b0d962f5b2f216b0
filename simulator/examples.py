"""User processes for ``simulate(..., processes=[...])``: a background load and a simple
thermal throttle, each a few lines of simpy (the README's "User processes" runs them).

A user process is ``fn(env, machine)``, a simpy generator run beside the device. It reads
the machine (``machine.t``, ``machine.tally.energy_j``, ``machine.khz``...) and may set
``machine.extra_w`` (watts drawn on top of the inference cluster's, busy or idle) and
``machine.slowdown`` (a factor on every inference latency). A change applies from the
next request boundary; the device process stops at every user event to let it run.

>>> from simulator import simulate
>>> plain = simulate("rt3-paper", battery_model="ideal", capacity_mah=2)
>>> loaded = simulate("rt3-paper", battery_model="ideal", capacity_mah=2,
...                   processes=[background_load(every_s=60, for_s=20, watts=2.0)])
>>> loaded.battery_life_s < plain.battery_life_s, loaded.inferences < plain.inferences
(True, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

from simulator.engine import Machine


def background_load(
    every_s: float, for_s: float, watts: float
) -> Callable[[Any, Machine], Generator[Any, Any, None]]:
    """A background job drawing ``watts`` for ``for_s`` seconds every ``every_s``."""

    def process(env: Any, machine: Machine) -> Generator[Any, Any, None]:
        while True:
            yield env.timeout(every_s - for_s)
            machine.extra_w += watts
            yield env.timeout(for_s)
            machine.extra_w -= watts

    return process


def thermal_throttle(
    r_th_k_per_w: float = 20.0,
    tau_s: float = 120.0,
    hot_c: float = 70.0,
    cool_c: float = 60.0,
    factor: float = 1.5,
    ambient_c: float = 25.0,
    sample_s: float = 1.0,
) -> Callable[[Any, Machine], Generator[Any, Any, None]]:
    """A first-order die temperature, dT/dt = (P R_th - (T - ambient)) / tau, from the
    power drawn since the last sample; above ``hot_c`` every inference runs ``factor``
    times slower until it cools below ``cool_c``. ``process.trace`` keeps (t, T, slowdown)."""
    trace: list[tuple[float, float, float]] = []

    def process(env: Any, machine: Machine) -> Generator[Any, Any, None]:
        temp = ambient_c
        last_t, last_e = machine.t, machine.tally.energy_j
        while True:
            yield env.timeout(sample_s)
            span = machine.t - last_t
            if span <= 0:
                continue
            power = (machine.tally.energy_j - last_e) / span
            last_t, last_e = machine.t, machine.tally.energy_j
            target = ambient_c + power * r_th_k_per_w
            temp = target + (temp - target) * math.exp(-span / tau_s)
            if temp > hot_c:
                machine.slowdown = factor
            elif temp < cool_c:
                machine.slowdown = 1.0
            trace.append((machine.t, temp, machine.slowdown))

    process.trace = trace  # type: ignore[attr-defined]
    return process
