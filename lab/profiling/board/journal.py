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
import re
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from contracts.cache import cache_root


class JournalError(ValueError):
    """A journal that cannot be used; names the file and what is wrong."""


MAX_JOURNAL_BYTES = 64 * 1024  # a journal is under 1 KiB
_BY_HAND = "restore the board by hand, then delete the journal"
# What a journal may hold, no more: its values go to sysfs and to `adb shell`, so a planted
# or damaged one must not reach them (a daemon named "perfd; rm -rf /", a policy directory
# "/../../tmp", a governor with a newline, min above max, 1e30 kHz).
_KHZ = (1, 100_000_000)  # 1 kHz to 100 GHz
POLICY_DIR = re.compile(r"^/devices/system/cpu/(cpufreq/policy\d{1,4}|cpu\d{1,4}/cpufreq)$")
GOVERNOR = re.compile(r"^[a-z0-9_]{1,32}$")
DAEMON = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def check_journal(data: object, path: Path) -> dict[str, Any]:
    """``data`` if it is a journal this code wrote: the fields `Journal.record` writes and
    no other, a cpufreq policy directory under the sysfs mount, a governor and daemon names
    of letters, digits and ``_`` (``.@-`` for daemons), kHz as integers in range with min at
    most max; `JournalError` naming the field otherwise.

    >>> check_journal({"board": "adb:x"}, Path("j.json"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lab.profiling.board.journal.JournalError: j.json: field policy_dir: missing; ...
    """
    from pydantic import ValidationError

    try:
        return _JournalRecord.model().model_validate(data, strict=True).model_dump()
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or "(top level)"
        msg = "missing" if err["type"] == "missing" else err["msg"]
        raise JournalError(f"{path}: field {field}: {msg}; {_BY_HAND}") from None


class _JournalRecord:
    """The pydantic model of a journal, built on first use (pydantic loads lazily)."""

    _model: Any = None

    @classmethod
    def model(cls) -> Any:
        if cls._model is None:
            cls._model = _build_model()
        return cls._model


def _build_model() -> Any:
    from typing import Annotated

    from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

    Khz = Annotated[int, Field(ge=_KHZ[0], le=_KHZ[1])]
    Text = Annotated[str, StringConstraints(max_length=4096, pattern=r"^[^\x00-\x1f]*$")]

    class State(BaseModel):
        model_config = ConfigDict(extra="forbid")
        governor: Annotated[str, StringConstraints(pattern=GOVERNOR.pattern)]
        min_khz: Khz
        max_khz: Khz
        setspeed_khz: Khz | None = None

        @model_validator(mode="after")
        def _ordered(self) -> State:
            if self.min_khz > self.max_khz:
                raise ValueError(f"min_khz {self.min_khz} is above max_khz {self.max_khz}")
            return self

    class Record(BaseModel):
        model_config = ConfigDict(extra="forbid")
        board: Text
        policy_dir: Annotated[str, StringConstraints(pattern=POLICY_DIR.pattern)]
        where: Text
        state: State
        daemons: Annotated[
            list[Annotated[str, StringConstraints(pattern=DAEMON.pattern)]], Field(max_length=16)
        ] = []
        pid: Annotated[int, Field(ge=1, le=2**31 - 1)]
        written: Annotated[str, StringConstraints(max_length=64)]

    return Record


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
        """The journal's content, or None when there is none; `JournalError` for anything
        that is not a journal this code wrote (see `check_journal`)."""
        from power_meter.input_files import InputFileError, decode_text, read_regular

        if not os.path.lexists(self.path):
            return None
        try:
            text = decode_text(read_regular(self.path, MAX_JOURNAL_BYTES, "journal"),
                               self.path, "journal")  # fmt: skip
        except InputFileError as exc:
            raise JournalError(f"{exc}; {_BY_HAND}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise JournalError(f"{self.path}: not JSON ({exc}); {_BY_HAND}") from None
        return check_journal(data, self.path)

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
        control.stopped = list(data["daemons"])
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
