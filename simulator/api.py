"""``simulate``: one discharge of a device under a policy, a battery model and a workload."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator.accuracy_bound import TableChoice, TableOutcome, check_accuracy_loss, choose_table
from simulator.battery import make_battery
from simulator.bounds import check_work
from simulator.device import Device, build_device
from simulator.engine import QUEUES, Machine, Process, Tally, run_exact, run_fast, run_mean
from simulator.errors import SimulatorInputError
from simulator.governor import Governor, governor_from_spec
from simulator.inflight import check_governor_step
from simulator.policies import Policy, deadline_warnings, find_policy
from simulator.results import SimulationResult
from simulator.workload import Workload, parse_workload

if TYPE_CHECKING:
    from device_profiles.schema import DeviceProfile, Variant

MODES = ("fast", "exact", "mean")


def _profile(profile: DeviceProfile | str | Path) -> DeviceProfile:
    if isinstance(profile, str | Path):
        from device_profiles import load_profile

        return load_profile(profile)
    return profile


@dataclass(frozen=True)
class Discharge:
    """What every discharge of one ``simulate`` call shares: the device, governor, profile,
    battery and options; ``run`` simulates one under a level -> variant table (the
    oracle's scoring runs many)."""

    device: Device
    gov: Governor
    profile: DeviceProfile
    battery_model: str | None
    capacity_mah: float | None
    sample_s: float | None
    processes: Sequence[Process]
    queue: str
    governor_sample_s: float | None
    governor_step: str = "finish"

    def run(self, table: dict[int, str], wl: Workload, mode: str, record: bool) -> Machine:
        """One discharge under ``table``."""
        prof = self.profile
        battery = make_battery(prof, self.battery_model, self.capacity_mah)
        cap = prof.battery.capacity_mah if self.capacity_mah is None else self.capacity_mah
        nominal = cap * 3.6 * prof.battery.nominal_voltage_v
        machine = Machine(
            self.device,
            self.gov,
            table,
            wl,
            battery,
            self.sample_s,
            record,
            nominal,
            queue=self.queue,
            governor_sample_s=self.governor_sample_s,
            governor_step=self.governor_step,
        )
        {"exact": run_exact, "mean": run_mean}.get(mode, run_fast)(machine, self.processes)
        return machine

    def measure(
        self, workload: str, seed: int, mode: str
    ) -> Callable[[dict[int, str]], TableOutcome]:
        """What a discharge under a table comes to, each table simulated once (mean mode
        on means; the other modes run fast): what the oracle scores and the accuracy
        bound's search ranks."""
        seen: dict[tuple, TableOutcome] = {}

        def measure(table: dict[int, str]) -> TableOutcome:
            key = tuple(sorted(table.items()))
            if key not in seen:
                wl = parse_workload(workload, seed)
                m = self.run(table, wl, "mean" if mode == "mean" else "fast", False)
                seen[key] = outcome(self.device, m)
            return seen[key]

        return measure


def outcome(device: Device, machine: Machine) -> TableOutcome:
    """A finished discharge's life, counts and mean accuracy."""
    t = machine.tally
    per_variant = dict(t.per_variant)
    late = t.misses - t.dropped
    acc = mean_accuracy(device, per_variant, t.inferences)
    return TableOutcome(machine.t, t.inferences, t.inferences - late, acc, per_variant)


def mean_accuracy(device: Device, per_variant: dict[str, int], inferences: int) -> float | None:
    """Accuracy weighted by completed inferences; None when none completed or a variant
    that ran has no accuracy."""
    used = [device.variant(v) for v, n in per_variant.items() if n > 0]
    if inferences == 0 or any(v.accuracy is None for v in used):
        return None
    return sum(v.accuracy * per_variant[v.name] for v in used) / inferences


def discharge_for(
    prof: DeviceProfile,
    governor: str,
    variants: list[Variant] | None,
    battery_model: str | None,
    capacity_mah: float | None,
    *,
    sample_s: float | None = None,
    processes: Sequence[Process] = (),
    queue: str = "none",
    governor_sample_s: float | None = None,
    governor_step: str = "finish",
) -> Discharge:
    """The discharges of ``prof`` under ``governor`` (a spec, as ``simulate`` takes it):
    the device at the governor's levels with the profile's and ``variants``."""
    gov = governor_from_spec(prof, governor)
    device = build_device(prof, gov.levels(), variants)
    return Discharge(
        device,
        gov,
        prof,
        battery_model,
        capacity_mah,
        sample_s,
        processes,
        queue,
        governor_sample_s,
        governor_step,
    )


def check_run(
    profile: DeviceProfile | str | Path,
    workload: str = "continuous",
    mode: str = "fast",
    capacity_mah: float | None = None,
    sample_s: float | None = None,
) -> None:
    """Refuse a run over the work bounds before it starts (``WorkBoundError``).

    The estimate uses every level of the inference cluster and the profile's variants (see
    ``simulator.bounds``); ``simulate`` checks its own run the same way.

    >>> check_run("rt3-paper", capacity_mah=1e300)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    simulator.bounds.WorkBoundError: simulate rt3-paper (capacity_mah 1e+300, ...
    """
    prof = _profile(profile)
    device = build_device(prof, prof.levels_khz, None)
    _check(prof, device, parse_workload(workload, 0), workload, mode, capacity_mah, sample_s)


def _check(
    prof: DeviceProfile,
    device: Device,
    wl: Workload,
    workload: str,
    mode: str,
    capacity_mah: float | None,
    sample_s: float | None,
) -> None:
    cap = prof.battery.capacity_mah if capacity_mah is None else capacity_mah
    if not (isinstance(cap, int | float) and not isinstance(cap, bool) and cap > 0):
        raise SimulatorInputError(f"capacity_mah: must be a positive finite number, got {cap!r}")
    what = f"simulate {prof.name} (capacity_mah {cap:g}, {workload}, {mode})"
    check_work(device, wl, cap * 3.6 * prof.battery.nominal_voltage_v, mode, sample_s, what)


def simulate(
    profile: DeviceProfile | str | Path,
    policy: str = "rt3",
    battery_model: str | None = None,
    workload: str = "continuous",
    mode: str = "fast",
    seed: int = 0,
    variants: list[Variant] | None = None,
    capacity_mah: float | None = None,
    *,
    governor: str = "profile",
    sample_s: float | None = None,
    processes: Sequence[Process] = (),
    queue: str = "none",
    governor_sample_s: float | None = None,
    governor_step: str = "finish",
    max_accuracy_loss: float | None = None,
) -> SimulationResult:
    """Simulate one full discharge and return its result.

    ``profile`` is a DeviceProfile or a shipped name or YAML path; ``battery_model`` None means
    the profile's; ``workload`` is ``continuous``, ``periodic:HZ``, ``poisson:HZ`` or
    ``trace:FILE``; ``variants`` are extra variants (e.g. ``variants_from_bundle``);
    ``governor`` is ``profile``, ``rt3-split``, ``max``, ``fixed`` or ``fixed:KHZ``
    (``dense-max`` always runs fixed at the highest level). The time series has a row at
    every state change and each time another 1% of the nominal energy is drawn, so its
    size does not grow with the capacity; ``sample_s`` adds rows on a time grid (a
    reporting option: the cost of a run then follows the grid). ``processes`` are user
    simpy processes ``fn(env, machine)`` run beside the device (see the README's
    "User processes"): they may set ``machine.extra_w`` (power drawn on top of the
    cluster's) and ``machine.slowdown`` (a factor on every inference latency). ``queue``
    is what happens to a request arriving while an inference runs: ``none`` drops it,
    ``late`` queues it (FIFO, unbounded) and runs it however late, ``drop`` queues it and
    drops it when it comes up too late to finish by its deadline; each late or dropped
    request is a deadline miss. ``governor_sample_s`` makes the governor sample the battery
    at that period: a threshold crossing takes effect at the next sample (None: at once).
    ``governor_step`` is what a step does to the inference in flight: ``finish`` (the work
    done stays done, the rest runs at the new clock on the same pattern set, against the
    deadline it started with) or ``rerun`` (abandoned, counted in ``aborted``, and re-run
    at the new level: the rule before issue 29); see ``simulator.inflight``.
    ``max_accuracy_loss`` (points under the unpruned model's accuracy, 1.0 = 0.01) runs
    the policy's longest-lasting table whose mean accuracy stays within it, says why in
    the result's ``table_choice``, and raises ``NoTableWithinBound`` where there is none
    (see ``simulator.accuracy_bound``).

    >>> r = simulate("rt3-paper", battery_model="ideal", capacity_mah=1)
    >>> r.inferences, r.inferences_per_variant, r.level_changes
    (617, {'dense': 0, 'bp': 617}, 2)
    """
    prof = _profile(profile)
    chosen = _checked(policy, mode, queue, governor_sample_s, sample_s)
    check_governor_step(governor_step)
    if max_accuracy_loss is not None:
        max_accuracy_loss = check_accuracy_loss(max_accuracy_loss)
    discharge = discharge_for(
        prof,
        chosen.governor or governor,
        variants,
        battery_model,
        capacity_mah,
        sample_s=sample_s,
        processes=processes,
        queue=queue,
        governor_sample_s=governor_sample_s,
        governor_step=governor_step,
    )
    device, levels = discharge.device, list(discharge.device.levels)
    wl = parse_workload(workload, seed)
    _check(prof, device, wl, workload, mode, capacity_mah, sample_s)
    measure = discharge.measure(workload, seed, mode)
    choice = choose_table(policy, device, levels, wl.deadline_s, measure, max_accuracy_loss)
    table = choice.table
    warnings = deadline_warnings(device, table, wl.deadline_s)
    machine = discharge.run(table, wl, mode, True)
    if any(kind == "end" for _, kind, _ in machine.events):
        warnings.append(
            "the trace ended and the idle power is 0: the battery never empties; "
            "battery_life_s is the time the last request finished"
        )
    run = dict(policy=policy, workload=workload, mode=mode, seed=seed, warnings=warnings)
    return _record(discharge, machine, choice, max_accuracy_loss, **run)


def _record(
    discharge: Discharge,
    machine: Machine,
    choice: TableChoice,
    max_accuracy_loss: float | None,
    **run: Any,
) -> SimulationResult:
    """The result of ``machine``'s discharge under ``choice``'s table (``run``: the
    policy, workload, mode, seed and warnings so far)."""
    prof, device, tally = discharge.profile, discharge.device, machine.tally
    warnings = run.pop("warnings")
    result = SimulationResult(
        **run,
        profile=prof.name,
        battery_model=discharge.battery_model or prof.battery.model,
        governor=discharge.gov.name,
        governor_step=discharge.governor_step,
        battery_life_s=machine.t,
        inferences=tally.inferences,
        deadline_misses=tally.misses,
        dropped=tally.dropped,
        aborted=tally.aborted,
        mean_accuracy=_mean_accuracy(device, tally, warnings),
        energy_j=tally.energy_j,
        nominal_energy_j=machine.energy_nominal,
        energy_per_inference_j=(tally.energy_j / tally.inferences) if tally.inferences else None,
        switches=tally.switches,
        level_changes=tally.level_changes,
        time_at_level_s={k: tally.time_at_level_s.get(k, 0.0) for k in device.levels},
        inferences_per_variant={v.name: tally.per_variant.get(v.name, 0) for v in device.variants},
        variant_at_level=dict(choice.table),
        warnings=warnings,
        provenance=device.provenance,
        max_accuracy_loss=max_accuracy_loss,
        table_choice=choice.reason,
    )
    result._records = (machine.rows, machine.events)
    return result


def _checked(
    policy: str,
    mode: str,
    queue: str,
    governor_sample_s: float | None,
    sample_s: float | None,
) -> Policy:
    """The policy ``simulate`` runs, once its other options are checked too."""
    if mode not in MODES:
        raise SimulatorInputError(f"mode: unknown {mode!r}, expected fast, exact or mean")
    chosen, _ = find_policy(policy)
    if queue not in QUEUES:
        raise SimulatorInputError(f"queue: unknown {queue!r}, expected one of {', '.join(QUEUES)}")
    if governor_sample_s is not None and not (governor_sample_s > 0):
        raise SimulatorInputError(f"governor_sample_s: must be > 0, got {governor_sample_s}")
    if sample_s is not None and not (sample_s > 0):
        raise SimulatorInputError(f"sample_s: must be > 0, got {sample_s}")
    return chosen


def _mean_accuracy(device: Device, tally: Tally, warnings: list[str]) -> float | None:
    """Accuracy weighted by completed inferences (None when a variant that ran has none),
    adding a warning to ``warnings`` where it is None or variants were ranked by sparsity."""
    mean_acc = mean_accuracy(device, tally.per_variant, tally.inferences)
    if tally.inferences == 0:
        warnings.append("no inference completed")
    elif mean_acc is None:
        used = [device.variant(v) for v, n in tally.per_variant.items() if n > 0]
        blind = sorted(v.name for v in used if v.accuracy is None)
        warnings.append(
            f"mean_accuracy is None: variant(s) {blind} have no accuracy; variants were "
            "ranked by sparsity (least sparse = most accurate)"
        )
    if any(v.accuracy is None for v in device.variants) and mean_acc is not None:
        warnings.append("some variants have no accuracy; variants were ranked by sparsity")
    return mean_acc
