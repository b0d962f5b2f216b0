"""The report's figures, each rendered to PNG bytes and labelled with its provenance.

matplotlib is imported inside the functions (Agg backend), so importing this module is cheap.
Each plot function takes a ``RunData`` and returns a ``Figure``, or None when the run holds
nothing to plot (for example no meter capture).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from contracts.policies import fixed_set_run
from reports.provenance import kinds_label, merge_kinds, profile_kind, profile_kinds
from reports.run import RunData


@dataclass(frozen=True)
class Figure:
    """One rendered figure: a key, a title, a caption, its provenance and the PNG."""

    key: str
    title: str
    caption: str
    provenance: str
    png: bytes


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _render(fig: Any) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _simulated(run: RunData) -> str:
    return f"modelled by the simulator; inputs: {kinds_label(merge_kinds(run.records))}"


def _labels(records: list[dict[str, Any]]) -> list[str]:
    """Legend labels: the policy, plus the battery model and workload when they vary."""
    out = []
    for rec in records:
        parts = [str(rec.get("policy"))]
        for key in ("battery_model", "workload"):
            if len({str(r.get(key)) for r in records}) > 1:
                parts.append(str(rec.get(key)))
        out.append(" / ".join(parts))
    return out


def _main_series(run: RunData, columns: set[str]) -> dict[str, pd.DataFrame]:
    """Time series of the main policies; runs of one fixed set (``policy:SET``) are left to
    the summary figures so the time plots stay readable."""
    series = {k: v for k, v in run.timeseries.items() if columns <= set(v.columns)}
    policies = {str(r.get("policy")) for r in run.records}
    variant_runs = {p.replace(":", "_") for p in policies if fixed_set_run(p)} - policies
    main = {k: v for k, v in series.items() if k not in variant_runs}
    return main or series


def spans_decades(values: list[float], ratio: float = 30.0) -> bool:
    """Whether positive ``values`` span more than ``ratio`` (then a log axis shows them all).

    >>> spans_decades([1.0, 2.0, 500.0]), spans_decades([1.0, 2.0]), spans_decades([0.0, 5.0])
    (True, False, False)
    """
    pos = [v for v in values if v > 0]
    return len(pos) >= 2 and max(pos) / min(pos) > ratio


def _bar_labels(ax: Any, labels: list[str]) -> None:
    """One slanted label under each bar, and a light horizontal grid."""
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=40, ha="right", fontsize=7)
    ax.grid(alpha=0.3, axis="y")


def _informative(df: pd.DataFrame, column: str) -> bool:
    """A time-series column that changes (an ideal battery's voltage does not)."""
    if column not in df.columns or df[column].isna().all():
        return False
    return float(df[column].max() - df[column].min()) > 1e-6


def soc_voltage(run: RunData) -> Figure | None:
    """State of charge over time, one line per policy, and the terminal voltage when it
    varies (the ideal battery's is a constant, and not drawn)."""
    series = _main_series(run, {"time_s", "soc"})
    if not series:
        return None
    plt = _pyplot()
    volts = any(_informative(df, "voltage_v") for df in series.values())
    if volts:
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    else:
        fig, ax1 = plt.subplots(figsize=(8, 3.4))
        ax2 = None
    for policy, df in series.items():
        hours = df["time_s"] / 3600
        ax1.plot(hours, df["soc"], label=policy)
        if ax2 is not None and "voltage_v" in df.columns:
            ax2.plot(hours, df["voltage_v"], label=policy)
    ax1.set_ylabel("state of charge")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    (ax2 or ax1).set_xlabel("time (h)")
    if ax2 is not None:
        ax2.set_ylabel("terminal voltage (V)")
        ax2.grid(alpha=0.3)
    title = "State of charge and terminal voltage" if volts else "State of charge"
    caption = "Battery state of charge over the discharge, per policy" + (
        ", and the terminal voltage under load."
        if volts
        else " (the battery model's voltage is constant, so it is not drawn)."
    )
    return Figure("soc_voltage", title, caption, _simulated(run), _render(fig))


def level_timeline(run: RunData) -> Figure | None:
    """A timeline of frequency level and active pattern set, one panel per policy."""
    series = _main_series(run, {"time_s", "freq_khz"})
    if not series:
        return None
    plt = _pyplot()
    n = len(series)
    fig, axes = plt.subplots(n, 1, figsize=(8, 1.6 + 1.3 * n), sharex=True, squeeze=False)
    for ax, (policy, df) in zip(axes[:, 0], series.items(), strict=True):
        hours = df["time_s"] / 3600
        ax.step(hours, df["freq_khz"] / 1000, where="post", color="tab:blue")
        ax.set_ylabel("MHz", color="tab:blue", fontsize=8)
        ax.set_title(policy, fontsize=9, loc="left")
        if "variant" in df.columns:
            names = list(dict.fromkeys(str(x) for x in df["variant"]))
            codes = df["variant"].astype(str).map({v: i for i, v in enumerate(names)})
            ax2 = ax.twinx()
            ax2.step(hours, codes, where="post", color="tab:orange", alpha=0.8)
            ax2.set_yticks(range(len(names)))
            ax2.set_yticklabels(names, fontsize=7, color="tab:orange")
            ax2.set_ylim(-0.5, len(names) - 0.5)
    axes[-1, 0].set_xlabel("time (h)")
    return Figure(
        "level_timeline",
        "Frequency level and active pattern set",
        "Blue: the DVFS level the governor allowed; orange: the pattern set the policy ran.",
        _simulated(run),
        _render(fig),
    )


def _on_time(r: dict[str, Any]) -> int:
    from reports.verdict import on_time_count

    return on_time_count(r)


def battery_life(run: RunData) -> Figure:
    """Battery life in hours and on-time (and missed) inferences per policy."""
    plt = _pyplot()
    labels = _labels(run.records)
    hours = [r["battery_life_s"] / 3600 for r in run.records]
    on = [_on_time(r) for r in run.records]
    missed = [int(r.get("deadline_misses") or 0) for r in run.records]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    ax1.bar(labels, hours, color="tab:blue")
    ax1.set_ylabel("battery life (h)")
    ax2.bar(labels, on, color="tab:green", label="on time")
    ax2.bar(labels, missed, bottom=on, color="tab:red", alpha=0.35, label="missed")
    ax2.set_ylabel("inferences per charge")
    ax2.legend(fontsize=7)
    if spans_decades(hours):
        ax1.set_yscale("log")
    if spans_decades([a + b for a, b in zip(on, missed, strict=True)]):
        ax2.set_yscale("log")
    for ax in (ax1, ax2):
        _bar_labels(ax, labels)
    return Figure(
        "battery_life",
        "Battery life per policy",
        "Hours until the battery is empty, and inferences on one charge: green on time, "
        "red (stacked) late or dropped. Only on-time inferences count in the verdict.",
        _simulated(run),
        _render(fig),
    )


def pareto_front(points: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """The non-dominated (label, life, accuracy) points: more life and more accuracy win.

    >>> [p[0] for p in pareto_front([("a", 1, 0.9), ("b", 2, 0.8), ("c", 1, 0.7)])]
    ['a', 'b']
    """
    front = [
        p
        for p in points
        if not any((q[1] >= p[1] and q[2] >= p[2]) and (q[1] > p[1] or q[2] > p[2]) for q in points)
    ]
    return sorted(front, key=lambda p: p[1])


def accuracy_vs_life(run: RunData) -> Figure | None:
    """The accuracy-versus-battery-life Pareto front over pattern sets and policies."""
    points = []
    for r, base in zip(run.records, _labels(run.records), strict=True):
        acc = r.get("mean_accuracy")
        if acc is None:
            continue
        used = [k for k, n in (r.get("inferences_per_variant") or {}).items() if n]
        named = len(used) == 1 and used[0] not in base
        label = base + (f" [{used[0]}]" if named else "")
        points.append((label, float(_on_time(r)), float(acc)))
    if not points:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.4))
    front = pareto_front(points)
    for label, life, acc in points:
        ax.scatter(life, acc, s=30, label=label)
    # Alternate the labels above and below their points so neighbours do not overprint.
    for i, (label, life, acc) in enumerate(front):
        dy = 6 if i % 2 == 0 else -12
        ax.annotate(label, (life, acc), fontsize=7, xytext=(4, dy), textcoords="offset points")
    if spans_decades([p[1] for p in points]):
        ax.set_xscale("log")
    ax.step([p[1] for p in front], [p[2] for p in front], where="post", color="grey", ls="--")
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_xlabel("on-time inferences per charge")
    ax.set_ylabel("mean next-token accuracy")
    ax.grid(alpha=0.3)
    acc_kind = merge_kinds(run.records).get("accuracy", "as the variants state")
    return Figure(
        "pareto",
        "Accuracy against battery life",
        "Each point is one simulated policy (with the pattern set it ran when it ran only "
        "one); the dashed line joins the Pareto-optimal points, which are labelled.",
        f"battery life {_simulated(run)}; accuracy: {acc_kind}",
        _render(fig),
    )


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


