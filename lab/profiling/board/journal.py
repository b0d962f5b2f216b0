"""The restore journal: a board's saved frequency settings, on disk before anything changes.

`guard.restoring` puts the board back on exit, error, Ctrl-C, SIGTERM and SIGHUP, but
nothing runs after SIGKILL (or a power cut of the host). So before the first write to
cpufreq or to a phone, the settings `save` found (governor, min, max, setspeed, and the
vendor daemons about to be stopped) are written, fsync'd, to a journal file named after the
board; a complete restore removes it. `rt3lab profile restore [--cpufreq-root R | --adb S]`
restores from a journal left behind, and any later `rt3lab profile` on that board does so
first and says so.

Journals live in ``$RT3LAB_CACHE/profiling/`` (default ``~/.cache/rt3lab``), one per board:
the sysfs root's real path, or the adb serial.

>>> j = Journal.for_board(adb="8A1X")
>>> j.board, j.path.parent.name, j.path.name.startswith("restore-")
('adb:8A1X', 'profiling', True)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from contracts.cache import cache_root


class JournalError(ValueError):
    """A journal that cannot be used; names the file and what is wrong."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Journal:
    """The restore journal of one board."""

    def __init__(self, board: str) -> None:
        """`board`: ``local:<real sysfs root>`` or ``adb:<serial or ->``."""
        self.board = board
        key = hashlib.sha256(board.encode()).hexdigest()[:16]
        self.path = cache_root() / "profiling" / f"restore-{key}.json"

    @classmethod
    def for_board(cls, root: str | Path | None = None, adb: str | None = None) -> Journal:
        """The journal of the sysfs tree at `root`, or of the adb device `adb`."""
        if adb is not None:
            return cls(f"adb:{adb}")
        return cls(f"local:{os.path.realpath(root or '/sys')}")

    def record(self, control: Any, daemons: list[str] | None = None) -> None:
        """Write what `control` saved (and the daemons stopped or about to be), durably."""
        saved = control.saved
        if saved is None:
            return
        data = {
            "board": self.board,
            "policy_dir": control.dir,
            "where": control.files.where(control.dir),
            "state": asdict(saved),
            "daemons": list(daemons or []),
            "pid": os.getpid(),
            "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, (json.dumps(data, indent=1) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def read(self) -> dict[str, Any] | None:
        """The journal's content, or None when there is none."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
            s = data["state"]
            ok = isinstance(data["policy_dir"], str) and isinstance(s["governor"], str)
            ok = ok and all(isinstance(s[k], int) for k in ("min_khz", "max_khz"))
        except (json.JSONDecodeError, KeyError, TypeError):
            ok = False
        if not ok:
            raise JournalError(
                f"{self.path}: not a restore journal (expected JSON with policy_dir and the "
                "saved governor, min_khz, max_khz); restore the board by hand, then delete it"
            )
        return data

    def clear(self) -> None:
        """The board is restored: remove the journal."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def restore_from(journal: Journal, control: Any) -> dict[str, Any] | None:
    """Restore the board through `control` from `journal` if one was left; clear it.

    Returns the journal's content (None when there was none). Refuses a journal whose
    run is still alive: two runs on one board would fight over it."""
    from lab.profiling.board.cpufreq import CpufreqState

    data = journal.read()
    if data is None:
        return None
    pid = data.get("pid")
    if isinstance(pid, int) and pid != os.getpid() and _pid_alive(pid):
        raise JournalError(
            f"{journal.path}: rt3lab profile (pid {pid}) is still running on "
            f"{data.get('where')}: wait for it or stop it first"
        )
    control.dir = data["policy_dir"]
    control.saved = CpufreqState(**data["state"])
    control._touched = True
    if data.get("daemons") and hasattr(control, "stopped"):
        control.stopped = [str(d) for d in data["daemons"]]
    control.restore()
    journal.clear()
    return data


def describe(data: dict[str, Any]) -> str:
    """One line: what a journal restored."""
    s = data["state"]
    set_ = f", setspeed {s['setspeed_khz']} kHz" if s.get("setspeed_khz") else ""
    daemons = f", restarted {', '.join(data['daemons'])}" if data.get("daemons") else ""
    return (
        f"restored {data.get('where')} from the journal of an interrupted run "
        f"(pid {data.get('pid')}, {data.get('written')}): governor {s['governor']}, "
        f"min {s['min_khz']} kHz, max {s['max_khz']} kHz{set_}{daemons}"
    )
