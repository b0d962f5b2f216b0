"""The cache of compiled native libraries: build once, verify every time, then load.

A library is built from one C source into ``$RT3LAB_CACHE/native/`` (made 0700) under a name
that hashes the source, the compiler's version, the flags and the CPU, and its SHA-256 is
written beside it (``NAME.so.sha256``) at build time. Before ``dlopen`` the library and its
digest must be regular files owned by the current user and writable by no one else, and the
library's bytes must match the digest; the bytes hashed are the bytes loaded (the open file
is loaded through ``/proc/self/fd``). Anything else is rebuilt, and the note returned says
why. A cache directory owned by another user is not used: the library is built in a private
directory of the current user's instead, and the note says so.

This guards against another user's planted or replaced library and against a damaged one;
it cannot guard against code running as the current user, which could rewrite both files.

>>> import tempfile
>>> d = Path(tempfile.mkdtemp())
>>> (d / "x.so").write_bytes(b"library")
7
>>> _file_problem(d / "x.so") is None
True
>>> (d / "x.so").chmod(0o666)
>>> _file_problem(d / "x.so")
'writable by other users (mode 0o666)'
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from contracts.cache import cache_root

DIGEST_SUFFIX = ".sha256"


def compiler_version(cc: str) -> str:
    """``cc --version`` (part of the cache key); empty if it cannot be run."""
    try:
        return subprocess.run(
            [cc, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def host_isa() -> str:
    """The CPU's model and instruction-set flags: a library built with ``-march=native`` on
    one CPU must not be loaded on another (a shared home directory, say)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    keep = ("model name", "flags", "features", "cpu part", "cpu implementer")
    seen = [ln for ln in lines if ln.split(":", 1)[0].strip().lower() in keep]
    return "\n".join(dict.fromkeys(seen))  # per-core repeats once


def _uid() -> int:
    return os.getuid() if hasattr(os, "getuid") else -1


def _owner_problem(st: os.stat_result) -> str | None:
    if _uid() >= 0 and st.st_uid != _uid():
        return f"owned by uid {st.st_uid}, not by you (uid {_uid()})"
    if st.st_mode & 0o022:
        return f"writable by other users (mode {oct(stat.S_IMODE(st.st_mode))})"
    return None


def _file_problem(path: Path) -> str | None:
    """Why `path` may not be trusted as a cache file (None: it may), or 'missing'."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "missing"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    return _owner_problem(st)


def private_dir() -> tuple[Path, str]:
    """The native cache directory, 0700 and the current user's, and a note ('' if none).

    A directory owned by another user (or a symlink) is not used; a private directory in
    the temporary directory is used instead."""
    d = cache_root() / "native"
    d.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        d.mkdir(mode=0o700)
    st = os.lstat(d)
    why = "a symlink" if stat.S_ISLNK(st.st_mode) else None
    if why is None and _uid() >= 0 and st.st_uid != _uid():
        why = f"owned by uid {st.st_uid}, not by you (uid {_uid()})"
    if why is None:
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.chmod(d, 0o700)
        return d, ""
    alt = Path(tempfile.gettempdir()) / f"rt3lab-native-{_uid()}"
    with contextlib.suppress(FileExistsError):
        alt.mkdir(mode=0o700)
    st = os.lstat(alt)
    if not stat.S_ISDIR(st.st_mode) or _owner_problem(st) or stat.S_IMODE(st.st_mode) != 0o700:
        alt = Path(tempfile.mkdtemp(prefix=f"rt3lab-native-{_uid()}-"))  # 0700, ours
    return alt, f"{d} is {why}: built in {alt} instead"


def digest_of(fd: int) -> str:
    """SHA-256 of an open file's bytes, from its start."""
    h = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        h.update(chunk)
        offset += len(chunk)
    return h.hexdigest()


