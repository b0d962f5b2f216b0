"""Threads under contention: a small compress alone and with one CPU-bound process per
core beside it, before (OpenMP's default wait policy, torch on every core) and after
(``OMP_WAIT_POLICY=PASSIVE``, what ``lab.cli`` sets), in one script so the ratios
compare like with like on a shared machine. Prints JSON: wall times, the contended/quiet
ratio of each configuration, and the load average before every run.

    .venv/bin/python scripts/contention.py [--repeats 1] [--budget test] [--micro STEPS]
    .venv/bin/python scripts/contention.py --demo      # the whole demo, quiet and contended
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOG = "while True:\n    pass\n"
# A training step of a small Transformer layer (the size of the demo's --quick model),
# the kind of op compress runs thousands of times: prints its own wall time.
MICRO = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
m = torch.nn.TransformerEncoderLayer(128, 4, 200, batch_first=True)
x = torch.randn(8, 35, 128)
opt = torch.optim.SGD(m.parameters(), 0.01)
def step():
    m(x).sum().backward(); opt.step(); opt.zero_grad()
for _ in range(5):
    step()
t0 = time.perf_counter()
for _ in range(int(sys.argv[2])):
    step()
print(time.perf_counter() - t0)
"""


def _micro(env: dict[str, str], threads: int | None, steps: int) -> float:
    if threads is None:  # what lab.host.threads.default_threads picks
        code = "from lab.host.threads import default_threads; print(default_threads())"
        threads = int(subprocess.run([sys.executable, "-c", code], env=env, text=True,
                                     capture_output=True, check=True).stdout)  # fmt: skip
    out = subprocess.run([sys.executable, "-c", MICRO, str(threads), str(steps)], env=env,
                         text=True, capture_output=True, check=True)  # fmt: skip
    return float(out.stdout.strip())


def _run(
    env: dict[str, str], out: Path, budget: str, threads: int | None, demo: bool = False
) -> float:
    cmd = [
        sys.executable, "-m", "lab", "compress", "--model", "rt3-transformer", "--data",
        "builtin", "--budget", budget, "--out", str(out),
    ]  # fmt: skip
    if demo:  # the whole demo from an empty cache (threads: the CLI's own default)
        cmd, threads = [sys.executable, "-m", "lab", "demo", "--out", str(out)], None
    if threads is not None:
        cmd += ["--threads", str(threads)]
    # a fresh cache each run, so no run reuses the dense model another trained
    env = {**env, "RT3LAB_CACHE": tempfile.mkdtemp(prefix="rt3lab-contention-")}
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    """Measure and print the JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--budget", default="test")
    ap.add_argument(
        "--demo", action="store_true",
        help="time `rt3lab demo` from an empty cache (the issue's quiet <= 300 s and "
        "contended <= 3x quiet) instead of a compress",
    )  # fmt: skip
    ap.add_argument(
        "--micro", type=int, default=0, metavar="STEPS",
        help="time STEPS training steps of a small Transformer layer instead of a compress",
    )  # fmt: skip
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    configs = {
        # before: libgomp's default wait policy (spin, then sleep; an empty value keeps
        # lab.cli from setting PASSIVE) and torch on every core
        "before (default wait policy, threads = cores)": ({**base, "OMP_WAIT_POLICY": ""},
                                                          cores),
        # after: what lab.cli.main sets (PASSIVE), threads = lab.host.threads.default_threads
        "after (PASSIVE, threads = cores)": ({**base, "OMP_WAIT_POLICY": "PASSIVE"}, None),
    }  # fmt: skip
    if args.micro:  # separate the two changes: each alone at threads = cores
        configs["PASSIVE only (threads = cores)"] = ({**base, "OMP_WAIT_POLICY": "PASSIVE"}, cores)
        configs["one thread only (default wait policy)"] = ({**base, "OMP_WAIT_POLICY": ""}, 1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (env, threads) in configs.items():
            for contended in (False, True):
                hogs = []
                if contended:
                    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(cores)]
                    time.sleep(2.0)
                try:
                    for i in range(args.repeats):
                        load = os.getloadavg()
                        out = Path(tmp) / f"b{len(rows)}"
                        if args.micro:
                            wall = _micro(env, threads, args.micro)
                        else:
                            wall = _run(env, out, args.budget, threads, args.demo)
                        rows.append({"config": name, "contended": contended, "repeat": i,
                                     "wall_s": wall, "load_before": load})  # fmt: skip
                        print(json.dumps(rows[-1]), file=sys.stderr)
                finally:
                    for h in hogs:
                        h.terminate()
                        h.wait()
    summary = {}
    for name in configs:
        quiet = min(r["wall_s"] for r in rows if r["config"] == name and not r["contended"])
        busy = min(r["wall_s"] for r in rows if r["config"] == name and r["contended"])
        summary[name] = {"quiet_s": quiet, "contended_s": busy, "ratio": busy / quiet}
    what = f"micro: {args.micro} steps" if args.micro else f"compress --budget {args.budget}"
    if args.demo:
        what = "rt3lab demo from an empty cache"
    print(json.dumps({"cores": cores, "hogs": cores, "workload": what, "runs": rows,
                      "summary": summary}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
