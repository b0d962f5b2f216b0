"""The discrete-event engine: one ``Machine`` with the semantics, two drivers.

Semantics (both modes):

- A request starts as soon as it is in hand and the processor is free; it runs the
  variant the policy's table gives for the current level, busy for its latency at the
  level's busy power; between requests the processor idles at the level's idle power.
- A governor threshold crossing takes effect at once: a frequency change stalls the core
  for the cluster's transition time at the new level's busy power; an inference in flight
  finishes the work it has left at the new clock, on its pattern set, against the deadline
  it started with (``governor_step="finish"``), or is abandoned (its energy spent, counted
  in ``aborted``) and re-run from scratch at the new level (``"rerun"``; see
  ``simulator.inflight``); a pattern-set switch costs the profile's switch time (and
  energy, else the level's busy power over that time).
- A request whose completion comes later than its arrival plus the deadline is a miss; a
  request that arrives while an inference runs is dropped and counted as a miss.
- The battery is empty when its model says so; the inference in flight then does not count.
- An early-exit variant's inference takes its own exit's latency, drawn in the run's order
  (``simulator.exits``): it misses when that latency (its response) exceeds the deadline.

``exact`` (``simulator.processes``) runs the request source, the queue, the inference
server, the governor and the switching policy as simpy processes over this machine, each
inference and idle gap integrated on its own. ``fast`` (``run_fast`` here) is one simpy
process beside any user processes, with one simpy timeout per state change (a governor
stage, a level, a pattern set, a time-series row, the end) or user-process event: it jumps
over whole busy/idle cycles (continuous and periodic workloads) with the battery
integrated over the cycle-averaged load, and steps request by request only around a state
change; for Poisson and trace workloads every arrival changes the load, so it steps
request by request. Crossing times are found by root-finding on the battery's integrated
state, so no pending timeout ever needs interrupting. Requests arriving while an inference
runs are dropped (``queue="none"``) or queued (``late``, ``drop``); a sampling governor
(``governor_sample_s``) applies a crossing at its next sample.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

from simulator.battery.base import BatteryModel, Load
from simulator.device import Device
from simulator.exits import ExitDraws
from simulator.governor import Governor
from simulator.inflight import InFlight, check_governor_step
from simulator.policies import deadline_s
from simulator.workload import Workload

_TOL = 1e-9
# A response time is a difference of two absolute times, each exact to half an ulp of the
# clock: after two days of simulated time (1.7e5 s, ulp 2.9e-11 s) a response equal to its
# deadline came out 6e-9 longer relative, past _TOL alone. Lateness allows this many ulps.
_ULPS = 8


def is_late(response_s: float, limit_s: float, t: float) -> bool:
    """Whether a response ending at clock ``t`` missed its deadline ``limit_s``: the one
    lateness rule of both modes (a relative tolerance, plus the clock's ulps).

    >>> is_late(1.8e-3 * (1 + 6e-9), 1.8e-3, 1.7e5), is_late(1.9e-3, 1.8e-3, 1.7e5)
    (False, True)
    """
    return response_s > limit_s * (1 + _TOL) + _ULPS * math.ulp(t)


QUEUES = ("none", "late", "drop")
KINDS_BATCHED = ("continuous", "periodic")
ROW_ENERGY = 0.01  # a time-series row each time this fraction of the nominal energy is drawn


@dataclass
class Tally:
    """What a run counted."""

    inferences: int = 0
    misses: int = 0
    dropped: int = 0
    aborted: int = 0
    switches: int = 0
    level_changes: int = 0
    energy_j: float = 0.0
    max_queue: int = 0  # the most requests seen waiting when one started (queue modes)
    time_at_level_s: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    per_variant: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Machine:
    """The device, its battery and its workload, advanced request by request."""

    def __init__(
        self,
        device: Device,
        governor: Governor,
        table: dict[int, str],
        workload: Workload,
        battery: BatteryModel,
        sample_s: float | None = None,
        record: bool = True,
        nominal_energy_j: float | None = None,
        row_energy: float = ROW_ENERGY,
        queue: str = "none",
        governor_sample_s: float | None = None,
        governor_step: str = "finish",
    ):
        self.dev = device
        self.energy_nominal = device.energy_j if nominal_energy_j is None else nominal_energy_j
        self.gov = governor
        self.table = table
        self.wl = workload
        self.bat = battery
        self.sample_s = sample_s
        if queue not in QUEUES:
            raise ValueError(f"queue: unknown {queue!r}, expected one of {', '.join(QUEUES)}")
        self.queue = queue
        # A sampling governor: a crossing takes effect at the next multiple of this period.
        self.gov_sample_s = governor_sample_s
        # What a governor step does to the inference in flight (``simulator.inflight``).
        self.step_rule = check_governor_step(governor_step)
        self.step_due: float | None = None
        self.recording = record
        # ``mean`` mode: Poisson arrivals without a queue jump whole mean cycles
        self.mean_poisson = False
        self.drop_carry = 0.0
        self.t = 0.0
        self.stage = 0
        self.tally = Tally()
        self.empty = False
        self.k = 0
        self.pending: float | None = None
        self.next_sample = 0.0 if sample_s else math.inf
        self.row_energy_j = row_energy * self.energy_nominal
        self.next_row_e = 0.0
        self.rows: list[tuple] = []
        self._busy_load = {k: Load.constant(w) for k, w in device.busy_w.items()}
        self._idle_load = {k: Load.constant(w) for k, w in device.idle_w.items()}
        self._last_t, self._last_e = 0.0, 0.0
        self.events: list[tuple[float, str, str]] = []
        # Set by user processes (``simulate(..., processes=...)``): a power drawn on top of
        # the inference cluster's, and a factor on every inference latency.
        self.extra_w = 0.0
        self.slowdown = 1.0
        # The driver stops here (the next user-process event) to let that process run.
        self.horizon = math.inf
        # Early exit: the run's draw order, how many draws were taken, and the draw of the
        # request in hand (kept across a re-run: the same input takes the same exit).
        early = any(v.exits for v in device.variants)
        self.exit_draws = ExitDraws.seeded(workload.seed) if early else None
        self.drawn = 0
        self.point: int | None = None
        self._skip_crossed()
        self.khz = governor.level(self.stage)
        self.variant = table[self.khz]
        self._event("start", f"{self.khz} kHz, variant {self.variant}")
        self._sample(self.dev.idle_w[self.khz])

    # ---- bookkeeping -----------------------------------------------------------------
    def _event(self, kind: str, detail: str) -> None:
        if self.recording:
            self.events.append((self.t, kind, detail))

    def _sample(self, power_w: float) -> None:
        """A time-series row: power is the mean since the previous row (``power_w`` when no
        time has passed), voltage the terminal voltage under that power."""
        if self.recording:
            span = self.t - self._last_t
            if span > 0:
                power_w = (self.tally.energy_j - self._last_e) / span
            self._last_t, self._last_e = self.t, self.tally.energy_j
            self.rows.append(
                (self.t, self.bat.soc(), self.bat.voltage(power_w), power_w, self.khz, self.variant)
            )
        if self.sample_s:
            self.next_sample = (math.floor(self.t / self.sample_s) + 1) * self.sample_s
        step = self.row_energy_j
        self.next_row_e = (math.floor(self.tally.energy_j / step * (1 + _TOL)) + 1) * step

    def row_due(self) -> bool:
        """Whether the time-series grid or the next energy mark has been passed."""
        return self.t >= self.next_sample or self.tally.energy_j >= self.next_row_e * (1 - _TOL)

    def loads(self, khz: int) -> tuple[Load, Load]:
        """(busy, idle) loads at ``khz``, with any extra power a user process added."""
        if self.extra_w == 0.0:
            return self._busy_load[khz], self._idle_load[khz]
        return (
            Load.constant(self.dev.busy_w[khz] + self.extra_w),
            Load.constant(self.dev.idle_w[khz] + self.extra_w),
        )

    def latency(self, variant: str, khz: int) -> float:
        """Latency (s) of ``variant`` at ``khz``, times any slowdown a user process set (an
        early-exit variant's mean: what a queue judges a waiting request by)."""
        return self.dev.variant(variant).latency(khz) * self.slowdown

    def inference_latency(self, variant: str, khz: int) -> float:
        """Latency (s) of the request in hand's inference of ``variant`` at ``khz``, times
        any slowdown: an early-exit variant's drawn exit (drawn when the request first
        starts; a re-run keeps it), else the variant's latency."""
        spec = self.dev.variant(variant)
        if not spec.exits:
            return spec.latency(khz) * self.slowdown
        if self.point is None:
            self.point = self.exit_draws.at(self.drawn)
            self.drawn += 1
        return spec.drawn(khz, self.point) * self.slowdown

    def completed(self) -> None:
        """The request in hand completed: none is in hand, and its exit draw is spent."""
        self.pending = None
        self.point = None

    def left(self) -> float:
        """Battery left on the governor's basis."""
        if self.gov.basis == "energy":
            return 1.0 - self.tally.energy_j / self.energy_nominal
        return self.bat.soc()

    def _skip_crossed(self) -> None:
        while (thr := self.gov.threshold(self.stage)) is not None and self.left() < thr:
            self.stage += 1

    def deadline(self) -> float | None:
        """The deadline at the current level."""
        return deadline_s(self.dev, self.khz, self.wl.deadline_s)

    # ---- running loads ---------------------------------------------------------------
    def threshold(self) -> float | None:
        """The threshold that ends the current stage, None while a crossing already seen
        waits for the governor's next sample."""
        return None if self.step_due is not None else self.gov.threshold(self.stage)

    def run(self, load: Load, duration: float) -> tuple[float, str | None]:
        """Run ``load`` up to ``duration`` s; stop at 'governor' (a governor step takes
        effect) or 'empty'. With a sampling governor a threshold crossing only schedules
        the step at the next sample, and the load runs on."""
        total = 0.0
        while True:
            dt, hit = self.run_once(load, duration - total)
            total += dt
            if hit == "governor" and self.gov_sample_s and self.step_due is None:
                s = self.gov_sample_s
                self.step_due = max(self.t, math.ceil(self.t / s - _TOL) * s)
                if self.step_due > self.t:
                    continue
            return total, hit

    def run_once(self, load: Load, duration: float) -> tuple[float, str | None]:
        """Integrate ``load`` up to ``duration`` s or the first event: 'governor' (a
        threshold crossed, or a sampled step due), 'empty'; the battery's own step."""
        thr = self.threshold()
        cap = duration
        energy_hit = due_hit = False
        if self.step_due is not None and self.step_due - self.t <= cap:
            cap, due_hit = max(0.0, self.step_due - self.t), True
        if thr is not None and self.gov.basis == "energy" and load.mean_w > 0:
            t_e = max(0.0, (self.energy_nominal * (1.0 - thr) - self.tally.energy_j) / load.mean_w)
            if t_e < cap:
                cap, energy_hit = t_e, True
        floor = thr if self.gov.basis == "soc" else None
        dt, hit = self.bat.advance_until(load, cap, floor)
        self.t += dt
        self.tally.time_at_level_s[self.khz] += dt
        if hit is None and energy_hit:
            self.tally.energy_j = self.energy_nominal * (1.0 - thr)
            hit = "governor"
        else:
            self.tally.energy_j += load.mean_w * dt
            if hit is None and due_hit:
                hit = "governor"
        if hit == "soc":
            hit = "governor"
        if hit == "empty":
            self.empty = True
            self._event("empty", f"battery empty at SoC {self.bat.soc():.6f}")
            self._sample(load.peak_w)
        return dt, hit

    def run_through(self, load: Load, duration: float) -> None:
        """Run ``load`` for ``duration`` s, applying governor steps as they come."""
        left = duration
        while left > 0 and not self.empty:
            dt, hit = self.run(load, left)
            left -= dt
            if hit == "governor":
                self.governor_step()

    def governor_step(self) -> None:
        """Enter the next governor stage (and any already crossed)."""
        self.step_due = None
        self.stage += 1
        self._skip_crossed()
        self._event("governor", f"stage {self.stage}: battery left {self.left():.6f}")

    def prepare(self) -> None:
        """Bring level and variant in line with the governor stage and the policy (a sampled
        governor step due now is taken first: a step at the instant a request starts does
        not abort it)."""
        if self.step_due is not None and self.step_due <= self.t:
            self.governor_step()
        while not self.empty:
            self.follow_level()
            if self.empty:
                return
            want = self.table[self.khz]
            if want != self.variant:
                self._event("switch", f"{self.variant} -> {want}")
                self.variant = want
                self.tally.switches += 1
                self._switch_cost()
                continue
            return

    def follow_level(self) -> None:
        """Bring the level in line with the governor's stage: each change is an event, a
        time-series row and the cluster's transition stall at the new level's busy power
        (governor steps during the stall taken as they come)."""
        while not self.empty and (khz := self.gov.level(self.stage)) != self.khz:
            self.enter_level(khz)
            if self.dev.transition_s > 0:
                self.run_through(Load.constant(self.dev.busy_w[khz]), self.dev.transition_s)

    def enter_level(self, khz: int) -> None:
        """Record a level change (an event, the count, a time-series row); the transition
        stall follows."""
        self._event("level", f"{self.khz} -> {khz} kHz")
        self.khz = khz
        self.tally.level_changes += 1
        self._sample(self.dev.busy_w[khz])

    def _switch_cost(self) -> None:
        t = self.dev.switch_s
        e = self.dev.switch_energy_j
        if t <= 0 and not e:
            return
        if t <= 0:
            t = 1e-6  # an energy with no time: drawn over a microsecond
        power = self.dev.busy_w[self.khz] if e is None else e / t
        self.run_through(Load.constant(power), t)

    # ---- requests --------------------------------------------------------------------
    def last_idle(self) -> Load | None:
        """The idle load to run until the battery is empty once no request and nothing
        else is due; None, with the run ended, when that load draws no power."""
        idle = Load.constant(self.dev.idle_w[self.khz] + self.extra_w)
        if idle.mean_w <= 0:
            self.empty = True  # nothing left to do and nothing draws power
            self._event("end", "trace finished and idle power is 0: no discharge")
            return None
        return idle

    def take_request(self) -> None:
        """Idle until the next request arrives and take it in hand."""
        if self.pending is not None or self.empty:
            return
        if self.wl.arrivals is None:
            self.pending = self.t
            return
        a = self.wl.arrivals.at(self.k)
        if math.isinf(a) and math.isinf(self.horizon):
            idle = self.last_idle()
            if idle is not None:
                self.run_through(idle, math.inf)
            return
        if a > self.t:
            until = min(a, self.horizon)
            if until > self.t:
                self.run_through(self.loads(self.khz)[1], until - self.t)
            if self.empty or until < a:
                return  # the battery is empty, or a user process is due first
            self.t = a
        elif self.queue != "none":
            a = self._queued(a)
            if a > self.t:
                return self.take_request()  # every queued request was dropped: idle on
        self.pending = a
        self.k += 1

    def _queued(self, a: float) -> float:
        """The request to start now from a queue (``a``, the oldest, arrived before now):
        under ``drop``, requests that can no longer finish by their deadline are dropped
        first. Records the queue's length."""
        arr = self.wl.arrivals
        limit = self.deadline()
        if self.queue == "drop" and limit is not None:
            lat = self.latency(self.variant, self.khz)
            if a + limit < self.t + lat:
                j = arr.first_at_or_after(self.t + lat - limit, self.k)
                self._drop(j - self.k)
                self.k = j
                a = arr.at(j)
                if a > self.t:
                    return a  # only on-time requests were left: this one starts on time
        waiting = arr.first_at_or_after(self.t, self.k) - self.k
        self.tally.max_queue = max(self.tally.max_queue, waiting)
        return a

    def serve(self) -> None:
        """Run the request in hand to completion (under ``finish``, across any governor
        steps), or until a governor step aborts it (``rerun``)."""
        self.prepare()
        if self.empty:
            return
        busy = self.loads(self.khz)[0]
        lat = self.inference_latency(self.variant, self.khz)
        limit = self.deadline()
        dt, hit = self.run(busy, lat)
        if hit == "empty":
            return
        if hit == "governor":
            if self.step_rule == "rerun":
                self.tally.aborted += 1
                self.governor_step()
                return
            flight = InFlight(self.variant, limit, self.extra_w, self.slowdown, point=self.point)
            flight.ran(dt, lat)
            busy = self.finish(flight)
            if busy is None:
                return
        self._complete(1, self.t - self.pending, limit)
        self.completed()
        if self.wl.arrivals is not None and self.queue == "none":
            nxt = self.wl.arrivals.first_at_or_after(self.t, self.k)
            self._drop(nxt - self.k)
            self.k = nxt
        if self.row_due():
            self._sample(busy.peak_w)

    def finish(self, flight: InFlight) -> Load | None:
        """``finish`` rule: a governor step caught ``flight``; take the step, follow the
        level (transition stall) and run the work left at the new clock, taking further
        steps the same way. The last busy load, None when the battery emptied first."""
        while True:
            self.governor_step()
            self.follow_level()
            if self.empty:
                return None
            busy, lat = flight.at(self)
            dt, hit = self.run(busy, flight.left * lat)
            if hit == "empty":
                return None
            if hit != "governor":
                return busy
            flight.ran(dt, lat)

    def _complete(self, n: int, response_s: float, limit: float | None) -> None:
        self.tally.inferences += n
        self.tally.per_variant[self.variant] += n
        if limit is not None and is_late(response_s, limit, self.t):
            self.tally.misses += n

    def _drop(self, n: int) -> None:
        self.tally.dropped += n
        self.tally.misses += n

    # ---- fast mode: whole cycles -----------------------------------------------------
    def batch(self) -> bool:
        """Jump over whole busy/idle cycles that cannot contain a state change.

        True when it stopped only at the time-series grid (batching may go on); False when
        the next request must be stepped on its own (an event is near, or a re-run).
        """
        kinds = ("continuous", "periodic", "poisson") if self.mean_poisson else KINDS_BATCHED
        if self.empty or self.pending is None or self.wl.kind not in kinds:
            return False
        if self.pending != self.t or self.point is not None:
            return False  # a re-run after an abort: step it request by request
        khz, var = self.khz, self.variant
        spec = self.dev.variant(var)
        if khz in spec.exits:
            from simulator.exit_cycles import batch_exits

            return batch_exits(self, spec.exits[khz])
        lat = spec.latency(khz) * self.slowdown
        busy = self.dev.busy_w[khz] + self.extra_w
        idle = self.dev.idle_w[khz] + self.extra_w
        if self.wl.kind == "periodic":
            period = self.wl.period_s
            m = max(1, math.ceil(lat / period - _TOL))
            if m > 1 and self.queue != "none":
                return False  # requests queue up: stepped one by one
            cycle = m * period
        elif self.wl.kind == "poisson":
            # the mean cycle of a server without a queue under Poisson arrivals: busy for
            # the latency, then idle for the mean gap to the next arrival (memoryless)
            m, cycle = 1, lat + 1.0 / self.wl.arrivals.rate_hz
        else:
            m, cycle = 1, lat
        frac = lat / cycle
        load = Load(((busy, frac), (idle, 1.0 - frac))) if frac < 1.0 else Load.constant(busy)
        n_grid, n_cap = self.cycle_caps(load.mean_w, cycle, cycle, load.mean_w, cycle)
        if n_cap <= 0:
            return False
        phases = ((busy, lat), (idle, cycle - lat)) if frac < 1.0 else ((busy, lat),)
        n = self.bat.safe_cycles(phases, n_cap, self.soc_floor())
        if n == 0:
            return False
        self.tally.energy_j += load.mean_w * n * cycle
        self.tally.time_at_level_s[khz] += n * cycle
        self._complete(n, lat, self.deadline())
        if spec.exits:  # an early-exit variant with one point here: its draws are spent
            self.drawn += n
        self.after_cycles(n, n * m, n * cycle, n * lat)
        if self.row_due():
            self._sample(load.mean_w)
        return n == n_grid

    def soc_floor(self) -> float | None:
        """The state of charge at which the current stage ends (``soc`` basis), else None."""
        thr = self.threshold()
        return thr if self.gov.basis == "soc" else None

    def cycle_caps(
        self, mean_w: float, cycle: float, longest: float, heavy_w: float, heavy: float
    ) -> tuple[int, int]:
        """(cycles to the next time-series row, the most whole cycles to jump): cycles of
        ``cycle`` s at ``mean_w`` on average; none may pass a user-process event or a
        sampled step (cycles up to ``longest`` s) or the governor's energy threshold
        (cycles up to ``heavy`` s at ``heavy_w``, the most energy a cycle may draw)."""
        n_grid = 2**62
        if self.recording and mean_w > 0:
            n_grid = max(1, math.ceil((self.next_row_e - self.tally.energy_j) / mean_w / cycle))
            if self.sample_s:
                n_grid = min(n_grid, max(1, math.ceil((self.next_sample - self.t) / cycle)))
        n_cap = n_grid
        if self.horizon < math.inf:
            n_cap = min(n_cap, max(0, math.floor((self.horizon - self.t) / longest)))
        thr = self.threshold()
        if self.step_due is not None:
            n_cap = min(n_cap, max(0, math.floor((self.step_due - self.t) / longest)))
        if thr is not None and self.gov.basis == "energy":
            t_e = (self.energy_nominal * (1.0 - thr) - self.tally.energy_j) / heavy_w
            n_cap = min(n_cap, max(0, math.floor(t_e / heavy)))
        return n_grid, n_cap

    def after_cycles(self, n: int, requests: int, span: float, busy_s: float) -> None:
        """Move the clock and the requests on over ``n`` whole cycles lasting ``span`` s,
        ``busy_s`` of them inferring: periodic, ``requests`` arrivals (those beyond the
        ``n`` served were dropped); Poisson (mean mode), the expected drops; the next
        request in hand at the end."""
        if self.wl.kind == "periodic":
            self._drop(requests - n)
            self.k += requests
            self.t = (self.k - 1) * self.wl.period_s
            self.pending = self.t
        elif self.wl.kind == "poisson":
            # expected drops: the arrivals during each inference (rate x latency), carried
            # as a fraction and counted whole
            self.drop_carry += busy_s * self.wl.arrivals.rate_hz
            whole = math.floor(self.drop_carry)
            self._drop(whole)
            self.drop_carry -= whole
            self.t += span
            self.pending = self.t  # the request that ends the last mean gap is in hand
            self.wl.arrivals.restart(self.t, self.k)
        else:
            self.t += span
            self.pending = self.t


def _state(m: Machine) -> tuple:
    return (m.stage, m.khz, m.variant, len(m.rows), m.empty)


Process = Callable[[Any, Machine], Generator[Any, Any, Any]]


def _drive(machine: Machine, step: Callable[[Machine], None], processes: Iterable[Process]):
    """The device as one simpy process beside the user's: each turn it advances the
    machine up to its next state change or the next user-process event (``env.peek()``),
    then waits for the simpy clock to catch up, so user processes see (and change) the
    machine at their own times. A user's change applies from the next request boundary."""
    import simpy

    env = simpy.Environment()
    procs = list(processes)
    for proc in procs:
        env.process(proc(env, machine))

    def device_process():
        while not machine.empty:
            machine.horizon = env.peek() if procs else math.inf
            step(machine)
            yield env.timeout(max(0.0, machine.t - env.now))

    env.run(until=env.process(device_process()))


def _fast_step(m: Machine) -> None:
    before = _state(m)
    while _state(m) == before:
        m.take_request()
        if m.empty or m.pending is None:
            break
        m.prepare()
        if not m.batch() and not m.empty:
            m.serve()
        if m.t >= m.horizon:
            break


def run_exact(machine: Machine, processes: Iterable[Process] = ()) -> None:
    """Request by request, every inference and idle gap integrated on its own, with the
    request source, queue, inference server, governor and switching policy as simpy
    processes (``simulator.processes``) beside any user processes."""
    from simulator.processes import run_exact as run

    run(machine, processes)


def run_mean(machine: Machine, processes: Iterable[Process] = ()) -> None:
    """``fast`` mode, with Poisson workloads without a queue (``queue="none"``) run on the
    expected-value cycle of that server (an M/D/1 loss system per level): busy for the
    latency, idle for the mean gap 1/rate, rate x latency arrivals dropped per cycle; the
    requests around a state change are stepped one by one on fresh Poisson arrivals from
    the cycle's end (the process is memoryless). Other workloads and queues: as ``fast``.
    Its counts are expectations, not one seed's: compare with exact mode over seeds."""
    if machine.wl.kind == "poisson" and machine.queue == "none":
        machine.mean_poisson = True
    _drive(machine, _fast_step, processes)


def run_fast(machine: Machine, processes: Iterable[Process] = ()) -> None:
    """One simpy timeout per state change (a governor stage, a level, a pattern set, a
    time-series row, the end) or user-process event: whole cycles at once where the
    workload is periodic, and single requests, without events of their own, only where it
    is not.
    """
    _drive(machine, _fast_step, processes)
