"""Run `rt3lab profile` against a fake Odroid-XU4 A15 board and print the recovered fit.

The board is a sysfs tree with the kernel's layout made to respond by a fake-kernel thread;
its power is power_meter's UM34C emulator on a pty, following P = 2.5 W + 1.8e-9 F * V^2 * f
of the fake board's frequency. Usage (from the checkout):

    .venv/bin/python tests/lab/profiling/run_fake_board.py BUNDLE [LEVELS]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from profiling_fakes import FakeKernel, FrequencyLaw, make_cpufreq_tree, snapshot

from device_profiles import load_profile
from power_meter.emulators import UMEmulator

P0, C = 2.5, 1.8e-9


def main() -> None:
    """Set up the fake board, run the CLI in a subprocess, print the fit and the restore."""
    bundle = sys.argv[1]
    levels = sys.argv[2] if len(sys.argv) > 2 else "600000,1000000,1400000,1800000,2000000"
    a15 = load_profile("odroid-xu4").cluster("a15")
    volts = dict(zip(a15.levels_khz, a15.voltages_v, strict=True))
    tmp = Path(tempfile.mkdtemp(prefix="rt3lab-fake-board-"))
    d = make_cpufreq_tree(tmp / "sys", a15.levels_khz, cpus=(4, 5, 6, 7))
    before = snapshot(d)
    law = FrequencyLaw(P0, C, volts, max(a15.levels_khz))
    emu = UMEmulator(law, model="UM34C", accel=4.0)
    law.clock = emu.clock
    emu.start()
    try:
        with FakeKernel(d, on_change=law.set_frequency):
            cmd = [
                sys.executable, "-m", "lab", "profile", "--bundle", bundle, "--board",
                "odroid-xu4", "--cpufreq-root", str(tmp / "sys"), "--power",
                f"um34c:{emu.port}", "--levels", levels, "--sets", "bp", "--settle", "0.6",
                "--idle", "0.8", "--power-window", "1.0", "--time-cap", "0.5", "--json",
                "--out", str(tmp / "odroid.yaml"),
            ]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    finally:
        emu.stop()
    if done.returncode != 0:
        sys.exit(f"rt3lab profile failed ({done.returncode}): {done.stderr.strip()}")
    fit = json.loads(done.stdout)["power_fit"]
    print(f"P_static {fit['p_static_w']:.5f} W, true {P0}: {fit['p_static_w'] / P0 - 1:+.4%}")
    print(f"C {fit['c_eff_f']:.5e} F, true {C}: {fit['c_eff_f'] / C - 1:+.4%}")
    print("residuals W:", [round(r, 5) for r in fit["residuals_w"]])
    print("governor, min, max, setspeed restored:", snapshot(d) == before)
    print("profile:", tmp / "odroid.yaml")


if __name__ == "__main__":
    main()
