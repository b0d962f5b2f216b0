"""User files in and results out, with the rules every package follows.

In: a file named on the command line (a profile, a sweep, a trace, a bundle's manifest, an
export's header) is read only when it is a regular file, and only up to a size: a named
pipe would block the read forever and ``/dev/zero`` would fill memory. The error names the
file, what it is, and the bound.

Out: a result already on disk is never replaced unless the user said ``--overwrite``; a
file is written whole under a temporary name and renamed over its final name, so a symbolic
link planted there is replaced, never followed to a target outside the output; a directory
inside the output that is a symbolic link is refused.

>>> import tempfile
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as d:
...     p = write_file(Path(d) / "a.json", "{}")
...     read_text(p, 100, ValueError)
'{}'
>>> read_text(Path("/dev/zero"), 100, ValueError)
Traceback (most recent call last):
...
ValueError: /dev/zero: is a character device, expected a regular file
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

KIB = 1 << 10
MIB = 1 << 20

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def size_words(n: int) -> str:
    """A byte count in words.

    >>> size_words(16 << 20), size_words(512 << 10), size_words(100)
    ('16 MiB', '512 KiB', '100 bytes')
    """
    if n >= MIB and n % MIB == 0:
        return f"{n // MIB} MiB"
    if n >= KIB and n % KIB == 0:
        return f"{n // KIB} KiB"
    return f"{n} bytes"


def file_kind(mode: int) -> str:
    """What a ``st_mode`` is, in words ("a named pipe (FIFO)", "a regular file", ...)."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def read_bytes(path: str | Path, max_bytes: int, error: type[ValueError]) -> bytes:
    """The bytes of ``path``, a regular file (symbolic links followed) of at most
    ``max_bytes``; anything else is one ``error`` naming the file and what it is.

    The file is opened without blocking (a named pipe opens at once and is then refused)
    and read no further than one byte past the bound.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{p}: no such file") from None
    except OSError as exc:  # a socket (ENXIO), no permission, a loop of links...
        raise error(f"{p}: cannot read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{p}: is {file_kind(info.st_mode)}, expected a regular file")
        os.set_blocking(fd, True)
        chunks, size = [], 0
        step = min(max(info.st_size + 1, 1 << 16), 1 << 24)
        try:  # in chunks: a file that grows while read still stops at the bound
            while size <= max_bytes and (chunk := fh.read(step)):
                chunks.append(chunk)
                size += len(chunk)
        except OSError as exc:
            raise error(f"{p}: cannot read: {exc.strerror or exc}") from None
    if size > max_bytes:
        raise error(f"{p}: over {size_words(max_bytes)}, larger than any such file rt3lab reads")
    return b"".join(chunks)


def read_text(path: str | Path, max_bytes: int, error: type[ValueError]) -> str:
    """``read_bytes`` decoded as UTF-8; a byte that is not is named with its offset."""
    data = read_bytes(path, max_bytes, error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{path}: not a UTF-8 text file (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start})"
        ) from None


def file_in_dir(root: Path, name: str, error: type[ValueError], no_dir: str, no_file: str) -> Path:
    """``root / name`` when ``root`` is a directory holding that regular file; else ``error``
    with ``no_dir`` or ``no_file`` (a checkpoint, a run: folders known by one file)."""
    if not root.is_dir():
        raise error(no_dir)
    path = root / name
    if not path.is_file():
        raise error(no_file)
    return path


def refuse_existing(paths: Iterable[Path], overwrite: bool, error: type[ValueError]) -> None:
    """Refuse, unless ``overwrite``, when one of ``paths`` exists (a dangling link too)."""
    if overwrite:
        return
    for p in paths:
        if os.path.lexists(p):
            raise error(f"{p}: already exists; pass --overwrite to replace it")


def new_path(path: str | Path, error: type[ValueError], flag: str = "--out") -> Path:
    """``path`` for a new file or directory: nothing there yet (no file, no link, dangling
    or not) and its parent, when it exists, a directory.

    >>> new_path("/etc/hostname/x", ValueError)
    Traceback (most recent call last):
    ...
    ValueError: --out /etc/hostname/x: /etc/hostname is not a directory
    """
    p = Path(path)
    if p.is_symlink():
        raise error(f"{flag} {p}: is a symbolic link; choose a new path")
    if p.exists():
        raise error(f"{flag} {p}: exists; choose a new path")
    for parent in p.parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise error(f"{flag} {p}: {parent} is not a directory")
            break
    return p


def output_dir(
    path: str | Path, error: type[ValueError], flag: str = "--out", create: bool = True
) -> Path:
    """The output directory ``path``, created with its parents (unless not ``create``: then
    only checked); a file there or above it, or a dangling link, is one ``error`` line."""
    p = Path(path)
    if p.is_symlink() and not p.exists():
        raise error(f"{flag} {p}: is a symbolic link to nothing; choose a directory")
    if p.exists() and not p.is_dir():
        raise error(f"{flag} {p}: exists and is not a directory")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise error(f"{flag} {p}: {parent} is not a directory")
            break
    if not create:
        return p
    try:
        p.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise error(f"{flag} {p}: a path above it is not a directory") from None
    return p


def sub_dir(parent: Path, name: str, error: type[ValueError]) -> Path:
    """``parent/name``, created; a symbolic link there (which would carry the output
    outside ``parent``) or a file is refused."""
    p = parent / name
    if p.is_symlink():
        raise error(f"{p}: is a symbolic link; rt3lab writes its output only inside {parent}")
    if p.exists() and not p.is_dir():
        raise error(f"{p}: exists and is not a directory")
    p.mkdir(exist_ok=True)
    return p


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Yield a temporary name beside ``path`` to write; on success it is renamed over
    ``path`` (a link there is replaced, not followed); on any failure it is removed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_file(path: Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` whole, through ``replacing``."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with replacing(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
    return path
