"""``rt3lab bench simulator``: a full phone-battery discharge in both modes, side by side."""

from __future__ import annotations

import json
import statistics
import time

import typer

app = typer.Typer()


@app.command()
def simulator(
    profile: str = typer.Option("pixel-3", "--profile"),
    battery_model: str = typer.Option("thevenin", "--battery-model"),
    workload: str = typer.Option("periodic:30", "--workload"),
    policy: str = typer.Option("rt3", "--policy"),
    repeats: int = typer.Option(5, "--repeats", help="Fast-mode runs (the median is reported)."),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Wall time of fast and exact mode on one full discharge, and how far apart they land."""
    from device_profiles import load_profile
    from simulator import simulate

    prof = load_profile(profile)
    kwargs = dict(policy=policy, battery_model=battery_model, workload=workload)
    simulate(prof, mode="fast", **kwargs)  # warm-up: imports (pandas, simpy) and caches
    fast_times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fast = simulate(prof, mode="fast", **kwargs)
        fast_times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    exact = simulate(prof, mode="exact", **kwargs)
    exact_wall = time.perf_counter() - t0
    fast_wall = statistics.median(fast_times)
    out = {
        "profile": profile,
        "battery_model": battery_model,
        "workload": workload,
        "policy": policy,
        "battery_life_s": exact.battery_life_s,
        "fast_wall_s": fast_wall,
        "exact_wall_s": exact_wall,
        "speedup": exact_wall / fast_wall,
        "fast_sim_s_per_wall_s": fast.battery_life_s / fast_wall,
        "exact_sim_s_per_wall_s": exact.battery_life_s / exact_wall,
        "fast_inferences": fast.inferences,
        "exact_inferences": exact.inferences,
        "inferences_diff": fast.inferences - exact.inferences,
        "life_rel_diff": abs(fast.battery_life_s - exact.battery_life_s) / exact.battery_life_s,
        "fast_repeats": len(fast_times),
    }
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return

    from rich.table import Table

    from termout import console as termout_console

    t = Table(title=f"simulator: {profile}, {battery_model}, {workload}, {policy}")
    for col in ("mode", "wall (s)", "sim s / wall s", "life (h)", "inferences"):
        t.add_column(col, justify="right")
    t.add_row(
        "fast",
        f"{fast_wall:.4f}",
        f"{out['fast_sim_s_per_wall_s']:,.0f}",
        f"{fast.battery_life_s / 3600:.4f}",
        f"{fast.inferences:,}",
    )
    t.add_row(
        "exact",
        f"{exact_wall:.3f}",
        f"{out['exact_sim_s_per_wall_s']:,.0f}",
        f"{exact.battery_life_s / 3600:.4f}",
        f"{exact.inferences:,}",
    )
    c = termout_console()
    c.print(t)
    c.print(
        f"speedup {out['speedup']:.0f}x, life_rel_diff {out['life_rel_diff']:.2e}, "
        f"inferences differ by {out['inferences_diff']}"
    )