def latency_vs_deadline(run: RunData) -> Figure | None:
    """Latency of each pattern set at each level, against the deadline of that level."""
    if run.profile is None:
        return None
    rows = _variant_latencies(run.profile)
    if not rows:
        return None
    df = pd.DataFrame(rows, columns=["variant", "khz", "ms", "kind"])
    plt = _pyplot()
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
    for j, k in enumerate(levels):
        if k in deadlines:
            ax.hlines(deadlines[k], j - 0.1, j + 0.9, colors="red", linestyles="--")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(levels))])
    ax.set_xticklabels([f"{k / 1000:.0f} MHz" for k in levels])
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3, axis="y")
    kinds = "/".join(sorted({str(k) for k in df["kind"] if k})) or "not stated"
    wl_prov = (run.profile.get("workload") or {}).get("provenance")
    deadline_kind = profile_kind(run.profile, wl_prov) or "not stated"
    return Figure(
        "latency",
        "Latency per pattern set and level against the deadlines",
        "Bars: latency of one inference; red dashes: the timing constraint at that level.",
        f"latency: {kinds} (from the profile simulated); deadlines: {deadline_kind}",
        _render(fig),
    )


def energy_per_inference(run: RunData) -> Figure | None:
    """Energy per on-time inference (mJ) per policy; a log axis when values span decades.
    None (no figure) when no policy answered on time: an empty plot says nothing."""
    plt = _pyplot()
    labels = _labels(run.records)
    values = []
    for r in run.records:
        n = _on_time(r)
        values.append(1e3 * float(r.get("energy_j") or 0.0) / n if n else 0.0)
    if not any(values):
        return None
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    ax.bar(labels, values, color="tab:purple")
    for i, v in enumerate(values):
        if v == 0.0:
            ax.annotate("no on-time\ninference", (i, 0), ha="center", va="bottom", fontsize=6)
    ax.set_ylabel("energy per on-time inference (mJ)")
    if spans_decades(values):
        ax.set_yscale("log")
    _bar_labels(ax, labels)
    return Figure(
        "energy",
        "Energy per on-time inference",
        "Energy drawn from the battery over the whole discharge divided by the inferences "
        "that met their deadline.",
        _simulated(run),
        _render(fig),
    )


