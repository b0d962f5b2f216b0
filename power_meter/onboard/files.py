"""The boundary on-board sensors read through: the files of a sysfs tree, and commands.

`SysfsTree(root)` reads files under a directory (``/sys`` on a board, a fake tree with the
kernel's layout in tests). Anything with its ``read``, ``listdir`` and ``where`` will do
(`SensorFiles`), such as ``lab.profiling.board.sysfs.AdbFiles`` on an Android device. Paths
are relative to the sysfs mount (``/class/powercap/...``). A `CommandRunner` runs one
command (``vcgencmd``); tests pass a fake one.

>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as d:
...     _ = pathlib.Path(d, "x").write_text("42\\n")
...     tree = SysfsTree(d)
...     tree.read("/x"), tree.exists("/x"), tree.listdir("/")
('42', True, ['x'])
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class SysfsError(ValueError):
    """A sysfs file that is missing, unreadable, read-only or holds something unexpected."""


@dataclass(frozen=True)
class CommandResult:
    """What a command printed and how it exited."""

    returncode: int
    stdout: str
    stderr: str = ""


CommandRunner = Callable[[Sequence[str]], CommandResult]
"""Runs one command (argv) and returns its result: the boundary to adb and vcgencmd."""


def subprocess_runner(argv: Sequence[str], timeout_s: float = 20.0) -> CommandResult:
    """Run ``argv`` on this host (the default `CommandRunner`)."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout_s, check=False,
            preexec_fn=default_signals,
        )  # fmt: skip
    except FileNotFoundError as exc:
        raise SysfsError(f"{argv[0]}: command not found on this host") from exc
    except subprocess.TimeoutExpired as exc:
        raise SysfsError(f"{' '.join(argv)}: no answer within {timeout_s} s") from exc
    return CommandResult(done.returncode, done.stdout, done.stderr)


def default_signals() -> None:
    """In a child before it runs its program: SIGINT, SIGTERM and SIGHUP back to their
    defaults. A run restoring the board holds them off (ignored), and an ignored signal
    stays ignored across exec: an ``adb`` started then could not be stopped by them."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)


class SensorFiles(Protocol):
    """Read and list the files of a sysfs tree."""

    def read(self, path: str) -> str:
        """The file's content, stripped."""

    def listdir(self, path: str) -> list[str]:
        """Entries of a directory, sorted (empty when it does not exist)."""

    def where(self, path: str) -> str:
        """The path as a user should see it in an error."""


class SysfsTree:
    """A sysfs tree on this host, rooted at ``root`` (``/sys`` on a real board)."""

    def __init__(self, root: str | Path = "/"):
        self.root = Path(root)

    def path(self, path: str) -> Path:
        """The host path of ``path`` (a path under the sysfs mount, which it may not leave:
        `SysfsError` for a ``..`` or NUL in it)."""
        return self.root / inside_mount(path)

    def where(self, path: str) -> str:
        """The host path of ``path``, as text."""
        return str(self.path(path))

    def read(self, path: str) -> str:
        """The file's content, stripped; `SysfsError` naming the file when unreadable."""
        p = self.path(path)
        try:
            return p.read_text(encoding="ascii", errors="replace").strip()
        except FileNotFoundError as exc:
            raise SysfsError(f"{p}: no such file") from exc
        except OSError as exc:
            raise SysfsError(f"{p}: cannot read: {exc.strerror or exc}") from exc

    def exists(self, path: str) -> bool:
        """Whether ``path`` exists under the root."""
        return self.path(path).exists()

    def listdir(self, path: str) -> list[str]:
        """Sorted entries of a directory (empty when it does not exist)."""
        p = self.path(path)
        return sorted(os.listdir(p)) if p.is_dir() else []


def inside_mount(path: str) -> str:
    """``path`` relative to the sysfs mount, refused (`SysfsError`) if it could leave it.

    >>> inside_mount("/devices/system/cpu/cpufreq/policy0")
    'devices/system/cpu/cpufreq/policy0'
    >>> inside_mount("/../../tmp/x")
    Traceback (most recent call last):
    ...
    power_meter.onboard.files.SysfsError: '/../../tmp/x': a sysfs path may not contain '..'
    """
    parts = path.split("/")
    if ".." in parts or "\x00" in path:
        raise SysfsError(f"{path!r}: a sysfs path may not contain '..'" if ".." in parts
                         else f"{path!r}: a sysfs path may not contain a NUL byte")  # fmt: skip
    return path.lstrip("/")


def read_number(files: SensorFiles, path: str) -> float:
    """A file holding one number; `SysfsError` naming it when it holds something else."""
    text = files.read(path)
    try:
        return float(text)
    except ValueError as exc:
        raise SysfsError(f"{files.where(path)}: expected a number, got {text!r}") from exc
