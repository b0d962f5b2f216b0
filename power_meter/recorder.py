"""The recorder: reads a meter, appends fsync'd batches, survives disconnects, sums up.

Batches are written at least every `flush_interval_s` (default 1 s) with flush + fsync, so a
crash, SIGKILL or Ctrl-C loses at most the last second. A disconnect is retried with
exponential backoff; the time without samples is written as a gap row, never filled in.
Parquet output is journalled as CSV during the capture and converted at the end, so a
killed recorder leaves a readable journal instead of a Parquet file without its footer.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from power_meter.sample import COLUMNS, Flag, Meter, MeterDisconnected, MeterError, SampleBatch
from power_meter.trace import journal_path


class TraceWriter:
    """Appends batches to a CSV file; `flush()` hands them to a writer thread that writes
    and fsyncs, so a slow disk never stalls the reads (a PPK2 overflows in 0.1 s).

    With `final`, the rows go to `path` (a new file) and it is renamed to `final` once the
    first rows are on disk: a run that records nothing never touches `final`, and with
    `replace=False` an existing `final` is never replaced. With `append`, `path` is an
    existing trace (or a new file) and the rows are added after its own.
    """

    def __init__(
        self,
        path: str | Path,
        final: str | Path | None = None,
        replace: bool = False,
        append: bool = False,
    ) -> None:
        """Create `path` (it must not exist, unless `append`) and write the header."""
        self.path = Path(path)
        self.final = None if final is None else Path(final)
        self.replace = replace
        header = (",".join(COLUMNS) + "\n").encode()
        if append and self.path.exists():
            self._fd = os.open(self.path, os.O_RDWR)
            _check_appendable(self.path, self._fd, header)
            os.lseek(self._fd, 0, os.SEEK_END)
        else:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
            try:
                self._fd = os.open(self.path, flags, 0o644)
            except FileNotFoundError:
                raise MeterError(
                    f"{self.path}: directory {self.path.parent} does not exist"
                ) from None
            except FileExistsError:
                raise MeterError(f"{self.path}: already exists; not replaced") from None
            os.write(self._fd, header)
            os.fsync(self._fd)
        self._pending: list[SampleBatch] = []
        self._queue: queue.Queue[SampleBatch | None] = queue.Queue()
        self.rows = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="TraceWriter", daemon=True)
        self._thread.start()

    def append(self, batch: SampleBatch) -> None:
        """Queue a batch for the next flush."""
        if self.error is not None:
            raise OSError(f"{self.path}: writing failed: {self.error}")
        if len(batch):
            self._pending.append(batch)

    def flush(self) -> None:
        """Hand the queued rows to the writer thread (one write and one fsync)."""
        if self._pending:
            self._queue.put(SampleBatch.concat(self._pending))
            self._pending = []

    def _drain(self) -> None:
        while (b := self._queue.get()) is not None:
            try:
                self._write(b)
                if self.final is not None:
                    self._publish()
            except OSError as exc:
                self.error = exc

    def _publish(self) -> None:
        """Move the new file to its final name (the first rows are fsync'd by now)."""
        final, self.final = self.final, None
        assert final is not None
        if self.replace:
            os.replace(self.path, final)
        else:
            os.link(self.path, final)  # FileExistsError if one appeared meanwhile
            os.unlink(self.path)
        self.path = final
        _fsync_dir(final.parent)

    def _write(self, b: SampleBatch) -> None:
        table = pa.table({c: getattr(b, c) for c in COLUMNS})
        sink = io.BytesIO()
        pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False))
        view = memoryview(sink.getvalue())
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        os.fsync(self._fd)
        self.rows += len(b)

    def close(self) -> None:
        """Flush, wait for the writer thread, close; a new file that got no rows is removed."""
        if self._fd >= 0:
            self.flush()
            self._queue.put(None)
            self._thread.join()
            os.close(self._fd)
            self._fd = -1
            if self.final is not None and self.rows == 0:
                self.path.unlink(missing_ok=True)
            if self.error is not None:
                raise OSError(f"{self.path}: writing failed: {self.error}")


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_appendable(path: Path, fd: int, header: bytes) -> None:
    """An existing trace to append to: our header; a line cut by a crash is cut off."""
    size = os.fstat(fd).st_size
    if size == 0:
        os.write(fd, header)
        return
    head = os.pread(fd, len(header), 0)
    if head != header:
        os.close(fd)
        raise MeterError(f"{path}: cannot append: expected a trace starting {header.decode()!r}")
    tail = os.pread(fd, 1, size - 1)
    if tail != b"\n":  # the unfinished line of a killed recorder (readers skip it too)
        back = min(size, 1 << 16)
        chunk = os.pread(fd, back, size - back)
        os.ftruncate(fd, size - back + chunk.rfind(b"\n") + 1)


