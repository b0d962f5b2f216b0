"""A trace as a sigrok session file (``.sr``, srzip v2) that PulseView and sigrok-cli open.

A session file is a ZIP holding ``version`` (the text ``2``), ``metadata`` (INI: a
``[global]`` section and a ``[device 1]`` section with the sample rate, the number of
analog channels and their names ``analog1``, ``analog2``...) and each analog channel's
samples as little-endian 32-bit floats in ``analog-1-<channel>-<chunk>`` files, chunks
numbered from 1 (sigrok's "File format:sigrok/v2").

sigrok samples at one fixed rate; a trace's samples come at the meter's (a UM34C's 0.5 s
polls, jittered by the host). The export resamples onto a grid of ``rate_hz``: sample
``k`` covers ``[k / rate, (k + 1) / rate)`` from the first row, and holds the value of
the trace row whose interval (since the row before it, as the trace format says) holds
the middle of that span; NaN in a gap. On a trace sampled at the grid's rate the grid's
values are the trace's own, and summing power over the grid gives ``meter summary``'s
energy.

>>> import pandas as pd
>>> df = pd.DataFrame({"t_host_s": [0.0, 0.5, 1.0, 1.5], "voltage_v": [5.0] * 4,
...                    "current_a": [0.1, 0.2, 0.3, 0.4], "power_w": [0.5, 1.0, 1.5, 2.0],
...                    "flags": [0] * 4})
>>> grid = sigrok_grid(df, 2)
>>> grid["power_W"].tolist()
[1.0, 1.5, 2.0]
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from power_meter.sample import MeterError
from power_meter.trace import held_values

if TYPE_CHECKING:
    import pandas as pd

# Trace column -> sigrok channel name (sigrok v2 stores no unit: the name carries it).
CHANNELS: dict[str, str] = {
    "power_w": "power_W",
    "voltage_v": "voltage_V",
    "current_a": "current_A",
}
CHUNK_SAMPLES = 1 << 20  # samples per analog-1-N-M file (libsigrok writes several too)
FORMAT_VERSION = 2


class SigrokExportError(MeterError):
    """A trace that cannot be exported (too few rows, a bad rate); names what and why."""


@dataclass(frozen=True)
class SigrokExport:
    """What ``write_sigrok`` wrote: the file, its rate, samples per channel, channels."""

    path: Path
    rate_hz: int
    samples: int
    channels: tuple[str, ...]


def default_rate(t: np.ndarray) -> int:
    """The grid rate for sample times ``t``: the median sample rate rounded up, at least
    1 Hz (sigrok's rates are whole hertz).

    >>> default_rate(np.array([0.0, 0.5, 1.01, 1.5])), default_rate(np.array([0.0, 3.0, 6.0]))
    (2, 1)
    """
    dt = np.diff(np.asarray(t, dtype=float))
    dt = dt[dt > 0]
    if dt.size == 0:
        return 1
    return max(1, math.ceil(1.0 / float(np.median(dt)) - 1e-9))


def sigrok_grid(df: pd.DataFrame, rate_hz: int) -> dict[str, np.ndarray]:
    """Each measured channel resampled onto the grid (float32), by sigrok channel name;
    voltage and current are left out when the trace never measured them (on-board
    sensors)."""
    t = df["t_host_s"].to_numpy(dtype=float)
    flags = df["flags"].to_numpy(dtype=np.int64)
    n = math.floor((t[-1] - t[0]) * rate_hz + 1e-9) if t.size >= 2 else 0
    mid = t[0] + (np.arange(n) + 0.5) / rate_hz
    row = np.searchsorted(t, mid, side="left")  # the row whose interval holds each middle
    inside = (row >= 1) & (row < t.size)
    out = {}
    for column, name in CHANNELS.items():
        values = df[column].to_numpy(dtype=float)
        if column != "power_w" and not np.isfinite(values).any():
            continue
        held = held_values(values, flags)
        out[name] = np.where(inside, held[np.clip(row, 0, t.size - 1)], np.nan).astype("<f4")
    return out


def _metadata(rate_hz: int, channels: list[str]) -> str:
    head = ["# written by rt3lab meter export", "[global]", "", "[device 1]"]
    lines = [*head, f"samplerate={rate_hz} Hz"]
    lines.append(f"total analog={len(channels)}")
    lines += [f"analog{i}={name}" for i, name in enumerate(channels, 1)]
    return "\n".join(lines) + "\n"


def write_sigrok(df: pd.DataFrame, out: str | Path, rate_hz: int | None = None) -> SigrokExport:
    """Write trace ``df`` to ``out`` as a sigrok session file (see the module docstring);
    ``rate_hz`` None picks ``default_rate``. Raises ``SigrokExportError`` for a trace of
    under two rows or a rate that is not a positive whole number."""
    t = df["t_host_s"].to_numpy(dtype=float)
    if t.size < 2:
        raise SigrokExportError(f"{out}: a trace of {t.size} row(s): nothing to export")
    rate = default_rate(t) if rate_hz is None else rate_hz
    if isinstance(rate, bool) or not isinstance(rate, int) or rate < 1:
        raise SigrokExportError(f"rate: {rate_hz!r} is not a positive whole number of Hz")
    grid = sigrok_grid(df, rate)
    names = list(grid)
    path = Path(out)
    tmp = path.with_name(f".{path.name}.partial")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("version", f"{FORMAT_VERSION}")
        zf.writestr("metadata", _metadata(rate, names))
        # Chunk by chunk, each channel's in turn: the order a capture writes them, and the
        # order sigrok reads the entries in (channel by channel misaligns its CSV output).
        for chunk, start in enumerate(range(0, max(len(grid["power_W"]), 1), CHUNK_SAMPLES), 1):
            for ch, name in enumerate(names, 1):
                part = grid[name][start : start + CHUNK_SAMPLES]
                zf.writestr(f"analog-1-{ch}-{chunk}", part.tobytes())
    tmp.replace(path)
    return SigrokExport(path, rate, len(grid["power_W"]), tuple(names))
