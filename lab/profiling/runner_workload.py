"""The model timed by the standalone runner, on the board itself: Python is not in the loop.

`RunnerWorkload` is a `lab.profiling.workload.Workload` whose inferences are timed by the
runner (``lab/runtime/runner_main.c``) where it runs: on this host (`LocalRunner`, a local
board such as a Pi running rt3lab, ``--engine runner``) or on an Android device
(`AdbRunner`: the runner and the export are pushed to ``/data/local/tmp/rt3lab/`` and run
through ``adb shell``, pinned with ``taskset`` to the CPUs whose clock is being set). The
procedure takes its latencies from the runner's JSON (`time_runs`) and the switch time from
its ``--switch-to`` (`switch_times_ms`).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.profiling.workload import DENSE, BundleVariants, choose_sets

REMOTE_DIR = "/data/local/tmp/rt3lab"
# `uname -m` on the device -> the runner target built for it
ARCH_TARGETS = {
    "aarch64": "aarch64-linux",
    "arm64": "aarch64-linux",
    "armv8l": "armv7-linux",
    "armv7l": "armv7-linux",
}


class DeviceError(ValueError):
    """The runner cannot be installed or run on the device (names the device and step)."""


@dataclass(frozen=True)
class Result:
    """What one command printed and how it exited."""

    returncode: int
    stdout: str
    stderr: str


def _run(argv: list[str], timeout_s: float, what: str) -> Result:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except FileNotFoundError:
        raise DeviceError(f"{what}: {argv[0]}: command not found on this host") from None
    except subprocess.TimeoutExpired:
        raise DeviceError(f"{what}: no answer within {timeout_s:g} s") from None
    return Result(done.returncode, done.stdout, done.stderr)


def _last_line(res: Result) -> str:
    lines = (res.stderr or res.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit status {res.returncode}"


class LocalRunner:
    """The runner on this host (a local board): ``BINARY EXPORT ARGS``."""

    def __init__(self, binary: str | Path, export: str | Path, target: str = "host"):
        self.binary, self.export, self.target = Path(binary), Path(export), target
        self.where = "this host"

    def run(self, args: list[str], timeout_s: float) -> Result:
        """Run the runner with ``args``."""
        return _run([str(self.binary), str(self.export), *args], timeout_s, "runner")


class AdbRunner:
    """The runner on an Android device over adb, in ``/data/local/tmp/rt3lab/``."""

    def __init__(
        self,
        serial: str | None,
        binary: str | Path,
        export: str | Path,
        target: str,
        cpus: list[int] | None = None,
        adb: str = "adb",
        remote: str = REMOTE_DIR,
    ):
        self.prefix = [adb, *(["-s", serial] if serial else [])]
        self.where = f"adb:{serial}" if serial else "adb"
        self.target = target
        self.remote = remote
        self.remote_bin = f"{remote}/rt3lab-runner"
        self.remote_export = f"{remote}/export"
        self.cpus = sorted(set(cpus or []))
        self._install(Path(binary), Path(export))

    def shell(self, command: str, timeout_s: float = 60.0) -> Result:
        """One shell line on the device."""
        return _run([*self.prefix, "shell", command], timeout_s, f"{self.where} shell")

    def _check(self, res: Result, step: str) -> None:
        if res.returncode != 0:
            raise DeviceError(f"{self.where}: {step} failed: {_last_line(res)}")

    def _install(self, binary: Path, export: Path) -> None:
        from lab.runtime.export import VERIFIED

        q = shlex.quote
        self._check(self.shell(f"mkdir -p {q(self.remote_export)}"), f"mkdir {self.remote}")
        pushes = [(binary, self.remote_bin)]
        pushes += [
            (f, f"{self.remote_export}/{f.name}")
            for f in sorted(export.iterdir())
            if f.name != VERIFIED  # this host's stamp: the device checks its copy itself
        ]
        for local, remote in pushes:
            res = _run([*self.prefix, "push", str(local), remote], 600, f"{self.where} push")
            self._check(res, f"push {local.name} to {remote}")
        self._check(self.shell(f"chmod 755 {q(self.remote_bin)}"), f"chmod {self.remote_bin}")

    def run(self, args: list[str], timeout_s: float) -> Result:
        """Run the runner on the device with ``args`` (pinned when CPUs were given)."""
        cmd = [self.remote_bin, self.remote_export, *args]
        if self.cpus:
            cmd = ["taskset", format(sum(1 << c for c in self.cpus), "x"), *cmd]
        return self.shell(" ".join(shlex.quote(w) for w in cmd), timeout_s)


def device_target(serial: str | None, adb: str = "adb") -> str:
    """The runner target for the device's CPU (``uname -m`` over adb)."""
    prefix = [adb, *(["-s", serial] if serial else [])]
    where = f"adb:{serial}" if serial else "adb"
    res = _run([*prefix, "shell", "uname -m"], 60, f"{where} shell")
    arch = res.stdout.strip()
    if res.returncode != 0 or arch not in ARCH_TARGETS:
        raise DeviceError(
            f"{where}: `uname -m` says {arch or _last_line(res)!r}, not one of "
            f"{sorted(ARCH_TARGETS)}: give a runner built for it with --runner BIN"
        )
    return ARCH_TARGETS[arch]