def last_time(path: Path) -> float | None:
    """The last sample time in an existing CSV trace (None if it has no rows)."""
    from power_meter.trace import read_trace

    t = read_trace(path)["t_host_s"].to_numpy(dtype=float)
    t = t[np.isfinite(t)]
    return float(t[-1]) if t.size else None


@dataclass
class Gap:
    """A stretch without samples: from the last sample before to the first after."""

    start_s: float
    end_s: float | None
    reason: str


@dataclass
class RecordingSummary:
    """The end-of-run report."""

    out: str
    driver: str
    samples: int = 0
    duration_s: float = 0.0
    energy_j: float = 0.0
    mean_power_w: float = math.nan
    peak_power_w: float = math.nan
    drops: int = 0
    drops_by_time: int = 0
    repeats: int = 0
    bad_frames: int = 0
    garbage_bytes: int = 0
    timeouts: int = 0
    reconnects: int = 0
    gaps: list[Gap] = field(default_factory=list)

    @property
    def gap_s(self) -> float:
        """Total time in gaps (closed ones)."""
        return sum(g.end_s - g.start_s for g in self.gaps if g.end_s is not None)

    def as_dict(self) -> dict:
        """Plain dict (for JSON); NaN becomes None."""
        d = asdict(self)
        d["gap_count"] = len(self.gaps)
        d["gap_s"] = self.gap_s
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


class _Integrator:
    """Running energy over samples, never across a gap."""

    def __init__(self) -> None:
        self.energy = 0.0
        self.covered = 0.0
        self.peak = -math.inf
        self.last_t: float | None = None

    def add(self, b: SampleBatch) -> None:
        t, p = b.t_host_s, b.power_w
        after_gap = (b.flags & int(Flag.AFTER_GAP)) != 0
        prev = np.concatenate([[np.nan if self.last_t is None else self.last_t], t[:-1]])
        dt = t - prev
        ok = np.isfinite(dt) & ~after_gap & np.isfinite(p)
        self.energy += float(np.sum(p[ok] * dt[ok]))
        self.covered += float(np.sum(dt[ok]))
        if len(p):
            self.peak = max(self.peak, float(np.nanmax(p)))
        self.last_t = float(t[-1])


