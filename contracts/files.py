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
from typing import BinaryIO

KIB = 1 << 10
MIB = 1 << 20

# (test, the kind in words, the short form a "not a regular file (...)" line uses)
_KINDS = (
    (stat.S_ISDIR, "a directory", "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)", "a FIFO"),
    (stat.S_ISCHR, "a character device", "a character device"),
    (stat.S_ISBLK, "a block device", "a block device"),
    (stat.S_ISSOCK, "a socket", "a socket"),
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


def file_kind(mode: int, short: bool = False) -> str:
    """What a ``st_mode`` is, in words ("a named pipe (FIFO)", "a regular file", ...;
    ``short``: "a FIFO")."""
    for test, words, short_words in _KINDS:
        if test(mode):
            return short_words if short else words
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def open_regular(
    path: str | Path, max_bytes: int, error: type[ValueError], what: str | None = None
) -> BinaryIO:
    """``path`` opened for reading in binary, if it is a regular file (symbolic links
    followed) of at most ``max_bytes``; anything else is one ``error`` naming the file and
    what it is (and, given ``what``, "a trace", that one was expected).

    The file is opened without blocking (a named pipe opens at once and is then refused);
    what was opened is checked, not what the name pointed at a moment before.

    >>> open_regular("/dev/zero", 100, ValueError, "trace")
    Traceback (most recent call last):
    ...
    ValueError: /dev/zero: not a regular file (a character device): expected a trace
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{p}: no such file" + (f": expected a {what}" if what else "")) from None
    except OSError as exc:  # a socket (ENXIO), no permission, a loop of links...
        raise error(f"{p}: cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            if what:
                kind = file_kind(info.st_mode, short=True)
                raise error(f"{p}: not a regular file ({kind}): expected a {what}")
            raise error(f"{p}: is {file_kind(info.st_mode)}, expected a regular file")
        if info.st_size > max_bytes:
            raise error(_too_large(p, max_bytes, what, info.st_size))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _too_large(p: Path, max_bytes: int, what: str | None, size: int | None = None) -> str:
    """The line for a file past its bound (``size``: as stat gave it, else it grew)."""
    if not what:
        return f"{p}: over {size_words(max_bytes)}, larger than any such file rt3lab reads"
    if size is None:
        return f"{p}: more than the {max_bytes} bytes a {what} may have"
    return f"{p}: {size} bytes, more than the {max_bytes} a {what} may have"


def read_bytes(
    path: str | Path, max_bytes: int, error: type[ValueError], what: str | None = None
) -> bytes:
    """The bytes of ``path``, opened by ``open_regular``, read no further than one byte
    past the bound (a file that grows while read still stops there)."""
    p = Path(path)
    with open_regular(p, max_bytes, error, what) as fh:
        chunks, size = [], 0
        step = min(max(os.fstat(fh.fileno()).st_size + 1, 1 << 16), 1 << 24)
        try:
            while size <= max_bytes and (chunk := fh.read(step)):
                chunks.append(chunk)
                size += len(chunk)
        except OSError as exc:
            raise error(f"{p}: cannot read: {exc.strerror or exc}") from None
    if size > max_bytes:
        raise error(_too_large(p, max_bytes, what))
    return b"".join(chunks)


def decode_utf8(
    data: bytes, path: str | Path, error: type[ValueError], what: str | None = None
) -> str:
    """``data`` as UTF-8 text; else one ``error`` naming the first byte that is not.

    >>> decode_utf8(b"ok\\xff", "j.json", ValueError)
    Traceback (most recent call last):
    ...
    ValueError: j.json: not a UTF-8 text file (byte 0xff at offset 2)
    >>> decode_utf8(b"ok\\xff", "j.json", ValueError, "journal")
    Traceback (most recent call last):
    ...
    ValueError: j.json: not a text journal (byte 0xff at offset 2 is not UTF-8)
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = f"byte 0x{data[exc.start]:02x} at offset {exc.start}"
        if what:
            raise error(f"{path}: not a text {what} ({byte} is not UTF-8)") from None
        raise error(f"{path}: not a UTF-8 text file ({byte})") from None


def read_text(path: str | Path, max_bytes: int, error: type[ValueError]) -> str:
    """``read_bytes`` decoded as UTF-8; a byte that is not is named with its offset."""
    return decode_utf8(read_bytes(path, max_bytes, error), path, error)


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
