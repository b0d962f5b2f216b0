"""A meter emulator on a pseudo-terminal: real bytes, emulated time, injected faults.

The emulator owns a pty pair and exposes the slave under a stable path (a symlink), so a
driver opens it exactly like `/dev/rfcomm0`. A disconnect closes the pty and removes the
link; the reappearance creates a new pty behind the same path, as a re-plugged meter does.
"""

from __future__ import annotations

import errno
import math
import os
import random
import select
import tempfile
import threading
import time
import tty
from dataclasses import dataclass
from pathlib import Path

from power_meter.sample import MeterError
from power_meter.waveform import Waveform

FAULT_KINDS = ("garbage", "truncate", "bad_checksum", "stall", "disconnect", "drop")
REPLY_FAULTS = ("garbage", "truncate", "bad_checksum")  # a polled meter's reply carries one
MAX_FAULT_S = 86_400.0  # a stall or disconnect longer than a day is a typo
MAX_FAULT_N = 10_000_000  # 100 s of PPK2 samples, or that many garbage bytes


@dataclass(frozen=True)
class Fault:
    """A fault to inject at emulated time `at_s` (or at once if None).

    `duration_s` (emulated seconds) for stall and disconnect; `n` bytes of garbage or
    samples to drop (a polled meter, UM or TC66C, leaves `n` polls unanswered: the reading
    is lost on the link, and the driver counts timeouts).

    >>> Fault("stall", -1.0, -5.0)
    Traceback (most recent call last):
    ...
    power_meter.sample.MeterError: fault stall@-1.0: expected a time >= 0 s
    """

    kind: str
    at_s: float | None = None
    duration_s: float = 1.0
    n: int = 17

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise MeterError(f"fault {self.kind!r}: expected one of {', '.join(FAULT_KINDS)}")
        name = f"fault {self.kind}@{self.at_s}"
        if self.at_s is not None and not (math.isfinite(self.at_s) and self.at_s >= 0):
            raise MeterError(f"{name}: expected a time >= 0 s")
        if not (math.isfinite(self.duration_s) and 0 < self.duration_s <= MAX_FAULT_S):
            raise MeterError(
                f"{name}: duration {self.duration_s}: expected 0 < s <= {MAX_FAULT_S:g}"
            )
        if not 1 <= self.n <= MAX_FAULT_N:
            raise MeterError(f"{name}: count {self.n}: expected 1 to {MAX_FAULT_N}")

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """`KIND@T[:X]`: X is the duration (stall, disconnect) or the count (garbage, drop).

        >>> Fault.parse("disconnect@10:2.5")
        Fault(kind='disconnect', at_s=10.0, duration_s=2.5, n=17)
        """
        kind, _, rest = spec.partition("@")
        at, _, x = rest.partition(":")
        if kind not in FAULT_KINDS:
            raise MeterError(f"fault {kind!r}: expected one of {', '.join(FAULT_KINDS)}")
        try:
            at_s = float(at) if at else None
            count = int(x) if x and kind in ("garbage", "drop") else None
            duration = float(x) if x and count is None else None
        except ValueError:
            raise MeterError(f"fault {spec!r}: expected KIND@SECONDS[:DURATION|COUNT]") from None
        try:
            if count is not None:
                return cls(kind, at_s, n=count)
            if duration is not None:
                return cls(kind, at_s, duration_s=duration)
            return cls(kind, at_s)
        except MeterError as exc:
            raise MeterError(f"fault {spec!r}: {str(exc).split(': ', 1)[1]}") from None


def _is_pty_link(path: str | Path) -> bool:
    """A symlink to a pseudo-terminal device, as an emulator leaves behind when killed."""
    if not os.path.islink(path):
        return False
    target = os.readlink(path)
    return target.startswith(("/dev/pts/", "/dev/ttys", "/dev/pty"))


def check_link(link: Path) -> None:
    """Refuse a `--link` path that exists and is not a (stale) emulator port link.

    >>> check_link(Path("/no/such/dir/tty"))
    Traceback (most recent call last):
    ...
    power_meter.sample.MeterError: --link /no/such/dir/tty: directory /no/such/dir does not exist
    """
    if not link.parent.is_dir():
        raise MeterError(f"--link {link}: directory {link.parent} does not exist")
    if os.path.lexists(link) and not _is_pty_link(link):
        raise MeterError(f"--link {link}: exists and is not an emulator's port link; not replaced")


