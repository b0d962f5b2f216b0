"""Exact mode as simpy processes, one concept each, over the ``Machine``'s semantics.

- ``RequestSource``: the workload's requests (periodic, Poisson, trace), each put into the
  queue at its arrival time (one simpy timeout per arrival). ``continuous`` has no source:
  a request is always waiting.
- ``RequestQueue``: a ``simpy.Store`` of arrival times and the deadline policy: ``none``
  (what arrives during an inference is dropped when it completes), ``late`` (FIFO, every
  request runs however late), ``drop`` (FIFO; a request that can no longer finish by its
  deadline when it comes up is dropped, with every later one that cannot either).
- ``GovernorProcess``: waits for the battery integration to report a threshold crossing
  (a simpy event), samples at its own period (the step waits for the first sample at or
  after the crossing), enters the next stage and succeeds its ``stepped`` event.
- ``SwitchingPolicy``: reacts to the governor's event: picks the pattern set for the new
  level from its table and succeeds ``decided``.
- ``InferenceServer``: takes requests from the queue and runs them on the cluster: the
  level change the governor asked for (the transition latency, stalled at the new level's
  busy power) and the pattern-set switch at the next request start, then the inference.
  The battery integrates the load between events inside ``Machine.run_once``; at a
  crossing inside an inference the level follows at once, and the inference finishes the
  work it has left at the new clock on its pattern set (``finish``), or is aborted and
  re-run at the new level (``rerun``; see ``simulator.inflight``).
- user processes (``fn(env, machine)``) run beside these in the same environment.

Batching: the battery is integrated ahead of the simpy clock up to the next event (a
completion, a crossing, an arrival, a user-process event), and the server then yields one
timeout to it. Under ``continuous`` a run of back-to-back inferences at one level (up to a
state change, a time-series row or a user event) is one timeout; other workloads have one
event per arrival, since each one can change what the server does.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any

from simulator.battery.base import Load
from simulator.engine import is_late
from simulator.inflight import InFlight

if TYPE_CHECKING:
    from simulator.engine import Machine, Process

_TOL = 1e-9


def _slack(t: float) -> float:
    return _TOL * max(1.0, abs(t))


class Signal:
    """A renewable simpy event: ``wait()`` gives the current event, ``fire(v)`` succeeds it
    and arms a fresh one for the next round."""

    def __init__(self, env: Any):
        self.env = env
        self.event = env.event()

    def wait(self) -> Any:
        """The event the next ``fire`` succeeds."""
        return self.event

    def fire(self, value: Any = None) -> None:
        """Succeed the current event and arm the next."""
        ev, self.event = self.event, self.env.event()
        ev.succeed(value)


class RequestQueue:
    """Arrival times waiting for the server (a ``simpy.Store``) and the deadline policy."""

    def __init__(self, env: Any, machine: Machine):
        import simpy

        self.m = machine
        self.policy = machine.queue
        self.store = simpy.Store(env)
        self.discard_before = -math.inf  # under ``drop``: arrivals before this are dropped
        # under ``none``: the end of the inference in hand, once the server has integrated
        # it; what arrives before it is dropped
        self.busy_until = -math.inf

    def accepts(self, a: float) -> bool:
        """Whether an arrival at ``a`` enters the queue (else it is dropped at once)."""
        if a < self.discard_before - _slack(self.discard_before):
            self.m._drop(1)
            return False
        return True

    def drop_before(self, t: float) -> None:
        """Drop every waiting request that arrived before ``t`` (within 1e-9 relative)."""
        items = self.store.items
        n = bisect_left(items, t - _slack(t))
        if n:
            del items[:n]
            self.m._drop(n)

    def take(self) -> float | None:
        """Under ``late`` or ``drop``, the request to start now (the oldest one waiting),
        after ``drop`` dropped those that can no longer finish in time; None when none is
        left. Records the queue's length."""
        m, items = self.m, self.store.items
        limit = m.deadline()
        if self.policy == "drop" and limit is not None:
            lat = m.latency(m.variant, m.khz)
            if items[0] + limit < m.t + lat:
                cut = m.t + lat - limit
                self.drop_before(cut)
                self.discard_before = max(self.discard_before, cut)
                if not items:
                    return None
        waiting = bisect_left(items, m.t - _slack(m.t))
        m.tally.max_queue = max(m.tally.max_queue, waiting)
        return items.pop(0)


