"""Figures of what went into the simulation: each pattern set's latency against the
deadline of each level, and a power meter's trace with its energy windows."""

from __future__ import annotations

from typing import Any

import pandas as pd

from reports.axes import place_labels, plain_ticks, pyplot
from reports.plots import Drawn
from reports.provenance import profile_kind
from reports.run import RunData

LATENCY = "Latency against the deadlines"
METER = "Power meter"


def _variant_latencies(profile: dict[str, Any]) -> list[tuple[str, int, float, str | None]]:
    """(variant, kHz, ms, provenance kind) from a raw profile's latency tables or model."""
    rows: list[tuple[str, int, float, str | None]] = []
    levels = []
    for c in profile.get("clusters") or []:
        if c.get("name") == profile.get("inference_cluster"):
            levels = list(c.get("levels_khz") or [])
    model = profile.get("latency_model") or {}
    for v in profile.get("variants") or []:
        table = {int(row["freq_khz"]): row for row in v.get("latency") or []}
        for khz in levels or sorted(table):
            if khz in table:
                row = table[khz]
                kind = profile_kind(profile, row.get("provenance"))
                rows.append((v["name"], khz, float(row["latency_ms"]), kind))
            elif model.get("kind", "op-count") == "op-count" and v.get("nonzero_mults") is not None:
                base = (
                    v["nonzero_mults"] / 1e4 * model["ms_per_1e4_mults"]
                    + (v.get("nonzero_adds") or 0) / 1e4 * model["ms_per_1e4_adds"]
                )
                ms = base * model["reference_ghz"] / (khz / 1e6)
                rows.append((v["name"], khz, ms, "modelled"))
    return rows


def draw_latency_vs_deadline(run: RunData) -> Drawn | None:
    """Latency of each pattern set at each level, against the deadline of that level."""
    if run.profile is None:
        return None
    rows = _variant_latencies(run.profile)
    if not rows:
        return None
    df = pd.DataFrame(rows, columns=["variant", "khz", "ms", "kind"])
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    levels = sorted(df["khz"].unique())
    names = list(dict.fromkeys(df["variant"]))
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        sub = df[df["variant"] == name].set_index("khz")
        xs = [j + i * width for j, k in enumerate(levels) if k in sub.index]
        ys = [sub.loc[k, "ms"] for k in levels if k in sub.index]
        ax.bar(xs, ys, width=width, label=name)
    constraints = (run.profile.get("workload") or {}).get("timing_constraints") or []
    deadlines = {int(tc["freq_khz"]): float(tc["deadline_ms"]) for tc in constraints}
    drawn = [j for j, k in enumerate(levels) if k in deadlines]
    for j in drawn:
        ax.hlines(deadlines[levels[j]], j - 0.1, j + 0.9, colors="red", linestyles="--",
                  label="deadline" if j == drawn[0] else None)  # fmt: skip
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(levels))])
    ax.set_xticklabels([f"{k / 1000:g} MHz" for k in levels])
    ax.set_xlabel("frequency level")
    ax.set_ylabel("latency of one inference (ms)")
    ax.set_yscale("log")
    plain_ticks(ax, "y")
    ax.legend(fontsize=7, ncol=2, title="pattern set", title_fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    kinds = "/".join(sorted({str(k) for k in df["kind"] if k})) or "not stated"
    wl_prov = (run.profile.get("workload") or {}).get("provenance")
    deadline_kind = profile_kind(run.profile, wl_prov) or "not stated"
    return Drawn(
        "latency",
        fig,
        "Latency per pattern set and level against the deadlines",
        "Bars: latency of one inference; red dashes: the timing constraint at that level "
        "(a bar above its dash misses every deadline there).",
        f"latency: {kinds} (from the profile simulated); deadlines: {deadline_kind}",
        LATENCY,
    )


def _window_span(w: dict[str, Any]) -> tuple[float, float] | None:
    start = next((w[k] for k in ("start_s", "t_start_s", "begin_s") if k in w), None)
    end = next((w[k] for k in ("end_s", "t_end_s") if k in w), None)
    if start is None:
        return None
    if end is None and "duration_s" in w:
        end = float(start) + float(w["duration_s"])
    return None if end is None else (float(start), float(end))


def draw_meter_trace(run: RunData) -> Drawn | None:
    """A meter's power trace (held steps: a sample covers the interval before it) with its
    energy windows shaded and named."""
    import numpy as np

    df = run.meter_trace
    if df is None or not {"t_host_s", "power_w"} <= set(df.columns) or df.empty:
        return None
    from power_meter.trace import held_values

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    t0 = float(df["t_host_s"].iloc[0])
    flags = df["flags"].to_numpy() if "flags" in df.columns else np.zeros(len(df), dtype=int)
    held = held_values(df["power_w"].to_numpy(dtype=float), flags)
    ax.plot(df["t_host_s"] - t0, held, lw=0.8, drawstyle="steps-pre")
    ax.set_xlabel("time since the first sample (s)")
    ax.set_ylabel("power (W)")
    ax.grid(alpha=0.3)
    plain_ticks(ax)
    fig.tight_layout()
    notes, names = [], []
    top = ax.get_ylim()[1]
    for w in run.meter_windows or []:
        span = _window_span(w)
        if span is not None:
            ax.axvspan(span[0] - t0, span[1] - t0, alpha=0.2)
            names.append((str(w.get("name", "")), span[0] - t0, top))
        if "energy_j" in w:
            notes.append(f"{w.get('name')}: {float(w['energy_j']):,.3f} J")
    place_labels(ax, names)
    return Drawn(
        "meter",
        fig,
        "Meter trace and energy windows",
        "Power read by the meter, each sample held over the interval before it; shaded "
        "spans are energy windows. " + "; ".join(notes),
        "measured (power meter)",
        METER,
    )
