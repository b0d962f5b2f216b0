"""The file boundary every board backend goes through: a sysfs tree, local or over adb.

``LocalFiles(root)`` reads and writes files under a directory (``/sys`` on a board, a fake
tree with the kernel's layout in tests). ``AdbFiles(runner)`` does the same on an Android
device through ``adb shell``, with the command runner injected so tests run the real code
against a fake adb. Paths are relative to the sysfs mount (``/devices/system/cpu/...``,
``/class/thermal/...``): ``LocalFiles`` maps them under its root directory, ``AdbFiles``
under the device's ``/sys``.

The read side (`SysfsTree`, `SysfsError`, `CommandRunner`) is ``power_meter.onboard.files``,
which the on-board power sensors read through: both kinds of `Files` serve them as well.

>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as d:
...     f = LocalFiles(d)
...     pathlib.Path(d, "devices").mkdir()
...     _ = pathlib.Path(d, "devices/x").write_text("1")  # sysfs files exist; writes never create
...     f.write("/devices/x", "42")
...     f.read("/devices/x"), f.exists("/devices/x"), f.listdir("/devices")
('42', True, ['x'])
"""

from __future__ import annotations

import os
import shlex
from typing import Protocol

from power_meter.onboard.files import (
    CommandResult,
    CommandRunner,
    SysfsError,
    SysfsTree,
    inside_mount,
    subprocess_runner,
)

__all__ = [
    "AdbFiles",
    "CommandResult",
    "CommandRunner",
    "Files",
    "LocalFiles",
    "SysfsError",
    "subprocess_runner",
]


class Files(Protocol):
    """Read, write and list files of a sysfs tree."""

    def read(self, path: str) -> str:
        """The file's content, stripped."""

    def write(self, path: str, value: str) -> None:
        """Write ``value`` to the file."""

    def exists(self, path: str) -> bool:
        """Whether the file or directory exists."""

    def writable(self, path: str) -> bool:
        """Whether the file can be written."""

    def listdir(self, path: str) -> list[str]:
        """Entries of a directory, sorted."""

    def where(self, path: str) -> str:
        """The path as a user should see it in an error."""


class LocalFiles(SysfsTree):
    """A sysfs tree on this host, rooted at ``root`` (``/sys`` on a real board)."""

    def write(self, path: str, value: str) -> None:
        """Write ``value``; `SysfsError` naming the file when the kernel refuses it."""
        p = self.path(path)
        try:
            # sysfs wants one write() of the whole value; no truncation games.
            fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(fd, value.encode("ascii"))
            finally:
                os.close(fd)
        except FileNotFoundError as exc:
            raise SysfsError(f"{p}: no such file") from exc
        except OSError as exc:
            raise SysfsError(
                f"{p}: cannot write {value!r}: {exc.strerror or exc} (root and a writable "
                "sysfs are needed to control the frequency)"
            ) from exc

    def writable(self, path: str) -> bool:
        """Whether ``path`` exists and this process may write it."""
        p = self.path(path)
        return p.exists() and os.access(p, os.W_OK)


class AdbFiles:
    """A device's sysfs over ``adb shell`` (``cat``, ``echo >``, ``ls``, ``test``).

    Every command is one argv ``[adb, (-s SERIAL), shell, COMMAND]`` passed to ``runner``;
    ``COMMAND`` is a single shell line with quoted paths.
    """

    def __init__(
        self,
        runner: CommandRunner = subprocess_runner,
        serial: str | None = None,
        adb: str = "adb",
        root: str = "/sys",
    ):
        self.runner = runner
        self.root = root.rstrip("/")
        self.prefix = [adb, *(["-s", serial] if serial else [])]
        self.label = f"adb{':' + serial if serial else ''}"

    def shell(self, command: str) -> CommandResult:
        """Run one shell line on the device."""
        return self.runner([*self.prefix, "shell", command])

    def adb(self, *args: str) -> CommandResult:
        """Run one adb command (``root``, ``wait-for-device``)."""
        return self.runner([*self.prefix, *args])

    def where(self, path: str) -> str:
        """``adb:SERIAL:path``."""
        return f"{self.label}:{self._p(path)}"

    def _p(self, path: str) -> str:
        return f"{self.root}/{inside_mount(path)}"

    def read(self, path: str) -> str:
        """``cat`` the file; `SysfsError` naming it when that fails."""
        res = self.shell(f"cat {shlex.quote(self._p(path))}")
        if res.returncode != 0:
            raise SysfsError(f"{self.where(path)}: cannot read: {_why(res)}")
        return res.stdout.strip()

    def write(self, path: str, value: str) -> None:
        """``echo VALUE > FILE``; `SysfsError` naming the file when the device refuses."""
        res = self.shell(f"echo {shlex.quote(value)} > {shlex.quote(self._p(path))}")
        if res.returncode != 0 or "denied" in res.stderr.lower() + res.stdout.lower():
            raise SysfsError(
                f"{self.where(path)}: cannot write {value!r}: {_why(res)} (run `adb root` "
                "on a rooted device)"
            )

    def exists(self, path: str) -> bool:
        """``test -e``."""
        return self.shell(f"test -e {shlex.quote(self._p(path))}").returncode == 0

    def writable(self, path: str) -> bool:
        """``test -w``."""
        return self.shell(f"test -w {shlex.quote(self._p(path))}").returncode == 0

    def listdir(self, path: str) -> list[str]:
        """``ls`` the directory (empty when it does not exist)."""
        res = self.shell(f"ls {shlex.quote(self._p(path))}")
        if res.returncode != 0:
            return []
        return sorted(res.stdout.split())


def _why(res: CommandResult) -> str:
    text = (res.stderr or res.stdout).strip().splitlines()
    return text[-1] if text else f"exit status {res.returncode}"
