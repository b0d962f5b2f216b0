"""Reading a file named on the command line: a regular file only, and only so many bytes.

A FIFO would block the reader for ever, a link to ``/dev/zero`` would grow without bound, a
directory is not a trace. `open_regular` opens without blocking, checks what it opened (not
what the name pointed at a moment before) and refuses anything but a regular file of at
most ``max_bytes``; `InputFileError` (a ValueError) names the file and what it is.

>>> import os, tempfile
>>> d = tempfile.mkdtemp()
>>> os.mkfifo(os.path.join(d, "fifo"))
>>> read_regular(os.path.join(d, "fifo"), 100, "trace")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
power_meter.input_files.InputFileError: .../fifo: not a regular file (a FIFO): expected a trace
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


class InputFileError(ValueError):
    """A named input that is not a regular file of acceptable size; names the file."""


def open_regular(path: str | Path, max_bytes: int, what: str) -> BinaryIO:
    """``path`` opened for reading in binary, if it is a regular file of at most
    ``max_bytes`` (a link is followed to what it names, which is checked)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file: expected a {what}") from None
    except IsADirectoryError:
        raise InputFileError(f"{path}: is a directory: expected a {what}") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot open ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a file")
            raise InputFileError(f"{path}: not a regular file ({kind}): expected a {what}")
        if st.st_size > max_bytes:
            raise InputFileError(
                f"{path}: {st.st_size} bytes, more than the {max_bytes} a {what} may have"
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | Path, max_bytes: int, what: str) -> bytes:
    """The bytes of ``path`` (see `open_regular`); a file that grew past ``max_bytes``
    while being read is refused too."""
    with open_regular(path, max_bytes, what) as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputFileError(f"{path}: more than the {max_bytes} bytes a {what} may have")
    return data


def decode_text(data: bytes, path: str | Path, what: str) -> str:
    """``data`` as UTF-8 text; `InputFileError` naming the first byte that is not.

    >>> decode_text(b"ok\\xff", "j.json", "journal")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    power_meter.input_files.InputFileError: j.json: not a text journal (byte 0xff at offset 2...
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"{path}: not a text {what} (byte 0x{data[exc.start]:02x} at offset {exc.start} "
            "is not UTF-8)"
        ) from None
