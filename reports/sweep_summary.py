"""Summarising a sweep: its partitioned Parquet dataset, grouped by scenario and policy.

A sweep directory holds ``sweep.json`` (the configuration and cell count) and ``cells/``,
a Parquet dataset partitioned by profile with one row per finished cell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from contracts.workloads import CONTINUOUS
from reports.axes import plain_ticks, pyplot, render
from reports.pareto import pareto_front
from reports.plots import Figure
from reports.render import Cell, TableBlock, fmt
from reports.run import RunDirError, read_json

GROUP = ["profile", "battery_model", "workload", "policy"]
SWEEP_SECTION = "Sweep figures"
SWEEP_PROVENANCE = "modelled by the simulator (inputs as each profile states)"
# Axes a sweep may vary, in the order the battery-life figure shows them.
AXES = ["capacity_mah", "battery_model", "workload", "profile", "seed"]
# Columns a sweep may carry with the on-time count; else it is inferences - deadline_misses.
ON_TIME_COLUMNS = ("on_time_inferences", "on_time")


def on_time_inferences(df: pd.DataFrame) -> pd.Series:
    """Inferences that met their deadline, per cell (NaN where the dataset cannot tell).

    The sweep's own column when it has one; else ``inferences - (deadline_misses -
    dropped)`` when it records ``dropped``; else, since ``deadline_misses`` also counts
    requests dropped while the core was busy, ``inferences - deadline_misses`` only for
    ``continuous`` workloads (where nothing is dropped) and NaN for the others.

    >>> cells = pd.DataFrame({"inferences": [10, 7], "deadline_misses": [3, 9],
    ...                       "workload": ["continuous", "periodic:5"]})
    >>> on_time_inferences(cells).tolist()
    [7.0, nan]
    >>> on_time_inferences(cells.assign(dropped=[0, 4])).tolist()
    [7.0, 2.0]
    """
    for col in ON_TIME_COLUMNS:
        if col in df.columns and df[col].notna().all():
            return df[col].astype("float64")
    late = df["deadline_misses"].astype("float64")
    if "dropped" in df.columns and df["dropped"].notna().all():
        return df["inferences"] - (late - df["dropped"])
    on_time = df["inferences"] - late
    if "workload" in df.columns:
        on_time = on_time.where(df["workload"].astype(str) == CONTINUOUS)
    return on_time.astype("float64")


def is_sweep_dir(path: Path) -> bool:
    """True when ``path`` looks like a sweep's output directory."""
    return (path / "sweep.json").is_file() or (path / "cells").is_dir()


