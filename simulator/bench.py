"""``rt3lab bench simulator``: a full phone-battery discharge in both modes, side by side;
fast mode at 1x, 10x and 100x the capacity; exact mode against a naive simpy model of the
same discharge; the Thevenin battery against PyBaMM's ECM solve of the same discharge."""

from __future__ import annotations

import statistics
import time
from typing import Any

import typer

from contracts import strict_json

app = typer.Typer()

SCALES = (1, 10, 100)


def naive_simpy(profile: Any, capacity_mah: float) -> tuple[float, int]:
    """A naive simpy model of RT3 on an ideal battery, continuous requests: one simpy
    process per inference, the governor's energy thresholds checked between inferences,
    transitions free. The yardstick ``exact`` mode is measured against, not a mode of the
    simulator. Returns (battery life s, inferences).

    >>> from device_profiles import load_profile
    >>> life, n = naive_simpy(load_profile("rt3-paper"), 1)
    >>> round(life, 1), n   # exact mode: 94.5 s, 617 (616 with governor_step='rerun')
    (94.3, 617)
    """
    import simpy

    from simulator.device import build_device
    from simulator.governor import governor_from_spec
    from simulator.policies import plan_table

    gov = governor_from_spec(profile)
    dev = build_device(profile, gov.levels(), None)
    table = plan_table("rt3", dev, gov.levels(), None)
    energy = capacity_mah * 3.6 * profile.battery.nominal_voltage_v
    env = simpy.Environment()
    state = {"drawn": 0.0, "stage": 0, "n": 0}

    def inference(latency_s: float, watts: float):
        yield env.timeout(latency_s)
        state["drawn"] += watts * latency_s

    def device():
        while True:
            while (thr := gov.threshold(state["stage"])) is not None and (
                1.0 - state["drawn"] / energy < thr
            ):
                state["stage"] += 1
            khz = gov.level(state["stage"])
            watts = dev.busy_w[khz]
            latency_s = dev.variant(table[khz]).latency(khz)
            if state["drawn"] + watts * latency_s > energy:
                return
            yield env.process(inference(latency_s, watts))
            state["n"] += 1

    env.process(device())
    env.run()
    return env.now, state["n"]


def thevenin_vs_pybamm(power_w: float = 0.215, repeats: int = 5) -> dict[str, float] | None:
    """Seconds for one constant-power discharge (SoC 0.99 to cutoff) of pixel-3's Thevenin
    cell: ``TheveninBattery`` against PyBaMM's ``equivalent_circuit.Thevenin`` in power mode
    with the same parameters (PyBaMM's solve only: the model is built and solved once before
    timing). Medians of ``repeats``, taken in turn; None when PyBaMM is not installed.

    ``thevenin_over_pybamm`` is a speed ratio, PyBaMM's seconds over ours: above 1, ours is
    faster. ``life_rel_diff`` is how far apart the two times to cutoff land."""
    import os

    os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
    try:
        import pybamm
    except ImportError:
        return None
    import numpy as np

    from device_profiles import load_profile
    from simulator.battery import Load, TheveninBattery

    prof = load_profile("pixel-3")
    th = prof.battery.thevenin
    soc, ocv = np.array(th.ocv.soc), np.array(th.ocv.ocv_v)
    model = pybamm.equivalent_circuit.Thevenin(
        options={"number of rc elements": 1, "operating mode": "power"}
    )
    pv = pybamm.ParameterValues("ECM_Example")
    pv.update(
        {
            "Cell capacity [A.h]": prof.battery.capacity_mah / 1000.0,
            "Initial SoC": 0.99,
            "R0 [Ohm]": th.r0_ohm,
            "R1 [Ohm]": th.rc[0].r_ohm,
            "C1 [F]": th.rc[0].c_f,
            "Open-circuit voltage [V]": lambda sto: pybamm.Interpolant(
                soc, ocv, sto, interpolator="linear"
            ),
            "Lower voltage cut-off [V]": th.cutoff_v,
            "Entropic change [V/K]": 0.0,
            "Power function [W]": power_w,
        },
        check_already_exists=False,
    )
    sim = pybamm.Simulation(model, parameter_values=pv)
    horizon = [0.0, 2.0 * prof.battery.energy_j / power_w]
    sim.solve(horizon)  # builds and discretises the model: not timed
    pb_times, ours_times = [], []
    for _ in range(repeats):  # in turn, so a busy spell slows both alike
        t0 = time.perf_counter()
        sol = sim.solve(horizon)
        pb_times.append(time.perf_counter() - t0)
        bat = TheveninBattery(  # the profile's own floats, as the simulator builds it
            prof.battery.capacity_mah,  # (numpy scalars in the OCV table cost ours ~1.5x)
            th.ocv.soc,
            th.ocv.ocv_v,
            th.r0_ohm,
            [(th.rc[0].r_ohm, th.rc[0].c_f)],
            th.cutoff_v,
            0.99,
        )
        t0 = time.perf_counter()
        life, _ = bat.advance_until(Load.constant(power_w), 1e12)
        ours_times.append(time.perf_counter() - t0)
    pb_life = float(sol["Time [s]"].entries[-1])
    ours_s, pb_s = statistics.median(ours_times), statistics.median(pb_times)
    return {
        "power_w": power_w,
        "thevenin_s": ours_s,
        "pybamm_solve_s": pb_s,
        "thevenin_over_pybamm": pb_s / ours_s,
        "thevenin_over_pybamm_is": "speed: pybamm_solve_s / thevenin_s (> 1: ours is faster)",
        "life_s": life,
        "pybamm_life_s": pb_life,
        "life_rel_diff": abs(life - pb_life) / pb_life,
    }


