"""Trace files (CSV or Parquet): columns, reading (even after a crash), energy, summaries.

A trace has the columns `t_host_s, voltage_v, current_a, power_w, flags`. A gap is a row
flagged `Flag.GAP` with empty values; the first sample after it is flagged `AFTER_GAP`.
Each sample's power covers the interval since the previous sample, and no interval that
touches a gap is counted: gaps are never interpolated.

>>> import numpy as np
>>> t = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
>>> p = np.array([9.0, 2.0, np.nan, 4.0, 4.0])
>>> f = np.array([0, 0, Flag.GAP, Flag.AFTER_GAP, 0])
>>> integrate_energy(t, p, f)
(6.0, 2.0)
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from power_meter.sample import COLUMNS, Flag, MeterError


class TraceError(MeterError):
    """A trace file that cannot be read; names the file and what was expected."""


def counted(values: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Per row, whether its value counts over the interval since the previous row: not the
    first row, neither row a gap marker, not the first sample after a gap, a finite value.

    >>> counted(np.array([9.0, 2.0, np.nan, 4.0, 4.0]), np.array([0, 0, 8, 2, 0])).tolist()
    [False, True, False, False, True]
    """
    values = np.asarray(values, dtype=float)
    flags = np.asarray(flags, dtype=np.int64)
    gap = (flags & int(Flag.GAP)) != 0
    ok = np.zeros(values.shape, dtype=bool)
    ok[1:] = ~gap[1:] & ~gap[:-1] & ((flags[1:] & int(Flag.AFTER_GAP)) == 0)
    return ok & np.isfinite(values)


