"""Reading a file named on the command line: a regular file only, and only so many bytes.

A FIFO would block the reader for ever, a link to ``/dev/zero`` would grow without bound, a
directory is not a trace. These are :mod:`contracts.files`'s rules (one implementation for
every package), with `InputFileError` (a ValueError) naming the file, what it is and what
was expected.

>>> import os, tempfile
>>> d = tempfile.mkdtemp()
>>> os.mkfifo(os.path.join(d, "fifo"))
>>> read_regular(os.path.join(d, "fifo"), 100, "trace")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
power_meter.input_files.InputFileError: .../fifo: not a regular file (a FIFO): expected a trace
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from contracts import files


class InputFileError(ValueError):
    """A named input that is not a regular file of acceptable size; names the file."""


def open_regular(path: str | Path, max_bytes: int, what: str) -> BinaryIO:
    """``path`` opened for reading in binary, if it is a regular file of at most
    ``max_bytes`` (a link is followed to what it names, which is checked)."""
    return files.open_regular(path, max_bytes, InputFileError, what)


def read_regular(path: str | Path, max_bytes: int, what: str) -> bytes:
    """The bytes of ``path`` (see `open_regular`); a file that grew past ``max_bytes``
    while being read is refused too."""
    return files.read_bytes(path, max_bytes, InputFileError, what)


def decode_text(data: bytes, path: str | Path, what: str) -> str:
    """``data`` as UTF-8 text; `InputFileError` naming the first byte that is not.

    >>> decode_text(b"ok\\xff", "j.json", "journal")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    power_meter.input_files.InputFileError: j.json: not a text journal (byte 0xff at offset 2...
    """
    return files.decode_utf8(data, path, InputFileError, what)