def _median_wall(fn: Any, repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def agreement_at(profile: Any, capacity_mah: float) -> dict[str, Any]:
    """Fast and exact mode on one discharge of ``profile`` (rt3, ideal battery, continuous)
    at ``capacity_mah``: how far apart their lives and inference counts land."""
    from simulator import simulate

    kw = dict(battery_model="ideal", capacity_mah=capacity_mah)
    t0 = time.perf_counter()
    fast = simulate(profile, mode="fast", **kw)
    fast_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    exact = simulate(profile, mode="exact", **kw)
    exact_s = time.perf_counter() - t0
    return {
        "capacity_mah": capacity_mah,
        "fast_s": fast_s,
        "exact_s": exact_s,
        "life_rel_diff": abs(fast.battery_life_s - exact.battery_life_s) / exact.battery_life_s,
        "inferences_diff": fast.inferences - exact.inferences,
    }


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, rounded (None where the OS has none): the
    simulator's benches record it before they add their own load."""
    import os

    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _by_capacity(
    prof: Any, mode: str, kwargs: dict[str, Any], repeats: int
) -> tuple[dict[str, float], dict[str, int]]:
    """Median wall time and inferences of ``mode`` at each of ``SCALES`` x the capacity."""
    from simulator import simulate

    walls: dict[str, float] = {}
    counts: dict[str, int] = {}
    for k in SCALES:
        cap = prof.battery.capacity_mah * k
        wall, res = _median_wall(
            lambda cap=cap: simulate(prof, mode=mode, capacity_mah=cap, **kwargs), repeats
        )
        walls[f"{k}x"], counts[f"{k}x"] = wall, res.inferences
    return walls, counts


def _fast_and_exact(prof: Any, kwargs: dict[str, Any], repeats: int) -> dict[str, Any]:
    """One discharge in fast mode (median of ``repeats``) and in exact mode, and fast mode
    at each of ``SCALES`` x the capacity."""
    from simulator import simulate

    simulate(prof, mode="fast", **kwargs)  # warm-up: imports (pandas, simpy) and caches
    fast_wall, fast = _median_wall(lambda: simulate(prof, mode="fast", **kwargs), repeats)
    exact_wall, exact = _median_wall(lambda: simulate(prof, mode="exact", **kwargs), 1)
    by_cap, inf_by_cap = _by_capacity(prof, "fast", kwargs, repeats)
    return {
        "battery_life_s": exact.battery_life_s,
        "fast_battery_life_s": fast.battery_life_s,
        "fast_wall_s": fast_wall,
        "exact_wall_s": exact_wall,
        "speedup": exact_wall / fast_wall,
        "fast_sim_s_per_wall_s": fast.battery_life_s / fast_wall,
        "exact_sim_s_per_wall_s": exact.battery_life_s / exact_wall,
        "fast_inferences": fast.inferences,
        "exact_inferences": exact.inferences,
        "inferences_diff": fast.inferences - exact.inferences,
        "life_rel_diff": abs(fast.battery_life_s - exact.battery_life_s) / exact.battery_life_s,
        "fast_repeats": max(1, repeats),
        "fast_s_by_capacity": by_cap,
        "fast_inferences_by_capacity": inf_by_cap,
    }


def _against_naive(capacity_mah: float) -> dict[str, Any]:
    """Exact mode against ``naive_simpy`` on rt3-paper (ideal battery, continuous)."""
    from device_profiles import load_profile
    from simulator import simulate

    rt3 = load_profile("rt3-paper")
    naive_wall, (naive_life, naive_n) = _median_wall(lambda: naive_simpy(rt3, capacity_mah), 1)
    exact_wall, exact = _median_wall(
        lambda: simulate(rt3, mode="exact", battery_model="ideal", capacity_mah=capacity_mah), 1
    )
    return {
        "profile": "rt3-paper",
        "battery_model": "ideal",
        "workload": "continuous",
        "capacity_mah": capacity_mah,
        "naive_wall_s": naive_wall,
        "exact_wall_s": exact_wall,
        "naive_life_s": naive_life,
        "exact_life_s": exact.battery_life_s,
        "naive_inferences": naive_n,
        "exact_inferences": exact.inferences,
    }


def _mean_poisson(prof: Any, kwargs: dict[str, Any], repeats: int) -> dict[str, Any]:
    """Mean mode on a Poisson workload at each of ``SCALES`` x the capacity, against fast
    mode stepping the same workload request by request at 1x (seed 0)."""
    from simulator import simulate

    mean_by_cap, mean_inf_by_cap = _by_capacity(prof, "mean", kwargs, repeats)
    mean_1x = simulate(prof, mode="mean", **kwargs)
    stepped_wall, stepped = _median_wall(lambda: simulate(prof, mode="fast", **kwargs), 1)
    return {
        "workload": kwargs["workload"],
        "mean_s_by_capacity": mean_by_cap,
        "mean_inferences_by_capacity": mean_inf_by_cap,
        "fast_stepped_s": stepped_wall,
        "fast_stepped_inferences": stepped.inferences,
        "fast_stepped_life_s": stepped.battery_life_s,
        # one seed (0) against the expected value: a sample, not an error bound
        "life_rel_diff_seed0": abs(mean_1x.battery_life_s - stepped.battery_life_s)
        / stepped.battery_life_s,
    }


def simulator_bench(
    profile: str = "pixel-3",
    battery_model: str = "thevenin",
    workload: str = "periodic:30",
    policy: str = "rt3",
    repeats: int = 5,
    naive_capacity_mah: float = 300.0,
    agreement_capacity_mah: float = 30.0,
    poisson: str = "poisson:10",
) -> dict[str, Any]:
    """``rt3lab bench simulator``'s result (its ``--json``): see ``simulator``."""
    from device_profiles import load_profile

    load = load_average()  # before the bench adds its own
    prof = load_profile(profile)
    modes = _fast_and_exact(
        prof, dict(policy=policy, battery_model=battery_model, workload=workload), repeats
    )
    pkw = dict(policy=policy, battery_model=battery_model, workload=poisson)
    mean_poisson = _mean_poisson(prof, pkw, repeats)
    naive = _against_naive(naive_capacity_mah)
    rt3 = load_profile("rt3-paper")
    agreement = {f"{k}x": agreement_at(rt3, agreement_capacity_mah * k) for k in SCALES}
    pybamm = thevenin_vs_pybamm()
    return {
        "profile": profile,
        "battery_model": battery_model,
        "workload": workload,
        "policy": policy,
        **modes,
        "naive_simpy": naive,
        "exact_over_naive_simpy": naive["naive_wall_s"] / naive["exact_wall_s"],
        # fast against exact at 1x/10x/100x of --agreement-capacity-mah (rt3-paper, ideal,
        # continuous): the phone discharge above takes exact mode ~7 s at 1x, ~12 min at 100x,
        # and exact mode refuses rt3-paper past ~7,000 mAh continuous (its work bound)
        "agreement_by_capacity": agreement,
        "mean_poisson": mean_poisson,
        "thevenin_over_pybamm": None if pybamm is None else pybamm["thevenin_over_pybamm"],
        "pybamm": pybamm,
        "load_average": load,
    }


@app.command()
def simulator(
    profile: str = typer.Option("pixel-3", "--profile"),
    battery_model: str = typer.Option("thevenin", "--battery-model"),
    workload: str = typer.Option("periodic:30", "--workload"),
    policy: str = typer.Option("rt3", "--policy"),
    repeats: int = typer.Option(5, "--repeats", help="Fast-mode runs (the median is reported)."),
    naive_capacity_mah: float = typer.Option(
        300.0, "--naive-capacity-mah", help="rt3-paper's capacity for exact vs naive simpy."
    ),
    agreement_capacity_mah: float = typer.Option(
        30.0,
        "--agreement-capacity-mah",
        help="rt3-paper's capacity at 1x for fast against exact at 1x/10x/100x.",
    ),
    poisson: str = typer.Option(
        "poisson:10", "--poisson", help="Workload for mean mode against fast's stepping."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Wall time of fast and exact mode on one full discharge, how far apart they land;
    fast mode at 1x/10x/100x capacity; exact against a naive simpy model; Thevenin
    against PyBaMM; mean mode on a Poisson workload at 1x/10x/100x against fast mode's
    request-by-request stepping at 1x."""
    out = simulator_bench(
        profile,
        battery_model,
        workload,
        policy,
        repeats,
        naive_capacity_mah,
        agreement_capacity_mah,
        poisson,
    )
    if as_json:
        typer.echo(strict_json.dumps(out, indent=2))
        return
    print_bench(out)


def print_bench(out: dict[str, Any]) -> None:
    """``simulator_bench``'s result as a table and a few lines."""
    from rich.table import Table

    from termout import console as termout_console

    t = Table(
        title=f"simulator: {out['profile']}, {out['battery_model']}, {out['workload']}, "
        f"{out['policy']}"
    )
    for col in ("mode", "wall (s)", "sim s / wall s", "life (h)", "inferences"):
        t.add_column(col, justify="right")
    t.add_row(
        "fast",
        f"{out['fast_wall_s']:.4f}",
        f"{out['fast_sim_s_per_wall_s']:,.0f}",
        f"{out['fast_battery_life_s'] / 3600:.4f}",
        f"{out['fast_inferences']:,}",
    )
    t.add_row(
        "exact",
        f"{out['exact_wall_s']:.3f}",
        f"{out['exact_sim_s_per_wall_s']:,.0f}",
        f"{out['battery_life_s'] / 3600:.4f}",
        f"{out['exact_inferences']:,}",
    )
    for k, wall in out["fast_s_by_capacity"].items():
        t.add_row(f"fast, {k} capacity", f"{wall:.4f}", "", "", "")
    mp = out["mean_poisson"]
    for k, wall in mp["mean_s_by_capacity"].items():
        n = mp["mean_inferences_by_capacity"][k]
        t.add_row(f"mean, {mp['workload']}, {k} capacity", f"{wall:.4f}", "", "", f"{n:,}")
    t.add_row(
        f"fast, {mp['workload']} stepped (seed 0)",
        f"{mp['fast_stepped_s']:.3f}",
        "",
        f"{mp['fast_stepped_life_s'] / 3600:.4f}",
        f"{mp['fast_stepped_inferences']:,}",
    )
    nv = out["naive_simpy"]
    t.add_row(
        f"naive simpy (rt3-paper, {nv['capacity_mah']:g} mAh)",
        f"{nv['naive_wall_s']:.3f}",
        "",
        f"{nv['naive_life_s'] / 3600:.4f}",
        f"{nv['naive_inferences']:,}",
    )
    t.add_row(
        "exact, same discharge",
        f"{nv['exact_wall_s']:.3f}",
        "",
        f"{nv['exact_life_s'] / 3600:.4f}",
        f"{nv['exact_inferences']:,}",
    )
    for k, a in out["agreement_by_capacity"].items():
        t.add_row(
            f"fast vs exact, rt3-paper {a['capacity_mah']:g} mAh ({k})",
            f"{a['fast_s']:.4f} / {a['exact_s']:.2f}",
            "",
            f"rel diff {a['life_rel_diff']:.1e}",
            f"{a['inferences_diff']:+d}",
        )
    c = termout_console()
    c.print(t)
    c.print(
        f"speedup {out['speedup']:.0f}x, life_rel_diff {out['life_rel_diff']:.2e}, "
        f"inferences differ by {out['inferences_diff']}; exact over naive simpy "
        f"{out['exact_over_naive_simpy']:.2f}x"
    )
    pybamm = out["pybamm"]
    if pybamm is not None:
        c.print(
            f"Thevenin {pybamm['thevenin_s'] * 1e3:.2f} ms vs PyBaMM solve "
            f"{pybamm['pybamm_solve_s'] * 1e3:.2f} ms at {pybamm['power_w']} W "
            f"(ours {pybamm['thevenin_over_pybamm']:.2f}x as fast, life differs "
            f"{pybamm['life_rel_diff']:.1e})"
        )
    c.print(f"load average {out['load_average']}")
