"""Fake on-board sensors at their file and command boundaries: a powercap tree (RAPL), both
INA3221 hwmon layouts, ``vcgencmd pmic_read_adc`` output, and a package that draws a set
power by advancing its RAPL counter."""

from __future__ import annotations

import threading
import time
from pathlib import Path

RANGE_UJ = 262143328850  # a real max_energy_range_uj


def put(path: Path, text: str) -> None:
    """Replace a file's content atomically, as one sysfs read sees a kernel value."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def rapl_tree(root: Path, zones=("intel-rapl:0",), range_uj=RANGE_UJ, start_uj=0) -> Path:
    """``root/class/powercap`` with package zones (and a core sub-zone inside each)."""
    for z in zones:
        d = root / "class/powercap" / z
        d.mkdir(parents=True)
        (d / "name").write_text("package-0\n")
        (d / "energy_uj").write_text(f"{start_uj}\n")
        (d / "max_energy_range_uj").write_text(f"{range_uj}\n")
        sub = root / "class/powercap" / f"{z}:0"  # core sub-zone: inside the package
        sub.mkdir()
        (sub / "energy_uj").write_text("123\n")
    return root / "class/powercap"


def set_uj(pc: Path, zone: str, value: int) -> None:
    """Set a zone's energy counter."""
    put(pc / zone / "energy_uj", f"{value}\n")


class Package:
    """A package drawing ``watts``: a thread advances the RAPL counter (with wraps)."""

    def __init__(self, pc: Path, watts: float, start_uj: int, range_uj: int = RANGE_UJ):
        self.pc, self.watts, self.start_uj, self.range_uj = pc, watts, start_uj, range_uj
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.wait(0.005):
            e = self.start_uj + (time.monotonic() - t0) * self.watts * 1e6
            set_uj(self.pc, "intel-rapl:0", int(e) % (self.range_uj + 1))

    def __enter__(self) -> Package:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def hwmon_new(root: Path) -> Path:
    """A Jetson hwmon INA3221 with labelled rails (mV, mA): 6 W in, 2 W and 1.5 W inside."""
    d = root / "class/hwmon/hwmon1"
    d.mkdir(parents=True)
    (d / "name").write_text("ina3221\n")
    for i, (label, mv, ma) in enumerate(
        [("VDD_IN", 5000, 1200), ("VDD_CPU_GPU_CV", 5000, 400), ("VDD_SOC", 5000, 300)], 1
    ):
        (d / f"in{i}_label").write_text(label + "\n")
        (d / f"in{i}_input").write_text(f"{mv}\n")
        (d / f"curr{i}_input").write_text(f"{ma}\n")
    return d


def hwmon_old(root: Path) -> Path:
    """The older layout: named rails with power files (mW), 2 W in all."""
    d = root / "class/hwmon/hwmon0"
    d.mkdir(parents=True)
    for i, (name, mw) in enumerate([("POM_5V_GPU", 500), ("POM_5V_CPU", 1500)]):
        (d / f"rail_name_{i}").write_text(name + "\n")
        (d / f"in_power{i}_input").write_text(f"{mw}\n")
    return d


PMIC = """\
 3V7_WL_SW_A current(0)=0.00000000A
 3V3_SYS_A current(1)=0.05270000A
 VDD_CORE_A current(7)=2.10000000A
 3V7_WL_SW_V volt(8)=3.74400000V
 3V3_SYS_V volt(9)=3.31000000V
 VDD_CORE_V volt(15)=0.87000000V
 EXT5V_V volt(24)=5.13000000V
 BATT_V volt(25)=0.00000000V
"""
"""``vcgencmd pmic_read_adc`` on a Raspberry Pi 5."""
