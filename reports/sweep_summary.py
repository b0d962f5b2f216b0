"""Summarising a sweep: its partitioned Parquet dataset, grouped by scenario and policy.

A sweep directory holds ``sweep.json`` (the configuration and cell count) and ``cells/``,
a Parquet dataset partitioned by profile with one row per finished cell.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from reports.plots import Figure, _pyplot, _render
from reports.render import Cell, TableBlock, fmt
from reports.run import RunDirError

GROUP = ["profile", "battery_model", "workload", "policy"]


def is_sweep_dir(path: Path) -> bool:
    """True when ``path`` looks like a sweep's output directory."""
    return (path / "sweep.json").is_file() or (path / "cells").is_dir()


def load_sweep(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The sweep's rows (one per finished cell) and its manifest."""
    root = Path(path)
    manifest: dict[str, Any] = {}
    if (root / "sweep.json").is_file():
        manifest = json.loads((root / "sweep.json").read_text(encoding="utf-8"))
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
    """Mean life, inferences and accuracy and total misses per scenario and policy."""
    ok = df[df["error"].isna() | (df["error"] == "")] if "error" in df.columns else df
    g = ok.groupby(GROUP, dropna=False)
    out = pd.DataFrame(
        {
            "cells": g.size(),
            "battery_life_h": g["battery_life_s"].mean() / 3600,
            "inferences": g["inferences"].mean(),
            "deadline_misses": g["deadline_misses"].sum(),
            "mean_accuracy": g["mean_accuracy"].mean(),
        }
    )
    return out.reset_index()


def rt3_gain(df: pd.DataFrame) -> pd.DataFrame:
    """Per scenario (everything but policy), rt3's inferences over dense-max's."""
    keys = [c for c in ("profile", "battery_model", "capacity_mah", "workload", "seed") if c in df]
    piv = df.pivot_table(index=keys, columns="policy", values="inferences", aggfunc="first")
    if not {"rt3", "dense-max"} <= set(piv.columns):
        return pd.DataFrame()
    gain = (piv["rt3"] / piv["dense-max"]).rename("gain").reset_index()
    return gain


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
            fmt(float(r.inferences), 1),
            fmt(int(r.deadline_misses)),
            fmt(None if pd.isna(r.mean_accuracy) else float(r.mean_accuracy), 4),
        ]
        for r in s.itertuples()
    ]
    errors = int((df["error"].fillna("") != "").sum()) if "error" in df.columns else 0
    total = manifest.get("cells")
    intro = f"{len(df)} finished cells" + (f" of {total}" if total else "")
    intro += f"; {errors} cells ended in an error." if errors else "."
    tables = [
        TableBlock(
            "sweep",
            "Sweep summary (means over capacities and seeds)",
            [
                "profile",
                "battery model",
                "workload",
                "policy",
                "cells",
                "battery life (h)",
                "inferences",
                "deadline misses",
                "mean accuracy",
            ],
            rows,
            intro,
        )
    ]
    gain = rt3_gain(df)
    if not gain.empty:
        by = gain.groupby(["profile", "battery_model", "workload"], dropna=False)["gain"]
        grows = [
            [
                Cell(str(k[0])),
                Cell(str(k[1])),
                Cell(str(k[2])),
                fmt(v.min(), 2),
                fmt(v.median(), 2),
                fmt(v.max(), 2),
            ]
            for k, v in by
        ]
        tables.append(
            TableBlock(
                "gain",
                "Battery-life gain of rt3 over dense-max (inferences per charge)",
                ["profile", "battery model", "workload", "min", "median", "max"],
                grows,
            )
        )
    return tables


def sweep_figures(df: pd.DataFrame) -> list[Figure]:
    """Battery life against capacity per policy, one panel per profile."""
    if "capacity_mah" not in df.columns or df["capacity_mah"].isna().all():
        return []
    plt = _pyplot()
    profiles = sorted(df["profile"].unique())
    fig, axes = plt.subplots(1, len(profiles), figsize=(4 * len(profiles) + 1, 3.6), squeeze=False)
    for ax, prof in zip(axes[0], profiles, strict=True):
        sub = df[df["profile"] == prof]
        for policy, g in sub.groupby("policy"):
            m = g.groupby("capacity_mah")["battery_life_s"].mean() / 3600
            ax.plot(m.index, m.values, marker="o", ms=3, label=policy)
        ax.set_title(prof, fontsize=9)
        ax.set_xlabel("capacity (mAh)")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("battery life (h)")
    axes[0, 0].legend(fontsize=7)
    return [
        Figure(
            "sweep_life",
            "Battery life against capacity",
            "Mean over battery models, workloads and seeds.",
            "modelled by the simulator (inputs as each profile states)",
            _render(fig),
        )
    ]
