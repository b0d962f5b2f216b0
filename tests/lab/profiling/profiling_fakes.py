"""Fake hardware at the file and command boundaries: a sysfs tree with the kernel's layout,
a fake-kernel thread that makes it respond, a fake adb and vcgencmd, a power law that
drives the meter emulator from the fake tree's frequency."""

from __future__ import annotations

import shlex
import threading
import time
from pathlib import Path

import numpy as np

from lab.profiling.board.sysfs import CommandResult

CPU = "devices/system/cpu"


def put(path: Path, text: str) -> None:
    """Replace a file's content atomically, as one sysfs read sees a kernel value."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def make_cpufreq_tree(
    root: Path,
    levels: list[int],
    governors: tuple[str, ...] = ("performance", "schedutil", "userspace", "powersave"),
    governor: str = "schedutil",
    layout: str = "policy",
    cpus: tuple[int, ...] = (0, 1),
    thermal_c: float | None = 45.0,
) -> Path:
    """A sysfs tree rooted at ``root`` with one cpufreq policy covering ``cpus``."""
    if layout == "policy":
        d = root / CPU / "cpufreq" / f"policy{cpus[0]}"
    else:
        d = root / CPU / f"cpu{cpus[0]}" / "cpufreq"
    d.mkdir(parents=True)
    for c in cpus:
        (root / CPU / f"cpu{c}").mkdir(parents=True, exist_ok=True)
    files = {
        "scaling_available_frequencies": " ".join(map(str, levels)) + " ",
        "scaling_available_governors": " ".join(governors),
        "scaling_governor": governor,
        "scaling_setspeed": "<unsupported>",
        "scaling_min_freq": str(min(levels)),
        "scaling_max_freq": str(max(levels)),
        "scaling_cur_freq": str(max(levels)),
        "cpuinfo_cur_freq": str(max(levels)),
        "cpuinfo_min_freq": str(min(levels)),
        "cpuinfo_max_freq": str(max(levels)),
        "cpuinfo_transition_latency": "140000",
        "affected_cpus": " ".join(map(str, cpus)),
    }
    for name, text in files.items():
        (d / name).write_text(text + "\n")
    if thermal_c is not None:
        z = root / "class/thermal/thermal_zone0"
        z.mkdir(parents=True)
        (z / "temp").write_text(f"{int(thermal_c * 1000)}\n")
    return d


def snapshot(policy_dir: Path) -> dict[str, str]:
    """The files cpufreq control may change, as text."""
    names = ("scaling_governor", "scaling_min_freq", "scaling_max_freq", "scaling_setspeed")
    return {n: (policy_dir / n).read_text().strip() for n in names}


class FakeKernel:
    """Makes a fake policy directory respond like cpufreq: the hardware frequency follows
    the governor (userspace: setspeed; performance/others: max; powersave: min), clamped to
    [min, max]. ``stuck_khz`` maps a requested level to what the hardware actually runs
    (a frequency that does not stick). ``on_change(khz)`` is called on every change, before
    the new frequency is published in ``*_cur_freq``: whatever follows the clock (a power
    rail) has changed by the time a reader sees it. `step` may also be called by a test
    (an event that changes the hardware at once), concurrently with the kernel's thread."""

    def __init__(self, policy_dir: Path, stuck_khz: dict[int, int] | None = None, on_change=None):
        self.dir = policy_dir
        self.stuck = dict(stuck_khz or {})
        self.on_change = on_change
        self.khz = int((policy_dir / "cpuinfo_cur_freq").read_text())
        self.history: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self, name: str) -> str:
        try:
            return (self.dir / name).read_text().strip()
        except OSError:
            return ""

    def target(self) -> int:
        gov = self._read("scaling_governor")
        try:
            lo, hi = int(self._read("scaling_min_freq")), int(self._read("scaling_max_freq"))
        except ValueError:
            return self.khz
        if gov == "userspace":
            sp = self._read("scaling_setspeed")
            want = int(sp) if sp.isdigit() else self.khz
        elif gov == "powersave":
            want = lo
        else:
            want = hi
        want = min(max(want, lo), hi)
        return self.stuck.get(want, want)

    def step(self) -> None:
        """Apply what the policy's files ask for now (once)."""
        with self._lock:
            self._step()

    def _step(self) -> None:
        # setspeed reads "<unsupported>" unless the governor is userspace. Read setspeed
        # before the governor: the controller writes the governor first, so a value seen
        # here was written under userspace unless the governor has since changed.
        sp = self._read("scaling_setspeed")
        gov = self._read("scaling_governor")
        if sp.isdigit() and gov not in ("userspace", ""):
            put(self.dir / "scaling_setspeed", "<unsupported>\n")
        khz = self.target()
        if khz != self.khz:
            self.khz = khz
            if self.on_change is not None:
                self.on_change(khz)
            for name in ("scaling_cur_freq", "cpuinfo_cur_freq"):
                put(self.dir / name, f"{khz}\n")
            self.history.append((self._read("scaling_governor"), khz))

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.step()

    def __enter__(self) -> FakeKernel:
        self.step()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.step()  # what the kernel does with the last writes