def load_sweep(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The sweep's rows (one per finished cell) and its manifest."""
    root = Path(path)
    manifest: dict[str, Any] = {}
    if (root / "sweep.json").is_file():
        manifest = read_json(root / "sweep.json")
    cells = root / "cells"
    if not cells.is_dir() or not any(cells.rglob("*.parquet")):
        raise RunDirError(f"{root}: a sweep directory with no finished cells in {cells}")
    df = pd.read_parquet(cells)
    if "cell_id" in df.columns and "error" in df.columns and df["cell_id"].duplicated().any():
        # A cell retried after an error has two rows: keep its success (or one failure).
        failed = df["error"].fillna("") != ""
        df = df.assign(_failed=failed).sort_values("_failed", kind="stable")
        df = df.drop_duplicates("cell_id").drop(columns="_failed").sort_index()
    for col in ("profile", "battery_model", "workload", "policy"):
        if col in df.columns:
            df[col] = df[col].astype(str)
    return df, manifest


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean life, inferences, on-time inferences, misses and accuracy per scenario and policy."""
    ok = _ok(df).assign(on_time=lambda d: on_time_inferences(d))
    g = ok.groupby(GROUP, dropna=False)
    out = pd.DataFrame(
        {
            "cells": g.size(),
            "battery_life_h": g["battery_life_s"].mean() / 3600,
            "inferences": g["inferences"].mean(),
            "on_time_inferences": g["on_time"].mean(),
            "deadline_misses": g["deadline_misses"].mean(),
            "mean_accuracy": g["mean_accuracy"].mean(),
        }
    )
    return out.reset_index()


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    """The cells that finished without an error."""
    if "error" not in df.columns:
        return df
    return df[df["error"].isna() | (df["error"] == "")]


def rt3_gain(df: pd.DataFrame) -> pd.DataFrame:
    """Per scenario (everything but policy), rt3's on-time inferences over dense-max's.

    ``gain`` is NaN where no ratio exists, and ``why`` says why: dense-max meets no
    deadline (a gain over zero is no number), neither does, or the dataset cannot tell the
    on-time count (see ``on_time_inferences``). Late inferences never count: a policy
    that only misses has no battery life worth a ratio.

    >>> cells = pd.DataFrame({"policy": ["rt3", "dense-max"] * 2, "workload": ["continuous"] * 4,
    ...     "profile": ["a", "a", "b", "b"], "inferences": [34, 10, 30, 10],
    ...     "deadline_misses": [34, 10, 0, 5]})
    >>> rt3_gain(cells)[["profile", "gain", "why"]].values.tolist()
    [['a', nan, 'neither meets a deadline'], ['b', 6.0, '']]
    """
    keys = [c for c in ("profile", "battery_model", "capacity_mah", "workload", "seed") if c in df]
    cells = df.assign(_on_time=on_time_inferences(df))
    piv = cells.pivot_table(
        index=keys, columns="policy", values="_on_time", aggfunc="first", dropna=False
    )
    if not {"rt3", "dense-max"} <= set(piv.columns):
        return pd.DataFrame()
    ours, theirs = piv["rt3"], piv["dense-max"]
    unknown = ours.isna() | theirs.isna()
    why = pd.Series("", index=piv.index)
    why[~unknown & (theirs == 0) & (ours > 0)] = "dense-max meets no deadline"
    why[~unknown & (theirs == 0) & (ours == 0)] = "neither meets a deadline"
    why[unknown] = "on-time inferences not recorded"
    gain = (ours / theirs).where(~unknown & (theirs > 0))
    return pd.DataFrame({"gain": gain, "why": why}).reset_index()


def _no_gain(reasons: pd.Series) -> str:
    """The scenario's cells without a gain, counted by reason: ``2 of 4: neither meets a
    deadline``; empty when every cell has one."""
    bad = reasons[reasons != ""]
    return "; ".join(
        f"{n} of {len(reasons)}: {why}" for why, n in bad.value_counts(sort=False).items()
    )


def sweep_tables(df: pd.DataFrame, manifest: dict[str, Any]) -> list[TableBlock]:
    """The sweep's summary tables."""
    s = summary_table(df)
    rows = [
        [
            Cell(str(r.profile)),
            Cell(str(r.battery_model)),
            Cell(str(r.workload)),
            Cell(str(r.policy)),
            fmt(int(r.cells)),
            fmt(float(r.battery_life_h), 3),
            fmt(float(r.inferences), 0),  # counts as integers (means rounded)
            fmt(None if pd.isna(r.on_time_inferences) else float(r.on_time_inferences), 0),
            fmt(float(r.deadline_misses), 0),
            fmt(None if pd.isna(r.mean_accuracy) else float(r.mean_accuracy), 4),
        ]
        for r in s.itertuples()
    ]
    errors = int((df["error"].fillna("") != "").sum()) if "error" in df.columns else 0
    total = manifest.get("cells")
    intro = f"{len(df)} finished cells" + (f" of {total}" if total else "")
    intro += f"; {errors} cells ended in an error." if errors else "."
    intro += (
        " On-time inferences met their deadline; n/a where the dataset cannot tell "
        "(deadline misses also count requests dropped while the core was busy, and this "
        "dataset records no drop count)."
        if s["on_time_inferences"].isna().any()
        else " On-time inferences met their deadline."
    )
    tables = [
        TableBlock(
            "sweep",
            "Sweep summary (means over capacities and seeds; counts rounded to integers)",
            [
                "profile",
                "battery model",
                "workload",
                "policy",
                "cells",
                "battery life (h)",
                "inferences",
                "on-time inferences",
                "deadline misses",
                "mean accuracy",
            ],
            rows,
            intro,
        )
    ]
    gain = rt3_gain(_ok(df))
    if not gain.empty:
        tables.append(_gain_table(gain))
    return tables


def _gain_table(gain: pd.DataFrame) -> TableBlock:
    """rt3's on-time gain over dense-max per scenario: min, median and max over the cells
    with a gain, ``n/a`` with the reason where no cell has one."""
    keys = [k for k in ("profile", "battery_model", "workload") if k in gain.columns]
    rows = []
    for k, g in gain.groupby(keys, dropna=False):
        k = k if isinstance(k, tuple) else (k,)
        v = g["gain"].dropna()
        stats = [fmt(x, 2) for x in (v.min(), v.median(), v.max())] if len(v) else []
        stats = stats or [Cell("n/a", True)] * 3
        rows.append([*(Cell(str(x)) for x in k), *stats, Cell(_no_gain(g["why"]))])
    return TableBlock(
        "gain",
        "Battery-life gain of rt3 over dense-max (on-time inferences per charge)",
        [*(k.replace("_", " ") for k in keys), "min", "median", "max", "cells without a gain"],
        rows,
        "Only inferences that met their deadline count. A cell where dense-max meets no "
        "deadline has no gain (a ratio over zero): its gain is n/a, with the reason.",
    )


def varying_axes(df: pd.DataFrame) -> list[str]:
    """The sweep axes that take more than one value (policy aside)."""
    return [a for a in AXES if a in df.columns and df[a].nunique(dropna=False) > 1]


def _axis_order(values: pd.Series) -> list[Any]:
    uniq = list(values.dropna().unique())
    try:
        return sorted(uniq)
    except TypeError:
        return sorted(uniq, key=str)


def life_by_axis_figure(df: pd.DataFrame) -> Figure | None:
    """Mean battery life per policy against each axis the sweep varies: a row of panels
    per profile (their lives differ by orders of magnitude), a panel per axis."""
    axes_varied = [a for a in varying_axes(df) if a != "profile"]
    if not axes_varied:
        return None
    plt = pyplot()
    profiles = sorted(df["profile"].astype(str).unique())
    n, m = len(profiles), len(axes_varied)
    fig, axes = plt.subplots(n, m, figsize=(3.6 * m + 1, 2.9 * n + 0.4), squeeze=False)
    for row, prof in zip(axes, profiles, strict=True):
        sub_p = df[df["profile"].astype(str) == prof]
        for ax, axis in zip(row, axes_varied, strict=True):
            sub = sub_p.assign(_x=sub_p[axis].astype(object).where(sub_p[axis].notna(), "own"))
            order = _axis_order(sub["_x"])
            positions = {v: i for i, v in enumerate(order)}
            for policy, g in sub.groupby("policy"):
                life = g.groupby("_x")["battery_life_s"].mean() / 3600
                ax.plot([positions[v] for v in life.index], life.values, marker="o", ms=3,
                        label=str(policy))  # fmt: skip
            ax.set_xticks(range(len(order)))
            ax.set_xticklabels([f"{v:g}" if isinstance(v, float) else str(v) for v in order],
                               fontsize=7)  # fmt: skip
            ax.set_xlabel(axis.replace("_", " "), fontsize=8)
            ax.set_title(prof, fontsize=8)
            ax.grid(alpha=0.3)
            plain_ticks(ax, "y")
        row[0].set_ylabel("battery life (h)")
    axes[0, 0].legend(fontsize=7)
    return Figure(
        "sweep_life_by_axis",
        "Battery life by sweep axis",
        "Mean battery life per policy at each value of every axis the sweep varies, one row "
        "per profile (means over the other axes).",
        SWEEP_PROVENANCE,
        render(fig),
        SWEEP_SECTION,
    )


def pareto_figure(df: pd.DataFrame) -> Figure | None:
    """Accuracy against on-time inferences per cell; the non-dominated cells joined.

    None when no cell has a known accuracy (profiles whose variants carry none).
    """
    known = df.assign(ontime=on_time_inferences(df))
    known = known[known["mean_accuracy"].notna() & known["ontime"].notna()]
    if known.empty:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for policy, g in known.groupby("policy"):
        ax.scatter(g["ontime"], g["mean_accuracy"], s=14, alpha=0.75, label=str(policy))
    points = [
        (str(i), float(r.ontime), float(r.mean_accuracy))
        for i, r in zip(known.index, known.itertuples(), strict=True)
    ]
    front = pareto_front(points)
    ax.plot([p[1] for p in front], [p[2] for p in front], color="k", lw=1, label="Pareto front")
    ax.set_xlabel("on-time inferences per charge")
    ax.set_ylabel("mean accuracy")
    ax.grid(alpha=0.3)
    plain_ticks(ax)
    ax.legend(fontsize=7)
    return Figure(
        "sweep_pareto",
        "Accuracy against on-time inferences",
        f"Each point is a cell ({len(known)} with a known accuracy); on-time inferences are "
        "inferences that met their deadline. The line joins the cells no other cell beats "
        "on both.",
        SWEEP_PROVENANCE,
        render(fig),
        SWEEP_SECTION,
    )


def sweep_figures(df: pd.DataFrame) -> list[Figure]:
    """Battery life by each varied axis, and the accuracy / on-time Pareto when known."""
    ok = _ok(df)
    figures = [life_by_axis_figure(ok), pareto_figure(ok)]
    return [f for f in figures if f is not None]