def held_values(values: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Each row's value where it counts over the interval since the previous row, NaN
    elsewhere: what a step drawn back to the previous row's time shows (``steps-pre``), and
    what an export holds over that interval."""
    values = np.asarray(values, dtype=float)
    return np.where(counted(values, flags), values, np.nan)


def integrate_energy(t: np.ndarray, p: np.ndarray, flags: np.ndarray) -> tuple[float, float]:
    """(energy J, covered seconds): sum of p_i (t_i - t_{i-1}) over intervals not at a gap."""
    t = np.asarray(t, dtype=float)
    if t.size < 2:
        return 0.0, 0.0
    p = np.asarray(p, dtype=float)
    dt = np.diff(t)
    ok = counted(p, flags)[1:]
    return float(np.sum(p[1:][ok] * dt[ok])), float(np.sum(dt[ok]))


def journal_path(out: str | Path) -> Path:
    """Where a Parquet recording keeps its CSV journal until it is finalised."""
    return Path(str(out) + ".journal.csv")


# A trace is read whole into memory; 2 GiB of CSV is about 50 M samples (8 minutes of a
# PPK2 at 100 kS/s). Anything larger is refused before it is read.
MAX_TRACE_BYTES = 2 << 30
MAX_FLAGS = int(sum(Flag))


def read_trace(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet trace; a CSV cut mid-line (a killed recorder) loses that line only.

    If a Parquet file was never finalised (the recorder was killed), its journal is read.
    Only a regular file of at most ``MAX_TRACE_BYTES`` is read (a FIFO or ``/dev/zero`` is
    refused before any byte is); binary content and flags that are not `Flag` bits are
    refused naming the line.
    """
    from power_meter.input_files import read_regular

    path = Path(path)
    if not path.exists() and journal_path(path).exists():
        path = journal_path(path)
    if not os.path.lexists(path):
        raise FileNotFoundError(f"{path}: no such trace file")
    if path.is_dir():
        raise TraceError(f"{path}: is a directory, expected a trace file")
    data = read_regular(path, MAX_TRACE_BYTES, "trace")
    if path.suffix == ".parquet":
        try:
            df = pd.read_parquet(io.BytesIO(data))
        except Exception as exc:
            raise TraceError(f"{path}: not a readable Parquet trace ({exc})") from None
        unit, first = "row", 1
    else:
        df, unit, first = _read_csv(path, data), "line", 2  # the header is line 1
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise TraceError(f"{path}: missing column(s) {', '.join(missing)}")
    df["flags"] = _flags(df["flags"].to_numpy(dtype=float), path, unit, first)
    return df[list(COLUMNS)]


def _read_csv(path: Path, data: bytes) -> pd.DataFrame:
    """The table of a CSV trace's bytes, up to its last whole line."""
    head = data[:4096]
    try:
        head.decode("utf-8")
        binary = b"\0" in data
    except UnicodeDecodeError as exc:
        binary = exc.start < len(head) - 4  # not a character cut at the end of the head
    if binary:
        first = " ".join(f"{b:02x}" for b in data[:8])
        raise TraceError(
            f"{path}: binary content (first bytes {first}), expected a CSV trace "
            f"with the header {','.join(COLUMNS)}"
        )
    cut = data.rfind(b"\n")
    data = data[: cut + 1] if cut >= 0 else b""
    if not data.startswith(",".join(COLUMNS).encode()):
        raise TraceError(f"{path}: expected a header line {','.join(COLUMNS)}")
    try:
        return pd.read_csv(io.BytesIO(data), dtype=dict.fromkeys(COLUMNS, float))
    except ValueError as exc:  # a cell that is not a number, a row of the wrong width
        raise TraceError(f"{path}: {_bad_csv_cell(data) or exc}") from None


def _flags(values: np.ndarray, path: Path, unit: str, first: int) -> np.ndarray:
    """The flags column as integers (empty: 0); a value that is not a whole number of
    `Flag` bits is refused naming its ``unit`` (line, row; the first is ``first``)."""
    values = np.where(np.isnan(values), 0.0, values)
    bad = np.flatnonzero((values < 0) | (values > MAX_FLAGS) | (values != np.floor(values)))
    if bad.size:
        i = int(bad[0])
        raise TraceError(
            f"{path}: {unit} {i + first}: flags is {values[i]:g}, expected a whole "
            f"number from 0 to {MAX_FLAGS} (the sum of its Flag bits)"
        )
    return values.astype(np.int64)


def _bad_csv_cell(data: bytes) -> str | None:
    """'line N: column C is 'x', expected a number' for the first bad cell, if any."""
    for n, raw in enumerate(data.decode("utf-8", "replace").splitlines()[1:], start=2):
        cells = raw.split(",")
        if len(cells) != len(COLUMNS):
            return f"line {n}: {len(cells)} fields, expected {len(COLUMNS)}"
        for c, v in zip(COLUMNS, cells, strict=True):
            try:
                float(v) if v.strip() else None
            except ValueError:
                return f"line {n}: {c} is {v[:20]!r}, expected a number"
    return None


def check_trace(df: pd.DataFrame, path: str | Path) -> None:
    """Refuse a trace whose time goes backwards or whose samples are not finite numbers.

    Gap rows (flag GAP) carry no values; power-only rows (POWER_ONLY) no voltage or
    current. Lines are counted as in the CSV file (header = 1).

    >>> df = pd.DataFrame({"t_host_s": [0.0, 2.0, 1.0], "voltage_v": [5.0] * 3,
    ...                    "current_a": [0.2] * 3, "power_w": [1.0] * 3, "flags": [0] * 3})
    >>> check_trace(df, "t.csv")
    Traceback (most recent call last):
    ...
    power_meter.trace.TraceError: t.csv: line 4: t_host_s 1.0 is before the previous row's 2.0
    """
    t = df["t_host_s"].to_numpy(dtype=float)
    flags = df["flags"].to_numpy(dtype=np.int64)
    gap = (flags & int(Flag.GAP)) != 0
    unmeasured = gap | ((flags & int(Flag.POWER_ONLY)) != 0)  # no voltage or current
    for c in COLUMNS[:-1]:
        v = df[c].to_numpy(dtype=float)
        empty = {"t_host_s": False, "power_w": gap}.get(c, unmeasured)
        bad = np.flatnonzero(~np.isfinite(v) & ~empty)
        if bad.size:
            i = int(bad[0])
            raise TraceError(f"{path}: line {i + 2}: {c} is {v[i]}, expected a finite number")
    back = np.flatnonzero(np.diff(t) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise TraceError(
            f"{path}: line {i + 2}: t_host_s {t[i]} is before the previous row's {t[i - 1]}"
        )


@dataclass
class TraceSummary:
    """What a trace contains."""

    samples: int
    gaps: int
    gap_s: float
    samples_after_drop: int
    duration_s: float
    energy_j: float
    mean_power_w: float
    peak_power_w: float

    def as_dict(self) -> dict[str, float | int]:
        """Plain dict (for JSON)."""
        return asdict(self)


def summarize_trace(df: pd.DataFrame) -> TraceSummary:
    """Samples, gaps, energy, mean and peak power of a trace table."""
    flags = df["flags"].to_numpy(dtype=np.int64)
    t = df["t_host_s"].to_numpy(dtype=float)
    p = df["power_w"].to_numpy(dtype=float)
    gap = (flags & int(Flag.GAP)) != 0
    energy, covered = integrate_energy(t, p, flags)
    gap_idx = np.flatnonzero(gap)
    gap_s = sum(float(t[i + 1] - t[i]) for i in gap_idx if i + 1 < t.size)
    real = ~gap & np.isfinite(p)
    return TraceSummary(
        samples=int(real.sum()),
        gaps=int(gap.sum()),
        gap_s=gap_s,
        samples_after_drop=int(((flags & int(Flag.DROP)) != 0).sum()),
        duration_s=float(t[-1] - t[0]) if t.size else 0.0,
        energy_j=energy,
        mean_power_w=energy / covered if covered > 0 else math.nan,
        peak_power_w=float(p[real].max()) if real.any() else math.nan,
    )