def _recorded(path: Path) -> tuple[str | None, str | None]:
    """(the digest recorded beside `path`, or None; why it cannot be trusted, or None)."""
    side = path.with_name(path.name + DIGEST_SUFFIX)
    problem = _file_problem(side)
    if problem is not None:
        return None, f"{side.name} {problem}"
    text = side.read_text(errors="replace").strip()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        return None, f"{side.name} does not hold a SHA-256"
    return text, None


#: Descriptors of the libraries loaded through /proc/self/fd (see ``_open_verified``).
_PINNED: list[int] = []


def _open_verified(path: Path) -> tuple[ctypes.CDLL | None, str | None]:
    """dlopen `path` if it and its digest may be trusted and agree; else (None, why)."""
    problem = _file_problem(path)
    if problem is not None:
        return None, None if problem == "missing" else f"{path.name} {problem}"
    want, why = _recorded(path)
    if want is None:
        return None, why
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        got = digest_of(fd)
        if got != want:
            os.close(fd)
            return None, f"{path.name}: SHA-256 {got[:12]}... is not the {want[:12]}... recorded"
        via = f"/proc/self/fd/{fd}"
        lib = ctypes.CDLL(via if os.path.exists(via) else str(path))
    except BaseException:
        os.close(fd)
        raise
    # The descriptor stays open for the life of the process: the dynamic loader knows a
    # library by the name it was opened under, and a reused /proc/self/fd/N would hand the
    # next library's caller this one.
    _PINNED.append(fd)
    return lib, None


def _compile(cc: str, flags: Sequence[str], source: Path, target: Path) -> None:
    """Compile into a temporary file beside `target`, record its digest, move both in."""
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        proc = subprocess.run(
            [cc, *flags, str(source), "-o", str(built)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            raise OSError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else cc)
        built.chmod(0o700)
        fd = os.open(built, os.O_RDONLY)
        try:
            digest = digest_of(fd)
        finally:
            os.close(fd)
        side = Path(tmp) / (target.name + DIGEST_SUFFIX)
        side.write_text(digest + "\n")
        side.chmod(0o600)
        # The library first: a reader between the two moves sees a mismatch and rebuilds.
        os.replace(built, target)
        os.replace(side, target.with_name(target.name + DIGEST_SUFFIX))


def library_path(source: Path, stem: str, cc: str, flags: Sequence[str]) -> tuple[Path, str]:
    """Where the library built from `source` with `cc` and `flags` is cached (and a note)."""
    h = hashlib.sha256()
    for part in (source.read_bytes(), compiler_version(cc).encode(), " ".join(flags).encode()):
        h.update(part)
    h.update(platform.machine().encode())
    h.update(host_isa().encode())
    d, note = private_dir()
    return d / f"{stem}-{h.hexdigest()[:16]}.so", note


def build(source: Path, stem: str, cc: str, flags: Sequence[str]) -> tuple[Path, str]:
    """The cached library's path, built (or rebuilt) unless a trusted one is there; the
    note ('' if none) says what was not trusted and rebuilt."""
    target, note = library_path(source, stem, cc, flags)
    problem = _file_problem(target)
    if problem is None:
        _, problem = _recorded(target)
        if problem is None:
            return target, note
    if problem != "missing":
        note = "; ".join(x for x in (note, f"{problem}: rebuilt") if x)
    _compile(cc, flags, source, target)
    return target, note


def load(source: Path, stem: str, cc: str, flags: Sequence[str]) -> tuple[ctypes.CDLL, Path, str]:
    """Build (or reuse), verify and dlopen the library compiled from `source`.

    Returns (library, path, note); the note ('' if none) says what was rebuilt and why.
    Raises OSError when the compiler fails."""
    path, note = build(source, stem, cc, flags)
    lib, why = _open_verified(path)
    if lib is None:  # changed since it was checked, or never trusted: build once more
        note = "; ".join(x for x in (note, f"{why or path.name + ' missing'}: rebuilt") if x)
        _compile(cc, flags, source, path)
        lib, why = _open_verified(path)
        if lib is None:
            raise OSError(f"{path}: cannot be verified after building it ({why})")
    return lib, path, note