class FrequencyLaw:
    """A waveform for power_meter's emulators: P = P_static + C V(f)^2 f, following the
    fake kernel's frequency over the emulator's clock (piecewise constant, exact energy)."""

    def __init__(
        self,
        p_static_w: float,
        c_eff_f: float,
        volts: dict[int, float],
        khz: int,
        clock=None,
        voltage_v: float = 5.0,
    ):
        self.p_static_w, self.c_eff_f, self.volts = p_static_w, c_eff_f, volts
        self.clock = clock
        self.v = voltage_v
        self._lock = threading.Lock()
        self.t = [0.0]
        self.p = [self.law(khz)]

    def law(self, khz: int) -> float:
        return self.p_static_w + self.c_eff_f * self.volts[khz] ** 2 * khz * 1e3

    def set_frequency(self, khz: int) -> None:
        with self._lock:
            self.t.append(max(self.clock(), self.t[-1] + 1e-9))
            self.p.append(self.law(khz))

    def power(self, t: float) -> float:
        with self._lock:
            return self.p[int(np.searchsorted(self.t, t, side="right")) - 1]

    def voltage(self, t: float) -> float:
        return self.v

    def energy(self, t0: float, t1: float) -> float:
        with self._lock:
            edges = np.array([*self.t, np.inf])
            p = np.array(self.p)
        lo = np.clip(edges[:-1], t0, t1)
        hi = np.clip(edges[1:], t0, t1)
        return float(np.sum(p * (hi - lo)))


class FakeAdb:
    """A fake ``adb`` operating on a fake device tree: ``root/sys/...`` is the device's /sys.

    Understands the commands the real code sends: ``root``, ``shell cat|ls|test -e|test -w
    PATH``, ``shell echo VALUE > PATH``, ``shell stop|start SERVICE``."""

    def __init__(self, device_root: Path, rooted: bool = True, readonly: bool = False):
        self.root = device_root
        self.rooted = rooted
        self.readonly = readonly
        self.calls: list[list[str]] = []
        self.services = {"thermal-engine": True, "perfd": True}

    def _p(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def __call__(self, argv) -> CommandResult:
        argv = list(argv)
        self.calls.append(argv)
        assert argv[0] == "adb"
        args = argv[1:]
        if args[:1] == ["-s"]:
            args = args[2:]
        if args == ["root"]:
            return CommandResult(
                0 if self.rooted else 1,
                "",
                "" if self.rooted else "adbd cannot run as root in production builds",
            )
        assert args[0] == "shell" and len(args) == 2, args
        words = shlex.split(args[1])
        if words[0] == "cat":
            p = self._p(words[1])
            if not p.is_file():
                return CommandResult(1, "", f"cat: {words[1]}: No such file or directory")
            return CommandResult(0, p.read_text())
        if words[0] == "ls":
            p = self._p(words[1])
            if not p.is_dir():
                return CommandResult(1, "", "No such file or directory")
            return CommandResult(0, "\n".join(sorted(x.name for x in p.iterdir())))
        if words[0] == "test":
            p = self._p(words[2])
            ok = p.exists() and (words[1] == "-e" or (self.rooted and not self.readonly))
            return CommandResult(0 if ok else 1, "")
        if words[0] == "echo":
            assert words[2] == ">"
            if not self.rooted or self.readonly:
                return CommandResult(1, "", f"/system/bin/sh: {words[3]}: Permission denied")
            p = self._p(words[3])
            if not p.exists():
                return CommandResult(1, "", "No such file or directory")
            p.write_text(words[1] + "\n")
            return CommandResult(0, "")
        if words[0] in ("stop", "start"):
            if words[1] in self.services:
                self.services[words[1]] = words[0] == "start"
                return CommandResult(0, "")
            return CommandResult(1, "", "unknown service")
        raise AssertionError(f"unexpected adb shell command {args[1]!r}")


class ClockWorkload:
    """An inference whose duration follows the fake kernel's frequency: a + b/f (the CPU
    at the hardware boundary). Variants scale b."""

    def __init__(self, kernel: FakeKernel, a_ms: float, b_ms_ghz: dict[str, float]):
        self.kernel = kernel
        self.a_ms = a_ms
        self.b = b_ms_ghz
        self.names = list(b_ms_ghz)
        self.active = self.names[0]

    def activate(self, name: str) -> float:
        self.active = name
        return 1e-5

    def run_once(self) -> None:
        # Sleeping, not spinning: the machine is shared; a constant oversleep lands in a.
        time.sleep((self.a_ms + self.b[self.active] / (self.kernel.khz / 1e6)) / 1e3)

    def info(self, name: str):
        from lab.profiling.workload import VariantInfo

        return VariantInfo(name, 0.5, 1e6, 1e6, 0.9)

    def describe(self) -> dict:
        return {"bundle": "clock-workload", "threads": 1, "seq_len": 0}