class RunnerWorkload(BundleVariants):
    """A bundle's sets timed by the runner: ``time_runs`` returns the runner's own
    latencies (ms) for the active set; ``switch_times_ms`` its ``--switch-to`` medians."""

    def __init__(
        self,
        bundle_dir: str | Path,
        runner: LocalRunner | AdbRunner,
        seq_len: int = 35,
        sets: list[str] | None = None,
        timeout_s: float = 600.0,
        threads: int = 1,
    ):
        from lab.host.threads import check_threads
        from lab.runtime.bundle import Bundle
        from lab.runtime.thread_count import warn_other_threads

        self.threads = check_threads(threads)
        self.bundle = Bundle.load(bundle_dir)
        warn_other_threads(self.bundle, self.threads)
        self.path = Path(bundle_dir)
        self.runner = runner
        self.seq_len = seq_len
        self.timeout_s = timeout_s
        names = [DENSE, *(n for n in self.bundle.sets if n != DENSE)]
        self.names = choose_sets(names, sets, bundle_dir)
        self.active = self.names[0]

    def _call(self, args: list[str]) -> dict[str, Any]:
        args = [*args, "--tokens", str(self.seq_len), "--threads", str(self.threads)]
        res = self.runner.run(args, self.timeout_s)
        if res.returncode != 0:
            raise DeviceError(f"runner on {self.runner.where}: {_last_line(res)}")
        try:
            return json.loads(res.stdout)
        except json.JSONDecodeError:
            raise DeviceError(
                f"runner on {self.runner.where}: printed no JSON: {res.stdout.strip()[:80]!r}"
            ) from None

    def activate(self, name: str) -> float:
        """Make ``name`` the set the next runs use (the switch itself is timed on the runner,
        `switch_times_ms`); 0."""
        if name not in self.names:
            raise ValueError(f"--sets: {name!r} is not one of {self.names}")
        self.active = name
        return 0.0

    def time_runs(self, warmup: int, runs: int) -> list[float]:
        """``runs`` inferences of the active set after ``warmup``, each timed by the runner
        (ms, its monotonic clock), in one process on the device."""
        out = self._call(["--set", self.active, "--runs", str(runs), "--warmup", str(warmup)])
        return [float(x) for x in out["runs_ms"]]

    def run_once(self) -> None:
        """One inference of the active set (a runner process of one run)."""
        self.time_runs(0, 1)

    def switch_times_ms(self) -> list[float]:
        """The runner's median switch time from each set to the next (and the last to the
        first): each the median of 1001 switches there and back."""
        if len(self.names) < 2:
            return []
        out = []
        for i, name in enumerate(self.names):
            other = self.names[(i + 1) % len(self.names)]
            res = self._call(["--set", name, "--runs", "1", "--warmup", "0", "--switch-to", other])
            out.append(float(res["switch_ms"]))
        return out

    def describe(self) -> dict[str, Any]:
        """Bundle, model, sequence length, and which runner timed it where."""
        return {
            **self.bundle_facts(self.threads),
            "engine": "runner",
            "runner_target": self.runner.target,
            "runner_where": self.runner.where,
            "timer": f"rt3lab runner ({self.runner.target}, CLOCK_MONOTONIC)",
            "created": self.bundle.provenance.get("created"),
        }


def runner_workload(
    bundle_dir: str | Path,
    seq_len: int,
    sets: list[str] | None,
    adb_serial: str | None = None,
    on_adb: bool = False,
    runner_bin: str | Path | None = None,
    cpus: list[int] | None = None,
    threads: int = 1,
) -> RunnerWorkload:
    """Export ``bundle_dir``, build the runner (for the device's CPU over adb, else for this
    host) unless ``runner_bin`` is given, install it where it runs, and wrap it (the runner
    on ``threads`` threads)."""
    from lab.runtime.bundle import Bundle
    from lab.runtime.export import export_bundle
    from lab.runtime.runner import build_runner

    tmp = tempfile.TemporaryDirectory(prefix="rt3lab-runner-")
    work = Path(tmp.name)
    export = export_bundle(Bundle.load(bundle_dir), work / "export")
    if on_adb:
        target = "--runner" if runner_bin else device_target(adb_serial)
        binary = Path(runner_bin) if runner_bin else build_runner(target, work / "rt3lab-runner")
        runner: LocalRunner | AdbRunner = AdbRunner(adb_serial, binary, export, target, cpus)
    else:
        target = "--runner" if runner_bin else "host"
        binary = Path(runner_bin) if runner_bin else build_runner("host", work / "rt3lab-runner")
        runner = LocalRunner(binary, export, target)
    wl = RunnerWorkload(bundle_dir, runner, seq_len, sets, threads=threads)
    wl._tmp = tmp  # type: ignore[attr-defined]  # the export lives as long as the workload
    return wl
