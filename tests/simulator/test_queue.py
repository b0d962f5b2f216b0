"""The request queue's deadline policies under Poisson arrivals above capacity: ``late``
queues grow without bound and run late, ``drop`` queues stay short and drop, ``none`` holds
no queue at all; fast and exact agree in each."""

import pytest

from device_profiles import load_profile
from simulator import simulate
from simulator.api import Discharge
from simulator.device import build_device
from simulator.errors import SimulatorInputError
from simulator.governor import governor_from_spec
from simulator.policies import plan_table
from simulator.workload import parse_workload

PIXEL = load_profile("pixel-3")


def machine(queue, capacity_mah, workload="poisson:25", mode="exact"):
    gov = governor_from_spec(PIXEL)
    dev = build_device(PIXEL, gov.levels(), None)
    wl = parse_workload(workload, 0)
    table = plan_table("rt3", dev, gov.levels(), wl.deadline_s)
    run = Discharge(dev, gov, PIXEL, None, capacity_mah, None, (), queue, None)
    return run.run(table, wl, mode, True)


def test_poisson_above_capacity_late_queue_grows_and_drop_queue_drops():
    lat = min(
        v.latency(PIXEL.levels_khz[-1])
        for v in build_device(PIXEL, governor_from_spec(PIXEL).levels(), None).variants
    )
    assert 25.0 * lat > 1.2  # arrivals at 25 Hz outrun the fastest variant: above capacity
    late = [machine("late", cap).tally for cap in (5, 10)]
    drop = [machine("drop", cap).tally for cap in (5, 10)]
    none = machine("none", 5).tally
    # late: nothing dropped; the backlog grows with the length of the run; most run late
    assert late[0].dropped == late[1].dropped == 0
    assert late[1].max_queue > 1.8 * late[0].max_queue > 20
    assert late[1].misses > 0.5 * late[1].inferences
    # drop: the queue stays as short as the deadline allows, and requests are dropped
    # (what waits arrived within the last deadline: a Poisson count over 115 ms at 25 Hz)
    assert 0 < drop[0].max_queue <= 10 and drop[1].max_queue <= 10
    assert drop[1].dropped > 1.8 * drop[0].dropped > 0
    assert drop[0].misses >= drop[0].dropped
    # none: no queue; what arrives during an inference is dropped
    assert none.max_queue == 0 and none.dropped > 0


@pytest.mark.parametrize("queue", ["none", "late", "drop"])
@pytest.mark.parametrize("workload", ["poisson:15", "periodic:20", "periodic:5"])
def test_fast_equals_exact_with_a_queue(queue, workload):
    kw = dict(workload=workload, capacity_mah=5, queue=queue, battery_model="kibam")
    fast = simulate("rt3-paper", mode="fast", **kw)
    exact = simulate("rt3-paper", mode="exact", **kw)
    assert (fast.inferences, fast.dropped, fast.deadline_misses) == (
        exact.inferences,
        exact.dropped,
        exact.deadline_misses,
    )
    assert fast.battery_life_s == pytest.approx(exact.battery_life_s, rel=1e-9)


def test_unknown_queue_policy_is_refused():
    with pytest.raises(SimulatorInputError, match="queue: unknown 'lifo'"):
        simulate("rt3-paper", queue="lifo")


def test_cli_queue_option_runs_and_a_bad_one_exits_2(capsys):
    import json

    from lab.cli import main

    args = ["simulate", "--workload", "poisson:25", "--capacity-mah", "1", "--json"]
    with pytest.raises(SystemExit) as exc:
        main([*args, "--queue", "late", "--governor-sample-s", "5"])
    assert exc.value.code in (0, None)
    assert json.loads(capsys.readouterr().out)["dropped"] == 0
    with pytest.raises(SystemExit) as exc:
        main([*args, "--queue", "lifo"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