class RequestSource:
    """The workload's arrivals, each put into the queue at its time."""

    def __init__(self, env: Any, machine: Machine, queue: RequestQueue):
        self.env = env
        self.arrivals = machine.wl.arrivals
        self.queue = queue
        self.k = 0  # the next request's index

    def next_at(self) -> float:
        """When the next request the queue will accept arrives (inf after a trace)."""
        d = self.queue.discard_before
        if self.queue.policy == "none":
            d = max(d, self.queue.busy_until)  # what arrives before then is dropped
        k = self.k if d == -math.inf else self.arrivals.first_at_or_after(d, self.k)
        return self.arrivals.at(k)

    def process(self) -> Generator[Any, Any, None]:
        """The source: a timeout to each arrival, then a put."""
        env, arr, queue = self.env, self.arrivals, self.queue
        while True:
            a = arr.at(self.k)
            if math.isinf(a):
                return
            if a > env.now:
                yield env.timeout(a - env.now)
            busy = queue.busy_until
            if a < busy - _slack(busy):
                # no queue and the server busy: this and every arrival until it is free
                # are dropped, one count and no event each
                j = arr.first_at_or_after(busy, self.k)
                queue.m._drop(j - self.k)
                self.k = j
                continue
            self.k += 1
            if queue.accepts(a):
                queue.store.put(a)


class GovernorProcess:
    """The DVFS governor: steps a stage when the battery crosses its threshold, at the
    first sample at or after the crossing when it samples (``governor_sample_s``)."""

    def __init__(self, env: Any, machine: Machine):
        self.env = env
        self.m = machine
        self.crossed = Signal(env)  # fired by the battery integration, at the crossing
        self.sampled = Signal(env)  # fired once a sampled step is scheduled
        self.stepped = Signal(env)  # fired with the new stage

    def process(self) -> Generator[Any, Any, None]:
        """Wait for a crossing, sample, step."""
        env, m = self.env, self.m
        while True:
            yield self.crossed.wait()
            s = m.gov_sample_s
            if s:
                m.step_due = max(m.t, math.ceil(m.t / s - _TOL) * s)
                if m.step_due > m.t:
                    self.sampled.fire(m.step_due)
                    yield env.timeout(max(0.0, m.step_due - env.now))
            m.governor_step()
            self.stepped.fire(m.stage)


class SwitchingPolicy:
    """The switching policy: on each governor step, the pattern set for the new level (a
    fixed level -> variant table, see ``simulator.policies``)."""

    def __init__(self, env: Any, machine: Machine, governor: GovernorProcess):
        self.m = machine
        self.governor = governor
        self.decided = Signal(env)
        self.stage = machine.stage  # the stage the choice below was made for
        self.choice = machine.table[machine.khz]

    def process(self) -> Generator[Any, Any, None]:
        """React to each governor step."""
        m = self.m
        while True:
            stage = yield self.governor.stepped.wait()
            self.stage = stage
            self.choice = m.table[m.gov.level(stage)]
            self.decided.fire(stage)


