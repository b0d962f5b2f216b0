"""The report's figures, each rendered to PNG bytes, grouped in sections that state their
provenance once.

matplotlib is imported inside the functions (Agg backend), so importing this module is
cheap. Each ``draw_*`` function takes a ``RunData`` and returns a ``Drawn`` (the matplotlib
figure, its title and caption), or None when the run holds nothing to plot (for example no
meter capture); ``drawings`` gives them all (the tests check their labels), ``run_figures``
renders them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from contracts.policies import REFERENCE, fixed_set_run
from reports.axes import plain_ticks, pyplot, render
from reports.provenance import kinds_label, merge_kinds, profile_kinds
from reports.run import RunData

# Sections of the figures: the simulated discharge, then what went into it.
SIMULATED = "The simulated discharge"


@dataclass(frozen=True)
class Figure:
    """One rendered figure: a key, a title, a caption, the provenance its section states,
    the PNG, its section and what it adds to the section's provenance (``extra``)."""

    key: str
    title: str
    caption: str
    provenance: str
    png: bytes
    section: str = SIMULATED
    extra: str = ""


@dataclass(frozen=True)
class Drawn:
    """A drawn matplotlib figure before rendering: its title, caption and section, the
    provenance that section states, and anything the figure adds to it."""

    key: str
    fig: Any
    title: str
    caption: str
    provenance: str
    section: str = SIMULATED
    extra: str = ""


def simulated(run: RunData) -> str:
    """The provenance of every simulated figure: the simulator, its inputs and the
    profile's own numbers."""
    text = f"modelled by the simulator; inputs: {kinds_label(merge_kinds(run.records))}"
    if run.profile is not None:
        text += f" (profile: {kinds_label(profile_kinds(run.profile))})"
    return text


def labels(records: list[dict[str, Any]]) -> list[str]:
    """Policy labels: the policy, plus the battery model and workload when they vary."""
    out = []
    for rec in records:
        parts = [str(rec.get("policy"))]
        for key in ("battery_model", "workload"):
            if len({str(r.get(key)) for r in records}) > 1:
                parts.append(str(rec.get(key)))
        out.append(" / ".join(parts))
    return out


def _main_series(run: RunData, columns: set[str]) -> dict[str, pd.DataFrame]:
    """Time series of the main policies, by policy name in the rows' order (rt3's first);
    runs of one fixed set (``policy:SET``) are left to the summary figures so the time
    plots stay readable."""
    rank = {str(r.get("policy")): i for i, r in enumerate(run.records)}
    names = sorted(run.timeseries, key=lambda k: (rank.get(k, len(rank)), k))
    series = {k: run.timeseries[k] for k in names if columns <= set(run.timeseries[k].columns)}
    main = {k: v for k, v in series.items() if not fixed_set_run(k)}
    return main or series


# Line colours of the other policies: matplotlib's, less rt3's red.
OTHER_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink",
                 "tab:gray", "tab:olive", "tab:cyan")  # fmt: skip


