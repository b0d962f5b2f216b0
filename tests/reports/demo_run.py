"""A run directory laid out as `rt3lab demo` writes one, made by the real simulator: rt3-paper
with three pattern sets, the headline periodic workload, rt3 and its baselines and each set
held fixed, and the demo's artefacts beside them (commands with long cache paths, evaluate,
runtime bench, host).

``one_set=True`` gives the case issue 33 found in a demo run: the most accurate set meets
every level's deadline, so rt3 runs it at every level, never switches, and its row equals
``dvfs-only:pp-1400mhz``'s.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from device_profiles import load_profile, resolve_profile_path
from simulator import headline_policies, headline_workload, simulate, write_run

CACHE = "/root/.cache/rt3lab/demo/corpus-0123456789ab"
# (name, accuracy, non-zero mults = adds): RT3's op-count model gives about 6.2 ms per
# million at 1.4 GHz, so each set meets the deadline of the level it is named after.
SWITCHING = [("pp-1400mhz", 0.300, 17.0e6), ("pp-1000mhz", 0.296, 11.0e6),
             ("pp-800mhz", 0.290, 8.0e6)]  # fmt: skip
ONE_SET = [("pp-1400mhz", 0.300, 8.0e6), ("pp-1000mhz", 0.296, 7.0e6),
           ("pp-800mhz", 0.290, 6.0e6)]  # fmt: skip


def demo_profile(sets: list[tuple[str, float, float]]) -> dict:
    """rt3-paper with accuracies on its own variants and the pattern sets added."""
    prof = yaml.safe_load(resolve_profile_path("rt3-paper").read_text(encoding="utf-8"))
    prof["name"] = "rt3-paper"
    for v, acc in zip(prof["variants"], (0.305, 0.302), strict=True):
        v["accuracy"] = acc
    for name, acc, ops in sets:
        prof["variants"].append({"name": name, "accuracy": acc, "sparsity": 1 - ops / 51923200,
                                 "nonzero_mults": ops, "nonzero_adds": ops,
                                 "provenance": "rt3-opcount"})  # fmt: skip
    return prof


def _commands(root: Path, policies: list[str], workload: str) -> dict[str, str]:
    bundle, profile = f"{CACHE}/bundle", f"{CACHE}/profile-rt3-paper.yaml"
    return {
        "bundle": "rt3lab compress --model rt3-transformer --data builtin --profile rt3-paper "
        f"--out {bundle} --seed 0 --quick",
        "evaluate.json": f"rt3lab evaluate --bundle {bundle} --json",
        "runtime_bench.json": f"rt3lab bench runtime --bundle {bundle} --json",
        "profile.yaml": f"rt3lab profile --bundle {bundle} --board rt3-paper --power none "
        f"--time-cap 3 --out {profile}",
        "results.json": f"simulator.simulate(load_profile('{profile}'), policy=P, "
        f"variants=variants_from_bundle('{bundle}'), workload='{workload}') for P in "
        f"{policies} (as `rt3lab simulate --profile {profile} --bundle {bundle} --workload "
        f"{workload} --compare`), report in {root / 'report'}",
    }


def write_demo_run(root: Path, one_set: bool = False) -> list[dict]:
    """Write the run; returns its results.json rows."""
    sets = ONE_SET if one_set else SWITCHING
    root.mkdir(parents=True, exist_ok=True)
    (root / "profile.yaml").write_text(yaml.safe_dump(demo_profile(sets)), encoding="utf-8")
    profile = load_profile(root / "profile.yaml")
    workload = headline_workload(profile)
    names = [v.name for v in profile.variants]
    head = headline_policies(names)
    policies = [*head, *(f"dvfs-only:{n}" for n in names if f"dvfs-only:{n}" not in head)]
    results = [simulate(profile, policy=p, workload=workload) for p in policies]
    write_run(root, results)
    extras = {
        "commands.json": _commands(root, policies, workload),
        "evaluate.json": {"reference": {"dense": {"accuracy": 0.305}},
                          "sets": [{"name": n, "accuracy": a} for n, a, _ in sets]},
        "runtime_bench.json": {"switch_ms_median": 0.412, "switch_ms_p99": 0.9,
                               "sets": {n: {"speedup": 2.1, "speedup_ci95": [2.0, 2.2]}
                                        for n, _, _ in sets}},
        "host.json": {"cpu": "AMD EPYC", "cores": 2, "torch_threads": 2, "governor": None,
                      "load_average": [1.38, 1.37, 1.72]},
    }  # fmt: skip
    for name, data in extras.items():
        (root / name).write_text(json.dumps(data, indent=2), encoding="utf-8")
    return json.loads((root / "results.json").read_text(encoding="utf-8"))