def _window_span(w: dict[str, Any]) -> tuple[float, float] | None:
    start = next((w[k] for k in ("start_s", "t_start_s", "begin_s") if k in w), None)
    end = next((w[k] for k in ("end_s", "t_end_s") if k in w), None)
    if start is None:
        return None
    if end is None and "duration_s" in w:
        end = float(start) + float(w["duration_s"])
    return None if end is None else (float(start), float(end))


def meter_trace(run: RunData) -> Figure | None:
    """A meter's power trace with its energy windows shaded."""
    df = run.meter_trace
    if df is None or not {"t_host_s", "power_w"} <= set(df.columns) or df.empty:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    t0 = float(df["t_host_s"].iloc[0])
    ax.plot(df["t_host_s"] - t0, df["power_w"], lw=0.8)
    notes = []
    for w in run.meter_windows or []:
        span = _window_span(w)
        if span is not None:
            ax.axvspan(span[0] - t0, span[1] - t0, alpha=0.2)
            ax.annotate(str(w.get("name", "")), (span[0] - t0, ax.get_ylim()[1]), fontsize=7)
        if "energy_j" in w:
            notes.append(f"{w.get('name')}: {float(w['energy_j']):.3f} J")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("power (W)")
    ax.grid(alpha=0.3)
    return Figure(
        "meter",
        "Meter trace and energy windows",
        "Power read by the meter; shaded spans are energy windows. " + "; ".join(notes),
        "measured (power meter)",
        _render(fig),
    )


PLOTS: tuple[Callable[[RunData], Figure | None], ...] = (
    soc_voltage,
    level_timeline,
    battery_life,
    accuracy_vs_life,
    latency_vs_deadline,
    energy_per_inference,
    meter_trace,
)


def run_figures(run: RunData) -> list[Figure]:
    """Every figure the run has data for, in report order."""
    figures = [f for f in (plot(run) for plot in PLOTS) if f is not None]
    if run.profile is not None:
        # Say where the profile's own numbers come from beside every figure using them.
        kinds = kinds_label(profile_kinds(run.profile))
        figures = [
            f
            if f.key in ("meter", "latency")
            else Figure(f.key, f.title, f.caption, f"{f.provenance} (profile: {kinds})", f.png)
            for f in figures
        ]
    return figures
