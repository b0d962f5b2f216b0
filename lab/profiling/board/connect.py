"""Which board a run controls: its sysfs files, its frequency control, its restore journal.

A local board is the sysfs tree at ``--cpufreq-root`` (``/sys``, or a fake tree); an Android
device is reached over adb (``--adb SERIAL``, ``-`` for the only one).

>>> from pathlib import Path
>>> sysfs_root(Path("/sys/devices/system/cpu")), sysfs_root(Path("/tmp/fake"))
(PosixPath('/sys'), PosixPath('/tmp/fake'))
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lab.profiling.board.cpufreq import CpufreqControl
from lab.profiling.board.journal import Journal, describe, restore_from
from lab.profiling.board.sysfs import AdbFiles, Files, LocalFiles


def sysfs_root(path: str | Path) -> Path:
    """The sysfs mount a ``--cpufreq-root`` names: ``/sys`` itself, or a path ending in
    ``devices/system/cpu`` (the cpufreq directory's parent), taken back to its mount."""
    p = Path(path)
    parts = p.parts
    if len(parts) >= 3 and parts[-3:] == ("devices", "system", "cpu"):
        return Path(*parts[:-3])
    return p


def serial_of(adb: str | None) -> str | None:
    """The serial ``--adb`` names (None for ``-``, the only device)."""
    return None if adb in (None, "-") else adb


def board_files(cpufreq_root: Path, adb: str | None) -> Files:
    """The sysfs a run reads and writes: the device's over adb, else the tree at
    ``cpufreq_root`` (which must exist)."""
    if adb is not None:
        return AdbFiles(serial=serial_of(adb))
    root = sysfs_root(cpufreq_root)
    if not root.is_dir():
        raise FileNotFoundError(f"--cpufreq-root: {cpufreq_root}: no such directory")
    return LocalFiles(root)


def board_control(
    files: Files, adb: str | None, policy: str | None, settle_timeout_s: float = 2.0
) -> CpufreqControl:
    """Frequency control of the board: over adb (``adb root``, DVFS daemons paused when it
    saves), else cpufreq through ``files``."""
    if adb is not None:
        from lab.profiling.board.adb import AndroidControl

        return AndroidControl(
            serial=serial_of(adb), policy=policy, settle_timeout_s=settle_timeout_s
        )
    return CpufreqControl(files, policy, settle_timeout_s=settle_timeout_s)


def board_journal(cpufreq_root: Path, adb: str | None) -> Journal:
    """The restore journal of the board a run controls."""
    return Journal.for_board(sysfs_root(cpufreq_root), adb)


def recover(control: CpufreqControl, journal: Journal, notice: Callable[[str], None]) -> None:
    """Restore from a journal a killed run left on this board (and say so through
    ``notice``); then journal this run's changes there."""
    policy_dir = control.dir
    done = restore_from(journal, control)
    if done is not None:
        notice(f"rt3lab profile: {describe(done)}")
        control.dir = policy_dir
        control.saved = None  # this run saves afresh
    control.journal = journal


def restore_board(cpufreq_root: Path, adb: str | None, policy: str | None) -> str:
    """``rt3lab profile restore``: restore from the board's journal; what was done, or that
    there was no journal."""
    journal = board_journal(cpufreq_root, adb)
    if journal.read() is None:
        return f"nothing to restore: no journal for {journal.board} ({journal.path})"
    control = board_control(board_files(cpufreq_root, adb), adb, policy)
    done = restore_from(journal, control)
    assert done is not None
    return describe(done)