def _line_styles(policies: list[str]) -> dict[str, dict[str, Any]]:
    """rt3's line red, thicker and on top, so a policy with the same curve cannot hide it;
    the others in turn in colours other than red."""
    others = iter(OTHER_COLOURS * (1 + len(policies) // len(OTHER_COLOURS)))
    return {
        p: {"lw": 2.4, "zorder": 5, "color": "tab:red"}
        if p == REFERENCE
        else {"lw": 1.2, "zorder": 3, "color": next(others)}
        for p in policies
    }


def spans_decades(values: list[float], ratio: float = 30.0) -> bool:
    """Whether positive ``values`` span more than ``ratio`` (then a log axis shows them all).

    >>> spans_decades([1.0, 2.0, 500.0]), spans_decades([1.0, 2.0]), spans_decades([0.0, 5.0])
    (True, False, False)
    """
    pos = [v for v in values if v > 0]
    return len(pos) >= 2 and max(pos) / min(pos) > ratio


def _informative(df: pd.DataFrame, column: str) -> bool:
    """A time-series column that changes (an ideal battery's voltage does not)."""
    if column not in df.columns or df[column].isna().all():
        return False
    return float(df[column].max() - df[column].min()) > 1e-6


def draw_soc_voltage(run: RunData) -> Drawn | None:
    """State of charge over time, one line per policy, and the terminal voltage when it
    varies (the ideal battery's is a constant, and not drawn)."""
    series = _main_series(run, {"time_s", "soc"})
    if not series:
        return None
    plt = pyplot()
    volts = any(_informative(df, "voltage_v") for df in series.values())
    if volts:
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    else:
        fig, ax1 = plt.subplots(figsize=(8, 3.4))
        ax2 = None
    styles = _line_styles(list(series))
    for policy, df in series.items():
        hours = df["time_s"] / 3600
        ax1.plot(hours, df["soc"], label=policy, **styles[policy])
        if ax2 is not None and "voltage_v" in df.columns:
            ax2.plot(hours, df["voltage_v"], label=policy, **styles[policy])
    ax1.set_ylabel("state of charge (0-1)")
    ax1.legend(fontsize=8, title="policy", title_fontsize=8)
    for ax in (ax1, ax2):
        if ax is not None:
            ax.grid(alpha=0.3)
            plain_ticks(ax)
    (ax2 or ax1).set_xlabel("time since full charge (h)")
    if ax2 is not None:
        ax2.set_ylabel("terminal voltage (V)")
    title = "State of charge and terminal voltage" if volts else "State of charge"
    caption = "Battery state of charge over the discharge, per policy" + (
        ", and the terminal voltage under load."
        if volts
        else " (the battery model's voltage is constant, so it is not drawn)."
    )
    return Drawn("soc_voltage", fig, title, caption, simulated(run))


def draw_level_timeline(run: RunData) -> Drawn | None:
    """A timeline of frequency level and active pattern set, one panel per policy."""
    series = _main_series(run, {"time_s", "freq_khz"})
    if not series:
        return None
    plt = pyplot()
    n = len(series)
    fig, axes = plt.subplots(n, 1, figsize=(8, 1.6 + 1.3 * n), sharex=True, squeeze=False)
    for ax, (policy, df) in zip(axes[:, 0], series.items(), strict=True):
        hours = df["time_s"] / 3600
        ax.step(hours, df["freq_khz"] / 1000, where="post", color="tab:blue")
        ax.set_ylabel("level (MHz)", color="tab:blue", fontsize=8)
        ax.set_title(policy, fontsize=9, loc="left")
        ax.set_yticks(sorted({float(x) / 1000 for x in df["freq_khz"]}))
        plain_ticks(ax)
        if "variant" in df.columns:
            names = list(dict.fromkeys(str(x) for x in df["variant"]))
            codes = df["variant"].astype(str).map({v: i for i, v in enumerate(names)})
            ax2 = ax.twinx()
            ax2.step(hours, codes, where="post", color="tab:orange", alpha=0.8)
            ax2.set_yticks(range(len(names)))
            ax2.set_yticklabels(names, fontsize=7, color="tab:orange")
            ax2.set_ylim(-0.5, len(names) - 0.5)
    axes[-1, 0].set_xlabel("time since full charge (h)")
    return Drawn(
        "level_timeline",
        fig,
        "Frequency level and active pattern set",
        "Blue: the DVFS level the governor allowed (MHz); orange: the pattern set the policy ran.",
        simulated(run),
    )


def _barh(ax: Any, names: list[str], values: list[float], color: str, xlabel: str) -> None:
    """Horizontal bars, one per policy in the rows' order from the top, named on the y
    axis (the caller inverts it once, shared axes included)."""
    ax.barh(range(len(names)), values, color=color)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel(xlabel)
    if spans_decades(values):
        ax.set_xscale("log")
    ax.grid(alpha=0.3, axis="x")
    plain_ticks(ax, "x", most=4)


def _on_time(r: dict[str, Any]) -> int:
    from reports.verdict import on_time_count

    return on_time_count(r)


def draw_battery_life(run: RunData) -> Drawn:
    """Battery life in hours and on-time (and missed) inferences per policy."""
    plt = pyplot()
    names = labels(run.records)
    hours = [r["battery_life_s"] / 3600 for r in run.records]
    on = [_on_time(r) for r in run.records]
    missed = [int(r.get("deadline_misses") or 0) for r in run.records]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 1.4 + 0.38 * len(names)), sharey=True)
    _barh(ax1, names, hours, "tab:blue", "battery life (h)")
    total = [a + b for a, b in zip(on, missed, strict=True)]
    _barh(ax2, names, on, "tab:green", "inferences per charge")
    ax2.barh(range(len(names)), missed, left=on, color="tab:red", alpha=0.35, label="missed")
    ax2.patches[0].set_label("on time")
    if spans_decades(total):
        ax2.set_xscale("log")
        plain_ticks(ax2, "x")
    ax1.invert_yaxis()  # the first row on top (rt3's, in a run of every policy)
    ax2.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    return Drawn(
        "battery_life",
        fig,
        "Battery life per policy",
        "Hours until the battery is empty, and inferences on one charge: green on time, "
        "red (stacked) late or dropped. Only on-time inferences count in the verdict.",
        simulated(run),
    )


def draw_energy_per_inference(run: RunData) -> Drawn | None:
    """Energy per on-time inference (mJ) per policy; a log axis when values span decades.
    None (no figure) when no policy answered on time: an empty plot says nothing."""
    plt = pyplot()
    names = labels(run.records)
    values = []
    for r in run.records:
        n = _on_time(r)
        values.append(1e3 * float(r.get("energy_j") or 0.0) / n if n else 0.0)
    if not any(values):
        return None
    fig, ax = plt.subplots(figsize=(8, 1.4 + 0.38 * len(names)))
    _barh(ax, names, values, "tab:purple", "energy per on-time inference (mJ)")
    ax.invert_yaxis()
    none = [names[i] for i, v in enumerate(values) if v == 0.0]
    caption = (
        "Energy drawn from the battery over the whole discharge divided by the inferences "
        "that met their deadline."
    )
    if none:
        caption += f" No bar: no on-time inference ({', '.join(none)})."
    return Drawn("energy", fig, "Energy per on-time inference", caption, simulated(run))


def _drawers() -> tuple[Callable[[RunData], Drawn | None], ...]:
    from reports.deadline_map import draw_deadline_accuracy, draw_deadline_gains
    from reports.inputs import draw_latency_vs_deadline, draw_meter_trace
    from reports.pareto import draw_accuracy_vs_life

    return (
        draw_soc_voltage,
        draw_level_timeline,
        draw_battery_life,
        draw_accuracy_vs_life,
        draw_energy_per_inference,
        draw_latency_vs_deadline,
        draw_meter_trace,
        draw_deadline_gains,
        draw_deadline_accuracy,
    )


def drawings(run: RunData) -> list[Drawn]:
    """Every figure the run has data for, drawn (not yet rendered), in report order."""
    return [d for d in (draw(run) for draw in _drawers()) if d is not None]


def run_figures(run: RunData) -> list[Figure]:
    """Every figure the run has data for, rendered, in report order."""
    return [
        Figure(d.key, d.title, d.caption, d.provenance, render(d.fig), d.section, d.extra)
        for d in drawings(run)
    ]