class Recorder:
    """Records one meter to a file until a duration passes or `stop` is set."""

    def __init__(
        self,
        meter: Meter,
        out: str | Path,
        driver: str = "",
        flush_interval_s: float = 1.0,
        stall_after_s: float | None = None,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 2.0,
        on_batch: Callable[[SampleBatch], None] | None = None,
        append: bool = False,
        overwrite: bool = False,
    ) -> None:
        """`stall_after_s` (meter clock): silence longer than this is a gap (default 3 periods).

        An existing `out` is refused unless `append` (CSV: rows are added after a gap row)
        or `overwrite` (replaced once the first samples are on disk, never before).
        """
        out = Path(out)
        if out.suffix not in (".csv", ".parquet"):
            raise MeterError(f"{out}: expected a .csv or .parquet output file")
        if not out.parent.is_dir():
            raise MeterError(f"{out}: directory {out.parent} does not exist")
        if append and overwrite:
            raise MeterError(f"{out}: --append and --overwrite exclude each other")
        if append and out.suffix != ".csv":
            raise MeterError(f"{out}: --append works on .csv traces only")
        journal = journal_path(out)
        for existing in (out, journal) if out.suffix == ".parquet" else (out,):
            if os.path.lexists(existing) and not (append or overwrite):
                raise MeterError(
                    f"{existing}: already exists; pass --append to add to it or --overwrite "
                    "to replace it once new samples arrive"
                )
        if out.is_dir():
            raise MeterError(f"{out}: is a directory, expected a trace file")
        self.append = append
        self.overwrite = overwrite
        self.meter = meter
        self.out = out
        self.flush_interval_s = flush_interval_s
        self.stall_after_s = stall_after_s or max(3 * meter.update_period_s, 0.05)
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.on_batch = on_batch
        self.summary = RecordingSummary(str(out), driver)
        self._journal = journal if out.suffix == ".parquet" else out
        self._gap: Gap | None = None
        if append and out.exists():
            last = last_time(out)
            if last is not None:  # never integrate across the time between two recordings
                self._gap = Gap(last, None, "append")
        self.connected_once = False
        self.last_open_error: str | None = None

    def run(
        self, duration_s: float | None = None, stop: threading.Event | None = None
    ) -> RecordingSummary:
        """Record; returns the summary (also written next to the output as .summary.json)."""
        stop = stop or threading.Event()
        end = math.inf if duration_s is None else time.monotonic() + duration_s
        if self.append:
            writer = TraceWriter(self._journal, append=True)
        else:
            tmp = self.out.with_name(f".{self.out.name}.{os.getpid()}.partial.csv")
            tmp.unlink(missing_ok=True)
            writer = TraceWriter(tmp, final=self._journal, replace=self.overwrite)
        integ = _Integrator()
        first_t: float | None = None
        connected = self._connect(stop, end, initial=True)
        last_flush = time.monotonic()
        try:
            while not stop.is_set() and time.monotonic() < end:
                if not connected:
                    connected = self._connect(stop, end)
                    continue
                try:
                    b = self.meter.read_batch()
                except MeterDisconnected:
                    self._open_gap(integ.last_t, "disconnect")
                    self._safe_close()
                    connected = False
                    continue
                if len(b):
                    self._mark_gaps(b, integ.last_t, writer)
                    first_t = b.t_host_s[0] if first_t is None else first_t
                    integ.add(b)
                    writer.append(b)
                    if self.on_batch is not None:
                        self.on_batch(b)
                    self.summary.samples += len(b)
                if time.monotonic() - last_flush >= self.flush_interval_s:
                    writer.flush()
                    last_flush = time.monotonic()
        finally:
            writer.close()
            self._safe_close()
        s = self.summary
        for k, v in self.meter.stats.as_dict().items():
            if hasattr(s, k) and k != "frames":
                setattr(s, k, v)
        s.energy_j = integ.energy
        s.mean_power_w = integ.energy / integ.covered if integ.covered > 0 else math.nan
        s.peak_power_w = integ.peak if integ.peak > -math.inf else math.nan
        s.duration_s = float(integ.last_t - first_t) if first_t is not None else 0.0
        if writer.rows == 0:  # nothing recorded: nothing on disk was touched
            return s
        if self._journal != self.out:
            tmp = self.out.with_name(f".{self.out.name}.{os.getpid()}.partial")
            pq.write_table(pacsv.read_csv(self._journal), tmp)
            os.replace(tmp, self.out)  # `out` was refused above unless --overwrite
            self._journal.unlink()
        Path(str(self.out) + ".summary.json").write_text(json.dumps(s.as_dict(), indent=1))
        return s

    def _connect(self, stop: threading.Event, end: float, initial: bool = False) -> bool:
        delay = self.backoff_initial_s
        while not stop.is_set() and time.monotonic() < end:
            try:
                self.meter.open()
                if not initial:
                    self.summary.reconnects += 1
                self.connected_once = True
                return True
            except MeterDisconnected as exc:
                self.last_open_error = str(exc)
                self._safe_close()
                stop.wait(min(delay, max(end - time.monotonic(), 0)))
                delay = min(delay * 2, self.backoff_max_s)
        return False

    def _safe_close(self) -> None:
        with contextlib.suppress(OSError):
            self.meter.close()

    def _open_gap(self, last_t: float | None, reason: str) -> None:
        if self._gap is None and last_t is not None:
            self._gap = Gap(last_t, None, reason)

    def _mark_gaps(self, b: SampleBatch, last_t: float | None, writer: TraceWriter) -> None:
        if self._gap is None and last_t is not None:
            silent = b.t_host_s[0] - last_t
            if silent > self.stall_after_s or b.flags[0] & int(Flag.AFTER_GAP):
                self._gap = Gap(last_t, None, "stall")
        if self._gap is None:
            return
        self._gap.end_s = float(b.t_host_s[0])
        self.summary.gaps.append(self._gap)
        nan = np.array([np.nan])
        row = SampleBatch(np.array([self._gap.start_s]), nan, nan, nan, np.array([int(Flag.GAP)]))
        writer.append(row)
        b.flags[0] |= int(Flag.AFTER_GAP)
        self._gap = None