class InferenceServer:
    """The inference cluster: takes requests and runs them, one simpy timeout per
    completion (a run of them under ``continuous``), crossing or arrival."""

    def __init__(
        self,
        env: Any,
        machine: Machine,
        queue: RequestQueue,
        source: RequestSource | None,
        governor: GovernorProcess,
        policy: SwitchingPolicy,
        watch_user: bool,
    ):
        self.env = env
        self.m = machine
        self.queue = queue
        self.source = source
        self.governor = governor
        self.policy = policy
        self.watch_user = watch_user
        self.purge: float | None = None  # under ``none``: the last completion's time
        # Under ``none`` without user processes a completion needs no event of its own:
        # what arrives before it is dropped by the source, and the server goes straight
        # on to idle until the next arrival it can take (one event per request).
        self.lazy = source is not None and queue.policy == "none" and not watch_user

    # ---- time and the governor --------------------------------------------------------
    def sync(self) -> Generator[Any, Any, None]:
        """Let the simpy clock catch up with the battery's integration."""
        if self.m.t > self.env.now:
            yield self.env.timeout(self.m.t - self.env.now)

    def run(
        self, load: Load, duration: float, first: tuple[float, str | None] | None = None
    ) -> Generator[Any, Any, tuple[float, str | None]]:
        """``Machine.run`` with the governor told of each crossing: run ``load`` up to
        ``duration``; stop at 'governor' (a step takes effect now: call ``step``),
        'stepped' (the governor already took it: a crossing on one of its samples) or
        'empty'. ``first``: the first ``run_once`` step, already taken by the caller."""
        m, gov = self.m, self.governor
        total = 0.0
        while True:
            dt, hit = m.run_once(load, duration - total) if first is None else first
            first = None
            total += dt
            if hit == "governor" and m.gov_sample_s and m.step_due is None:
                stage = m.stage
                yield from self.sync()
                ack, dec = gov.sampled.wait(), self.policy.decided.wait()
                gov.crossed.fire(m.t)
                yield ack | dec
                if m.stage != stage:  # the crossing fell on a sample: stepped at once
                    yield from self.await_decision(stage)
                    return total, "stepped"
                continue  # the step waits for the governor's next sample (step_due)
            return total, hit

    def step(self) -> Generator[Any, Any, None]:
        """A governor step takes effect now: the governor steps (at once, or at the sample
        it already waits for) and the policy decides; wait for both."""
        m = self.m
        stage, due = m.stage, m.step_due
        yield from self.sync()
        if due is None:
            self.governor.crossed.fire(m.t)
        yield from self.await_decision(stage)

    def after(self, hit: str | None) -> Generator[Any, Any, None]:
        """Take the governor step a ``run`` stopped at, if it is not taken yet."""
        if hit == "governor":
            yield from self.step()

    def await_decision(self, stage: int) -> Generator[Any, Any, None]:
        """Wait until the governor left ``stage`` and the policy chose for the new one."""
        while self.m.stage == stage or self.policy.stage != self.m.stage:
            yield self.policy.decided.wait()

    def run_through(self, load: Load, duration: float) -> Generator[Any, Any, None]:
        """Run ``load`` for ``duration`` s, with governor steps as they come."""
        left = duration
        while left > 0 and not self.m.empty:
            dt, hit = yield from self.run(load, left)
            left -= dt
            yield from self.after(hit)

    # ---- requests ---------------------------------------------------------------------
    def take(self) -> Generator[Any, Any, None]:
        """Idle until a request is waiting and take it in hand (``machine.pending``)."""
        m = self.m
        if m.pending is not None or m.empty:
            return
        if self.source is None:
            m.pending = m.t  # continuous: a request is always waiting
            return
        items = self.queue.store.items
        if self.purge is not None:
            self.queue.drop_before(self.purge)  # what arrived during the last inference
            self.purge = None
        while True:
            if not items:
                a = self.source.next_at()
                if math.isinf(a) and math.isinf(m.horizon):
                    last = m.last_idle()
                    if last is not None:
                        yield from self.run_through(last, math.inf)
                    return
                until = min(a, m.horizon)
                while m.t < until and not m.empty:
                    idle = m.loads(m.khz)[1]
                    span = until - m.t
                    step = m.run_once(idle, span)  # the common case: no generator
                    hit = step[1]
                    if hit == "governor" and m.gov_sample_s and m.step_due is None:
                        _, hit = yield from self.run(idle, span, step)
                    if hit is None:
                        m.t = until
                    elif hit == "governor":
                        yield from self.step()
                if m.empty or until < a:
                    return  # the battery is empty, or a user process is due first
                m.t = max(m.t, a)
                m.pending = yield self.queue.store.get()
                return  # it starts as it arrives: no deadline check, no wait
            if self.queue.policy == "none":
                m.pending = items.pop(0)
                return
            a = self.queue.take()
            if a is not None:
                m.pending = a
                return

    def prepare(self) -> Generator[Any, Any, None]:
        """Bring level and pattern set in line with the governor and the policy: a sampled
        step due now first, then the level change (transition stall), then the switch."""
        m = self.m
        if m.step_due is not None and m.step_due <= m.t:
            yield from self.step()
        while not m.empty:
            yield from self.follow_level()
            if m.empty:
                return
            want = self.policy.choice if self.policy.stage == m.stage else m.table[m.khz]
            if want != m.variant:
                m._event("switch", f"{m.variant} -> {want}")
                m.variant = want
                m.tally.switches += 1
                yield from self.switch_cost()
                continue
            return

    def follow_level(self) -> Generator[Any, Any, None]:
        """Bring the level in line with the governor's stage (``Machine.follow_level``):
        each change an event, a row and the transition stall at the new busy power."""
        m = self.m
        while not m.empty and (khz := m.gov.level(m.stage)) != m.khz:
            m.enter_level(khz)
            if m.dev.transition_s > 0:
                yield from self.run_through(Load.constant(m.dev.busy_w[khz]), m.dev.transition_s)

    def switch_cost(self) -> Generator[Any, Any, None]:
        """The pattern-set switch's time and energy."""
        m = self.m
        t, e = m.dev.switch_s, m.dev.switch_energy_j
        if t <= 0 and not e:
            return
        if t <= 0:
            t = 1e-6  # an energy with no time: drawn over a microsecond
        power = m.dev.busy_w[m.khz] if e is None else e / t
        yield from self.run_through(Load.constant(power), t)

    def serve(self) -> Generator[Any, Any, None]:
        """Run the request in hand (under ``continuous``: back-to-back requests) until a
        completion, a crossing, the end, a time-series row or a user-process event."""
        m = self.m
        if (
            m.step_due is not None
            or m.khz != m.gov.level(m.stage)
            or m.variant != (self.policy.choice if self.policy.stage == m.stage else m.table[m.khz])
        ):
            yield from self.prepare()
        if m.empty:
            return
        var, khz = m.variant, m.khz
        lat = m.inference_latency(var, khz)
        early = bool(m.dev.variant(var).exits)  # each inference draws its exit
        busy = m.loads(khz)[0]
        extra_w, slowdown = m.extra_w, m.slowdown  # as at the request's start
        limit = m.deadline()
        late = math.inf if limit is None else limit * (1 + _TOL)
        tally = m.tally
        while True:
            if m.step_due is not None and m.step_due <= m.t:
                return  # a sampled governor step is due before this request starts
            step = m.run_once(busy, lat)  # the common case without a generator
            dt, hit = step
            if hit == "governor" and m.gov_sample_s and m.step_due is None:
                dt, hit = yield from self.run(busy, lat, step)
            if hit == "empty":
                return
            stepped = hit in ("governor", "stepped")
            if stepped and m.step_rule == "rerun":
                tally.aborted += 1
                yield from self.after(hit)
                return  # the request stays in hand: re-run at the new level
            if stepped:
                flight = InFlight(var, limit, extra_w, slowdown, point=m.point)
                flight.ran(dt, lat)
                busy = yield from self.finish(flight, hit)
                if busy is None:
                    return
            tally.inferences += 1
            tally.per_variant[var] += 1
            resp = m.t - m.pending
            if resp > late and is_late(resp, limit, m.t):  # the cheap test first
                tally.misses += 1
            m.completed()
            if self.queue.policy == "none" and self.source is not None:
                self.purge = self.queue.busy_until = m.t  # what arrived until now is dropped
            if m.row_due():
                m._sample(busy.peak_w)
                return
            if stepped or self.source is not None or m.t >= m.horizon:
                return  # after a step: the next request starts with ``prepare``
            m.pending = m.t
            if early:
                lat = m.inference_latency(var, khz)

    def finish(self, flight: InFlight, hit: str) -> Generator[Any, Any, Load | None]:
        """``finish`` rule (``Machine.finish``): the step ``hit`` caught ``flight``; take
        it, follow the level and run the work left at the new clock, taking further steps
        the same way. The last busy load, None when the battery emptied first."""
        m = self.m
        while True:
            yield from self.after(hit)
            yield from self.follow_level()
            if m.empty:
                return None
            busy, lat = flight.at(m)
            dt, hit = yield from self.run(busy, flight.left * lat)
            if hit == "empty":
                return None
            if hit not in ("governor", "stepped"):
                return busy
            flight.ran(dt, lat)

    def process(self) -> Generator[Any, Any, None]:
        """The server's loop; ends when the battery is empty."""
        m, env = self.m, self.env
        while not m.empty:
            t0 = env.now
            m.horizon = env.peek() if self.watch_user else math.inf
            yield from self.take()
            if not m.empty and m.pending is not None:
                yield from self.serve()
            if m.t > env.now and not (self.lazy and m.pending is None):
                yield env.timeout(m.t - env.now)
            if env.now == t0 and not m.empty:
                yield env.timeout(0)  # nothing moved: let the processes due now run
        if self.lazy and self.queue.busy_until > -math.inf:
            # the battery emptied before the clock reached the last completion: what
            # arrived during that inference is dropped, as the source would have
            busy, src = self.queue.busy_until, self.source
            j = src.arrivals.first_at_or_after(busy, src.k)
            m._drop(j - src.k)
            src.k = j
            self.queue.drop_before(busy)


def run_exact(machine: Machine, processes: Iterable[Process] = ()) -> None:
    """Exact mode: the source, queue, server, governor and switching policy as simpy
    processes (see the module docstring), with any user processes beside them."""
    import simpy

    env = simpy.Environment()
    procs = list(processes)
    queue = RequestQueue(env, machine)
    source = None
    if machine.wl.arrivals is not None:
        source = RequestSource(env, machine, queue)
        env.process(source.process())
    governor = GovernorProcess(env, machine)
    policy = SwitchingPolicy(env, machine, governor)
    env.process(governor.process())
    env.process(policy.process())
    for proc in procs:
        env.process(proc(env, machine))
    server = InferenceServer(env, machine, queue, source, governor, policy, bool(procs))
    env.run(until=env.process(server.process()))
