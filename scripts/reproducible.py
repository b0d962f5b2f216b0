"""One seed, cold caches: ``rt3lab compress`` run several times, one after the other, each
from its own empty cache, and the bundles compared (``lab.compression.rerun``). Prints
JSON (the README's reproducibility table is ``reruns_markdown`` of it).

Runs: ``A`` and ``B`` with the defaults (latency measured here), ``C`` given A's table
(``--latency-table``), ``op-count-1`` and ``op-count-2`` with ``--estimator op-count``.

    .venv/bin/python scripts/reproducible.py [--quick] [--seed 0] > out.json
    .venv/bin/python scripts/reproducible.py --summarise A=DIR B=DIR ...  # existing bundles
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUNS = {
    "A": [],
    "B": [],
    "C": ["--latency-table", "{A}"],
    "op-count-1": ["--estimator", "op-count"],
    "op-count-2": ["--estimator", "op-count"],
}


def run_all(quick: bool, seed: int, work: Path) -> dict[str, Path]:
    """Every run of ``RUNS``, each from an empty cache; returns name -> bundle."""
    out: dict[str, Path] = {}
    for name, extra in RUNS.items():
        bundle = work / name / "bundle"
        env = {**os.environ, "RT3LAB_CACHE": str(work / name / "cache")}
        args = [a.format(A=out.get("A", "")) for a in extra]
        cmd = [sys.executable, "-m", "lab", "compress", "--out", str(bundle), "--seed", str(seed)]
        cmd += (["--quick"] if quick else []) + args + ["--json"]
        load = os.getloadavg()[0]
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        print(f"{name}: done (load average {load:.2f} at its start)", file=sys.stderr)
        out[name] = bundle
    return out


def main() -> None:
    from lab.compression.rerun import bundle_summary

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--summarise", nargs="*", metavar="NAME=DIR", help="existing bundles")
    ap.add_argument("--note", default="", help="how and where the runs were made")
    a = ap.parse_args()
    if a.summarise:
        bundles = {k: Path(v) for k, v in (s.split("=", 1) for s in a.summarise)}
        doc = {"runs": {k: bundle_summary(v) for k, v in bundles.items()}}
    else:
        with tempfile.TemporaryDirectory() as tmp:
            bundles = run_all(a.quick, a.seed, Path(tmp))
            doc = {"runs": {k: bundle_summary(v) for k, v in bundles.items()}}
    print(json.dumps({"seed": a.seed, "quick": a.quick, "note": a.note, **doc}, indent=1))


if __name__ == "__main__":
    main()
