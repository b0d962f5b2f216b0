"""A trace as a figure: power over time as held steps, gaps shaded (matplotlib, imported
when called)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from power_meter.sample import Flag

if TYPE_CHECKING:
    import pandas as pd


def gap_spans(t: np.ndarray, flags: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) of every gap: from its marker row's time to the next row's time.

    >>> gap_spans(np.array([0.0, 1.0, 1.0, 5.0]), np.array([0, 0, int(Flag.GAP), 2]))
    [(1.0, 5.0)]
    """
    gap = np.flatnonzero((np.asarray(flags, dtype=np.int64) & int(Flag.GAP)) != 0)
    return [(float(t[i]), float(t[i + 1])) for i in gap if i + 1 < len(t)]


def trace_figure(df: pd.DataFrame, title: str = "") -> Any:
    """A matplotlib figure of power against seconds since the first row, gaps shaded grey.

    A sample's power covers the interval since the previous sample (the trace format), so
    each is drawn as a step held back to the previous sample's time (``steps-pre``): the
    area under the line is the energy ``meter summary`` reports. Rows whose interval is not
    counted (a gap, the first sample after one) are left undrawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from power_meter.trace import held_values

    t = df["t_host_s"].to_numpy(dtype=float)
    flags = df["flags"].to_numpy(dtype=np.int64)
    held = held_values(df["power_w"].to_numpy(dtype=float), flags)
    t0 = t[0] if t.size else 0.0
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.plot(t - t0, held, lw=0.8, color="C0", label="power", drawstyle="steps-pre")
    for i, (a, b) in enumerate(gap_spans(t, flags)):
        ax.axvspan(a - t0, b - t0, color="0.6", alpha=0.35, lw=0, label="gap" if i == 0 else None)
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("power (W)")
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def plot_trace(df: pd.DataFrame, out: str | Path, title: str = "") -> Path:
    """Write a PNG of ``trace_figure``."""
    import matplotlib.pyplot as plt

    from contracts.files import replacing

    fig = trace_figure(df, title)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with replacing(out) as tmp:  # written whole, then renamed: a link there is replaced
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)
    return out
