"""Rendering a report: tables and figures into one self-contained HTML file and a Markdown
summary, from Jinja2 templates shipped with the package."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from reports.plots import Figure
from reports.provenance import kinds_label, result_kinds
from reports.reproduction import ReproRow
from reports.run import RunData


@dataclass(frozen=True)
class Cell:
    """A table cell: its text, and whether it holds a number (right-aligned)."""

    text: str
    num: bool = False


@dataclass(frozen=True)
class TableBlock:
    """A titled table, rendered the same way in HTML and Markdown."""

    key: str
    title: str
    header: list[str]
    rows: list[list[Cell]]
    intro: str = ""


@dataclass(frozen=True)
class ReportFiles:
    """The files a report wrote."""

    html: Path
    markdown: Path
    figures: list[Path] = field(default_factory=list)


def fmt(value: Any, digits: int = 3) -> Cell:
    """A number as a right-aligned cell; None or NaN as ``n/a``.

    >>> fmt(1234.5678).text, fmt(None).text, fmt(7).text
    ('1234.568', 'n/a', '7')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Cell("n/a", True)
    if isinstance(value, bool):
        return Cell(str(value))
    if isinstance(value, int):
        return Cell(str(value), True)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15 and digits == 0:
        return Cell(str(int(value)), True)
    return Cell(f"{value:.{digits}f}", True)


HEADLINE_HEADER = [
    "policy",
    "battery model",
    "workload",
    "battery life (h)",
    "inferences",
    "deadline misses",
    "mean accuracy",
    "energy per inference (mJ)",
    "switches",
    "provenance",
]


def headline_table(run: RunData) -> TableBlock:
    """One row per simulated policy: life, inferences, misses, accuracy, energy, switches."""
    rows = []
    for r in run.records:
        epi = r.get("energy_per_inference_j")
        rows.append(
            [
                Cell(str(r.get("policy"))),
                Cell(str(r.get("battery_model") or "profile's")),
                Cell(str(r.get("workload") or "")),
                fmt(r["battery_life_s"] / 3600, 3),
                fmt(int(r["inferences"])),
                fmt(r.get("deadline_misses")),
                fmt(r.get("mean_accuracy"), 4),
                fmt(None if epi is None else 1e3 * epi, 3),
                fmt(r.get("switches")),
                Cell(kinds_label(result_kinds(r))),
            ]
        )
    profile = run.records[0].get("profile", "")
    return TableBlock(
        "headline",
        f"Headline: every policy on {profile}",
        HEADLINE_HEADER,
        rows,
        "Battery life until the battery is empty, inferences completed on one charge, "
        "and the inference-weighted accuracy of the pattern sets that ran.",
    )


def reproduction_block(rows: list[ReproRow]) -> TableBlock:
    """The reproduction table as a table block."""
    return TableBlock(
        "reproduction",
        "Reproduction of RT3's claims",
        ["quantity", "RT3 claims", "our figure", "numbers are", "command", "note"],
        [
            [
                Cell(r.quantity),
                Cell(r.claim),
                Cell(r.ours, r.value is not None),
                Cell(r.provenance),
                Cell(r.command),
                Cell(r.note),
            ]
            for r in rows
        ],
    )


def warnings_block(run: RunData) -> TableBlock | None:
    """The simulator's warnings, one row each, or None when there are none."""
    rows = [
        [Cell(str(r.get("policy"))), Cell(str(w))]
        for r in run.records
        for w in r.get("warnings") or []
    ]
    if not rows:
        return None
    return TableBlock("warnings", "Simulator warnings", ["policy", "warning"], rows)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rt3lab")
    except PackageNotFoundError:
        return "(not installed)"


def _template(name: str) -> Any:
    from jinja2 import Environment, select_autoescape

    text = (resources.files("reports") / "templates" / name).read_text(encoding="utf-8")
    env = Environment(
        autoescape=select_autoescape(default_for_string=name.endswith(".html.j2")),
        keep_trailing_newline=True,
        trim_blocks=False,
    )
    from reports.markdown import md_block, md_code, md_escape

    env.filters["md"] = md_escape  # report.md.j2: text the report did not write
    env.filters["md_block"] = md_block
    env.filters["md_code"] = md_code
    return env.from_string(text)


def write_report(
    out: Path,
    title: str,
    source: str,
    tables: list[TableBlock],
    figures: list[Figure],
    notes: list[str] | None = None,
) -> ReportFiles:
    """Write ``report.html`` (images embedded as base64 PNG), ``report.md`` and the PNGs."""
    out.mkdir(parents=True, exist_ok=True)
    fig_dir = out / "figures"
    fig_dir.mkdir(exist_ok=True)
    fig_ctx, paths = [], []
    for f in figures:
        path = fig_dir / f"{f.key}.png"
        path.write_bytes(f.png)
        paths.append(path)
        fig_ctx.append(
            {
                "key": f.key,
                "title": f.title,
                "caption": f.caption,
                "provenance": f.provenance,
                "b64": base64.b64encode(f.png).decode("ascii"),
                "file": f"figures/{f.key}.png",
            }
        )
    ctx = {
        "title": title,
        "source": source,
        "version": _version(),
        "tables": tables,
        "figures": fig_ctx,
        "notes": notes or [],
    }
    html = out / "report.html"
    html.write_text(_template("report.html.j2").render(**ctx), encoding="utf-8")
    md = out / "report.md"
    md.write_text(_template("report.md.j2").render(**ctx), encoding="utf-8")
    return ReportFiles(html, md, paths)
