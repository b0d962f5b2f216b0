"""Android over adb: cpufreq through ``adb shell``, with the vendor's DVFS daemons paused.

On a rooted device, `AndroidControl` runs ``adb root``, stops ``thermal-engine`` and
``perfd`` (which would otherwise overwrite the governor), and then drives the cpufreq
policy exactly like a Linux board, through `AdbFiles`. `restore` puts the policy back and
restarts the daemons it stopped. The command runner is injected: tests pass a fake adb that
operates on a fake sysfs tree.
"""

from __future__ import annotations

import shlex

from lab.profiling.board.cpufreq import CpufreqControl, FrequencyError
from lab.profiling.board.journal import DAEMON
from lab.profiling.board.sysfs import AdbFiles, CommandRunner, subprocess_runner

DVFS_DAEMONS = ("thermal-engine", "perfd")


class AndroidControl(CpufreqControl):
    """cpufreq on an Android device over adb, pausing the vendor DVFS daemons."""

    def __init__(
        self,
        runner: CommandRunner = subprocess_runner,
        serial: str | None = None,
        policy: str | None = None,
        daemons: tuple[str, ...] = DVFS_DAEMONS,
        settle_timeout_s: float = 2.0,
    ):
        bad = [d for d in daemons if not DAEMON.match(d)]
        if bad:
            raise FrequencyError(f"daemons {bad}: expected service names ([A-Za-z0-9_.@-])")
        files = AdbFiles(runner, serial)
        res = files.adb("root")
        if res.returncode != 0:
            raise FrequencyError(
                f"{files.label}: `adb root` failed ({(res.stderr or res.stdout).strip()}): "
                "frequency control needs a rooted device"
            )
        super().__init__(files, policy, settle_timeout_s=settle_timeout_s, poll_s=0.02)
        self.adb_files = files
        self.daemons = daemons
        self.stopped: list[str] = []

    def save(self) -> None:
        """Remember the policy, then stop the daemons that would fight the userspace speed."""
        first = self.saved is None
        super().save()
        if first:
            if self.journal is not None:  # killed while stopping them: restart them all
                self.journal.record(self, list(self.daemons))
            for d in self.daemons:
                if self.adb_files.shell(f"stop {shlex.quote(d)}").returncode == 0:
                    self.stopped.append(d)
            if self.journal is not None:
                self.journal.record(self, self.stopped)

    def restore(self) -> None:
        """Put the policy back, then restart the daemons that were stopped."""
        try:
            super().restore()
        finally:
            while self.stopped:  # names checked (DAEMON) and quoted: one word each
                d = self.stopped.pop()
                if DAEMON.match(d):
                    self.adb_files.shell(f"start {shlex.quote(d)}")

    def describe(self) -> dict[str, object]:
        """As `CpufreqControl`, plus the daemons paused."""
        return {**super().describe(), "backend": "adb", "daemons_paused": list(self.daemons)}