class PtyEmulator:
    """Base class: the pty, the thread, the emulated clock and the fault machinery.

    Subclasses implement `on_command(data, now)` and optionally `on_tick(now)`, and call
    `send(data)`. `accel` makes emulated time run that many times faster than real time.
    """

    tick_s = 0.002
    out_cap = 1 << 20  # bytes queued towards the host before a meter would overflow

    def __init__(
        self,
        waveform: Waveform,
        accel: float = 1.0,
        link: str | Path | None = None,
        faults: list[Fault] | None = None,
        seed: int = 0,
    ) -> None:
        """Prepare (call `start()` to create the port)."""
        if not (math.isfinite(accel) and accel > 0):
            raise MeterError(f"accel {accel}: expected a finite number > 0")
        self.waveform = waveform
        self.accel = accel
        self._tmp = None
        if link is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="rt3lab-meter-")
            link = Path(self._tmp.name) / f"tty{type(self).__name__}"
        else:
            check_link(Path(link))
        self.port = str(link)
        self._target: str | None = None
        self._schedule = sorted((f for f in faults or []), key=lambda f: f.at_s or 0.0)
        self._pending: list[Fault] = []
        self._stall_until = -1.0
        self._lock = threading.Lock()
        self._rand = random.Random(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master = self._slave = -1
        self._out = bytearray()
        self._t_real0 = 0.0
        self.fault_log: list[tuple[float, str]] = []
        self.connected = threading.Event()
        self._drop_polls = 0
        self.polls_dropped = 0

    # --- time -------------------------------------------------------------------------
    def clock(self) -> float:
        """Emulated seconds since `start()` (use as a driver's clock)."""
        return (time.monotonic() - self._t_real0) * self.accel

    # --- lifecycle --------------------------------------------------------------------
    def start(self) -> PtyEmulator:
        """Create the port and start answering."""
        self._t_real0 = time.monotonic()
        self._open_pty()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and remove the port."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._close_pty()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> PtyEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def inject(self, fault: Fault) -> None:
        """Inject a fault now (or at `fault.at_s`)."""
        with self._lock:
            self._schedule.append(fault)
            self._schedule.sort(key=lambda f: f.at_s or 0.0)

    # --- for subclasses ---------------------------------------------------------------
    def on_command(self, data: bytes, now: float) -> None:
        """Handle bytes the host wrote."""

    def on_tick(self, now: float) -> None:
        """Called every `tick_s` (streaming meters produce data here)."""

    def on_reconnect(self) -> None:
        """Reset device state after a disconnect (the meter lost power)."""

    def send(self, data: bytes, garbage: bool = True) -> None:
        """Queue bytes towards the host, with any pending garbage fault in front (unless
        `garbage` is False: the caller took its fault itself)."""
        g = self.take("garbage") if garbage else None
        if g is not None:
            data = self.garbage(g.n) + data
        self._out += data

    def garbage(self, n: int) -> bytes:
        """`n` random bytes (seeded)."""
        return bytes(self._rand.getrandbits(8) for _ in range(n))

    def take_first(self, kinds: tuple[str, ...]) -> Fault | None:
        """Consume the earliest pending one-shot fault of any of `kinds`: a reply carries one
        fault, in the order they were scheduled, however late the emulator got to them."""
        for f in self._pending:
            if f.kind in kinds:
                return self.take(f.kind)
        return None

    @property
    def queued(self) -> int:
        """Bytes written by the meter but not yet taken by the pty."""
        return len(self._out)

    def take(self, kind: str) -> Fault | None:
        """Consume a pending one-shot fault of `kind`, logging it."""
        for k, f in enumerate(self._pending):
            if f.kind == kind:
                del self._pending[k]
                self.fault_log.append((self.clock(), kind))
                return f
        return None

    def unanswered(self) -> bool:
        """For polled meters: True if this poll's answer is lost to a pending drop fault."""
        f = self.take("drop")
        if f is not None:
            self._drop_polls += f.n
        if self._drop_polls:
            self._drop_polls -= 1
            self.polls_dropped += 1
            return True
        return False

    def stalled(self, now: float) -> bool:
        """True while a stall fault is active."""
        return now < self._stall_until

    # --- internals --------------------------------------------------------------------
    def _open_pty(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        tmp = f"{self.port}.{os.getpid()}.new"
        if os.path.islink(tmp):
            os.unlink(tmp)
        self._target = os.ttyname(self._slave)
        os.symlink(self._target, tmp)
        if os.path.lexists(self.port) and not _is_pty_link(self.port):
            os.unlink(tmp)  # something else took the name while we were disconnected
            raise MeterError(f"--link {self.port}: now exists and is not a port link; kept")
        os.replace(tmp, self.port)
        self._out = bytearray()
        self.connected.set()

    def _close_pty(self) -> None:
        self.connected.clear()
        # Remove our own link only: never a file someone put there.
        if os.path.islink(self.port) and os.readlink(self.port) == self._target:
            os.unlink(self.port)
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1

    def _due_faults(self, now: float) -> list[Fault]:
        with self._lock:
            due = [f for f in self._schedule if f.at_s is None or f.at_s <= now]
            self._schedule = [f for f in self._schedule if f not in due]
        return due

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self.clock()
            for f in self._due_faults(now):
                if f.kind == "stall":
                    self._stall_until = now + f.duration_s
                    self.fault_log.append((now, "stall"))
                elif f.kind == "disconnect":
                    self.fault_log.append((now, "disconnect"))
                    self._close_pty()
                    self._stop.wait(f.duration_s / self.accel)
                    self._pending.clear()
                    self.on_reconnect()
                    self._open_pty()
                    now = self.clock()
                else:
                    self._pending.append(f)
            r, _, _ = select.select([self._master], [], [], self.tick_s)
            if r:
                try:
                    data = os.read(self._master, 4096)
                except OSError as exc:  # EIO while nobody holds the slave open
                    if exc.errno != errno.EIO:
                        raise
                    data = b""
                if data:
                    self.on_command(data, self.clock())
            self.on_tick(self.clock())
            self._flush()

    def _flush(self) -> None:
        while self._out:
            try:
                n = os.write(self._master, self._out[:65536])
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EAGAIN):
                    return
                raise
            del self._out[:n]
