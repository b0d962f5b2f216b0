"""A run directory written the way the simulator's ``write_run`` lays it out (DEVELOPERS.md).

The numbers follow RT3's closed form on the rt3-paper profile (ideal battery, continuous
workload): inferences = sum over levels of floor(E_i / P_i / latency_i).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd

from device_profiles import load_profile, resolve_profile_path

# Pattern sets as a bundle would give them: (name, accuracy, latency ms at 0.8/1.0/1.4 GHz).
SETS = {"set-a": (0.301, 110.0), "set-b": (0.297, 92.0), "set-c": (0.290, 74.0)}


def _closed_form(profile, plan):
    """plan: [(khz, energy fraction, variant, latency_ms, accuracy)] -> result pieces."""
    total_e, t, n, acc_n = profile.battery.energy_j, 0.0, 0, 0.0
    series, per_variant, time_at = [], {}, {}
    for khz, frac, variant, lat_ms, acc in plan:
        busy, _ = profile.power_at(khz)
        k = math.floor(total_e * frac / busy / (lat_ms / 1e3))
        series.append((t, khz, variant, busy))
        dt = k * lat_ms / 1e3
        t += dt
        n += k
        acc_n += k * (acc or 0)
        per_variant[variant] = per_variant.get(variant, 0) + k
        time_at[str(khz)] = time_at.get(str(khz), 0.0) + dt
    return t, n, acc_n, series, per_variant, time_at


def write_fake_run(root: Path, with_extras: bool = True) -> list[dict]:
    profile = load_profile("rt3-paper")
    root.mkdir(parents=True, exist_ok=True)
    (root / "timeseries").mkdir()
    (root / "events").mkdir()
    dense = profile.variant("dense")
    dense_lat = dense.latency_at(1400000)
    plans = {
        "dense-max": [(1400000, 1.0, "dense", dense_lat, 0.305)],
        "rt3": [
            (1400000, 0.5, "set-a", SETS["set-a"][1] * 1.4 / 1.4, SETS["set-a"][0]),
            (1000000, 0.3, "set-b", SETS["set-b"][1], SETS["set-b"][0]),
            (800000, 0.2, "set-c", SETS["set-c"][1], SETS["set-c"][0]),
        ],
    }
    records = []
    for policy, plan in plans.items():
        life, n, acc_n, series, per_variant, time_at = _closed_form(profile, plan)
        energy = profile.battery.energy_j
        records.append(
            {
                "profile": "rt3-paper",
                "policy": policy,
                "battery_model": "ideal",
                "workload": "continuous",
                "mode": "fast",
                "seed": 0,
                "battery_life_s": life,
                "inferences": n,
                "deadline_misses": 0,
                "mean_accuracy": acc_n / n,
                "energy_j": energy,
                "energy_per_inference_j": energy / n,
                "switches": len(plan) - 1,
                "time_at_level_s": time_at,
                "inferences_per_variant": per_variant,
                "variant_at_level": {str(khz): v for khz, _, v, _, _ in plan},
                "warnings": [],
                "provenance": {"latency": "published", "power": "modelled"},
            }
        )
        rows = []
        for i, (t0, khz, variant, busy) in enumerate(series):
            t1 = series[i + 1][0] if i + 1 < len(series) else life
            for t in (t0, (t0 + t1) / 2):
                rows.append((t, 1 - t / life, 3.7 - 0.4 * t / life, busy, khz, variant))
        rows.append((life, 0.0, 3.2, 0.0, series[-1][1], series[-1][2]))
        ts = pd.DataFrame(
            rows, columns=["time_s", "soc", "voltage_v", "power_w", "freq_khz", "variant"]
        )
        ts.to_parquet(root / "timeseries" / f"{policy}.parquet")
        pd.DataFrame(
            [(0.0, "start", policy), (life, "empty", "battery empty")],
            columns=["time_s", "kind", "detail"],
        ).to_csv(root / "events" / f"{policy}.csv", index=False)
    (root / "results.json").write_text(json.dumps(records, indent=1))
    if with_extras:
        shutil.copy(resolve_profile_path("rt3-paper"), root / "profile.yaml")
        (root / "runtime_bench.json").write_text(
            json.dumps({"switch_ms_median": 0.012, "switch_ms_p99": 0.05,
                        "sets": {"bp": {"speedup": 1.8, "speedup_ci95": [1.7, 1.9]}}})
        )  # fmt: skip
        (root / "host.json").write_text(
            json.dumps({"cpu": "Fake CPU 9000", "cores": 2, "torch_threads": 1,
                        "governor": None, "load_average": [0.5, 0.4, 0.3]})
        )  # fmt: skip
        (root / "meter").mkdir()
        t = [i * 0.1 for i in range(50)]
        pd.DataFrame(
            {
                "t_host_s": t,
                "voltage_v": [5.0] * 50,
                "current_a": [0.1 + 0.05 * (1.0 <= x < 3.0) for x in t],
                "power_w": [0.5 + 0.25 * (1.0 <= x < 3.0) for x in t],
                "flags": [0] * 50,
            }
        ).to_csv(root / "meter" / "trace.csv", index=False)
        (root / "meter" / "windows.json").write_text(
            json.dumps([{"name": "set-a", "start_s": 1.0, "end_s": 3.0, "energy_j": 1.5}])
        )
        (root / "commands.json").write_text(
            json.dumps(
                {
                    "results.json": "rt3lab simulate --profile rt3-paper --compare",
                    "runtime_bench.json": "rt3lab bench runtime --bundle B --json",
                }
            )
        )
    return records
