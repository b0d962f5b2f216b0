"""Rendering a report: tables and figures into one self-contained HTML file and a Markdown
summary, from Jinja2 templates shipped with the package."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from reports.commands import Commands
from reports.plots import Figure
from reports.provenance import kinds_label, result_kinds
from reports.reproduction import ReproRow
from reports.run import RunData
from reports.verdict import Verdict


@dataclass(frozen=True)
class Cell:
    """A table cell: its text, whether it holds a number (right-aligned) and whether it is
    code (a command line, shown verbatim)."""

    text: str
    num: bool = False
    code: bool = False


@dataclass(frozen=True)
class TableBlock:
    """A titled table, rendered the same way in HTML and Markdown; ``notes`` follow it (the
    long remarks that would otherwise make a column too wide to read)."""

    key: str
    title: str
    header: list[str]
    rows: list[list[Cell]]
    intro: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReportFiles:
    """The files a report wrote."""

    html: Path
    markdown: Path
    figures: list[Path] = field(default_factory=list)


def fmt(value: Any, digits: int = 3) -> Cell:
    """A number as a right-aligned cell, thousands separated; None or NaN as ``n/a``.

    >>> fmt(1234.5678).text, fmt(None).text, fmt(477429949).text, fmt(2.5e6, 0).text
    ('1,234.568', 'n/a', '477,429,949', '2,500,000')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Cell("n/a", True)
    if isinstance(value, bool):
        return Cell(str(value))
    if isinstance(value, int):
        return Cell(f"{value:,}", True)
    return Cell(f"{value:,.{digits}f}", True)


HEADLINE_HEADER = [
    "policy",
    "battery life (h)",
    "on-time inferences",
    "missed",
    "miss rate",
    "mean accuracy",
    "energy per on-time inference (mJ)",
    "switches",
]


def _same(records: list[dict[str, Any]], key: str) -> str | None:
    values = {str(r.get(key)) for r in records}
    return values.pop() if len(values) == 1 else None


def headline_table(run: RunData) -> TableBlock:
    """One row per simulated policy: life, on-time and missed inferences, accuracy, energy.

    What is shared by every row (battery model, workload, provenance) is stated once in the
    table's introduction; what differs gets its own column.
    """
    from reports.verdict import accounting

    recs = run.records
    shared = {k: _same(recs, k) for k in ("battery_model", "workload")}
    prov = {kinds_label(result_kinds(r)) for r in recs}
    header = list(HEADLINE_HEADER)
    extra = [k for k, v in shared.items() if v is None]
    header[1:1] = [k.replace("_", " ") for k in extra]
    if len(prov) > 1:
        header.append("provenance")
    rows = []
    for r in recs:
        acct = accounting(r)
        epi = acct["energy_per_on_time_inference_j"]
        row = [Cell(str(r.get("policy")))]
        row += [Cell(str(r.get(k) or "")) for k in extra]
        row += [
            fmt(r["battery_life_s"] / 3600, 3),
            fmt(acct["on_time_inferences"]),
            fmt(acct["missed_inferences"]),
            fmt(acct["miss_rate"], 4),
            fmt(r.get("mean_accuracy"), 4),
            fmt(None if epi is None else 1e3 * epi, 3),
            fmt(r.get("switches")),
        ]
        if len(prov) > 1:
            row.append(Cell(kinds_label(result_kinds(r))))
        rows.append(row)
    profile = recs[0].get("profile", "")
    said = [f"{k.replace('_', ' ')} {v}" for k, v in shared.items() if v is not None]
    intro = (
        "Battery life until the battery is empty; inferences completed within their "
        "deadline on one charge, and those missed (late or dropped); the inference-weighted "
        "accuracy of the pattern sets that ran. "
    )
    if said:
        intro += "Every row: " + ", ".join(said) + ". "
    if len(prov) == 1:
        intro += f"Numbers are {prov.pop()}."
    return TableBlock("headline", f"Headline: every policy on {profile}", header, rows, intro)


def reproduction_block(rows: list[ReproRow]) -> TableBlock:
    """The reproduction table as a table block: the artefact each figure comes from names
    its command in the Commands section; the notes follow the table, numbered."""
    notes = [f"[{i}] {r.note}" for i, r in enumerate((r for r in rows if r.note), 1)]
    marks = iter(range(1, len(notes) + 1))
    return TableBlock(
        "reproduction",
        "Reproduction of RT3's claims",
        ["quantity", "RT3 claims", "our figure", "numbers are", "from"],
        [
            [
                Cell(r.quantity + (f" [{next(marks)}]" if r.note else "")),
                Cell(r.claim),
                Cell(r.ours, r.value is not None),
                Cell(r.provenance),
                Cell(r.made_by),
            ]
            for r in rows
        ],
        '"From" names the file each figure comes from; its command is under Commands.',
        notes,
    )


def commands_block(commands: Commands) -> TableBlock | None:
    """Each artefact's command, once, with paths relative to the run (``short_commands``),
    or None when the run recorded none."""
    if not commands.commands:
        return None
    intro = "The command that wrote each file of the run; paths are relative to the run."
    said = [f"{name} is {path}" for name, path in commands.prefixes.items()]
    if said:
        intro += " " + "; ".join(said) + "."
    rows = [[Cell(k), Cell(v, code=True)] for k, v in commands.commands.items()]
    return TableBlock("commands", "Commands", ["file", "command"], rows, intro)


def warnings_block(run: RunData) -> TableBlock | None:
    """The simulator's warnings, each distinct one once with the policies that raised it,
    or None when there are none."""
    seen: dict[str, list[str]] = {}
    for r in run.records:
        for w in r.get("warnings") or []:
            seen.setdefault(str(w), []).append(str(r.get("policy")))
    if not seen:
        return None
    rows = [[Cell(w), Cell(", ".join(pols)), fmt(len(pols))] for w, pols in seen.items()]
    return TableBlock("warnings", "Simulator warnings", ["warning", "policies", "count"], rows)


def host_block(run: RunData) -> TableBlock | None:
    """The host the latencies were measured on (``host.json``), or None."""
    if not run.host:
        return None
    names = {
        "cpu": "CPU",
        "cores": "cores",
        "torch_threads": "torch threads",
        "omp_num_threads": "OMP_NUM_THREADS",
        "omp_wait_policy": "OMP_WAIT_POLICY",
        "torch": "torch",
        "python": "Python",
        "governor": "cpufreq governor",
        "load_average": "load average (1, 5, 15 min)",
    }
    rows = []
    for key, label in names.items():
        if key not in run.host:
            continue
        value = run.host[key]
        if isinstance(value, list):
            value = ", ".join(f"{x:.2f}" for x in value)
        rows.append([Cell(label), Cell("not set" if value is None else str(value))])
    return TableBlock(
        "host",
        "Host",
        ["", "value"],
        rows,
        "The machine that compressed, benchmarked and timed the pattern sets.",
    )


def spread_block(run: RunData) -> TableBlock | None:
    """Run-to-run spread of the runtime bench (95 % intervals), where it measured one."""
    bench = run.runtime_bench or {}
    sets = bench.get("sets")
    if isinstance(sets, dict):
        items = list(sets.items())
    else:
        items = [(s.get("name"), s) for s in sets or [] if isinstance(s, dict)]
    rows = []
    for name, s in items:
        ci = s.get("speedup_ci95") if isinstance(s, dict) else None
        if not isinstance(ci, list) or len(ci) < 2:
            continue
        rows.append([Cell(str(name)), fmt(s.get("speedup"), 2), Cell(f"{ci[0]:.2f} - {ci[1]:.2f}")])
    if not rows:
        return None
    return TableBlock(
        "spread",
        "Run-to-run spread of the measured speedups",
        ["pattern set", "speedup over dense", "95 % interval"],
        rows,
        "From `rt3lab bench runtime`: whole interleaved rounds resampled (bootstrap).",
    )


def flags_block(run: RunData) -> TableBlock | None:
    """Measurements the profiler flagged as odd after re-measuring (``flags``), or None."""
    flags = (run.profile or {}).get("flags") or []
    rows = [
        [Cell(str(f.get("variant", ""))), Cell(str(f.get("freq_khz", ""))),
         Cell(str(f.get("rule", ""))), Cell(str(f.get("detail", "")))]
        for f in flags
        if isinstance(f, dict)
    ]  # fmt: skip
    if not rows:
        return None
    return TableBlock(
        "flags",
        "Measurement flags",
        ["pattern set", "level (kHz)", "rule", "detail"],
        rows,
        "Odd measurements that stayed odd after re-measuring; the simulation used them as "
        "they are, so read the figures that depend on them with care.",
    )


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


def figure_sections(figures: list[Figure]) -> list[dict[str, Any]]:
    """Figures grouped by section, in order, each section stating its provenance once."""
    sections: dict[str, dict[str, Any]] = {}
    for f in figures:
        sec = sections.setdefault(
            f.section, {"title": f.section, "provenance": f.provenance, "figures": []}
        )
        sec["figures"].append(
            {
                "key": f.key,
                "title": f.title,
                "caption": f.caption,
                "extra": f.extra if f.provenance == sec["provenance"] else f.provenance,
                "b64": base64.b64encode(f.png).decode("ascii"),
                "file": f"figures/{f.key}.png",
            }
        )
    return list(sections.values())


def write_report(
    out: Path,
    title: str,
    source: str,
    tables: list[TableBlock],
    figures: list[Figure],
    notes: list[str] | None = None,
    verdict: Verdict | None = None,
) -> ReportFiles:
    """Write ``report.html`` (images embedded as base64 PNG), ``report.md`` and the PNGs:
    the verdict, then the tables, then the figures by section.

    Each file is written whole and renamed into place: a symbolic link at its name is
    replaced, never followed; a ``figures`` that is a link is refused (``RunDirError``)."""
    from contracts.files import output_dir, sub_dir, write_file
    from reports.run import RunDirError

    out = output_dir(out, RunDirError)
    fig_dir = sub_dir(out, "figures", RunDirError)
    paths = []
    for f in figures:
        path = write_file(fig_dir / f"{f.key}.png", f.png)
        paths.append(path)
    ctx = {
        "title": title,
        "source": source,
        "version": _version(),
        "tables": tables,
        "sections": figure_sections(figures),
        "notes": notes or [],
        "verdict": verdict,
    }
    html = write_file(out / "report.html", _template("report.html.j2").render(**ctx))
    md = write_file(out / "report.md", _template("report.md.j2").render(**ctx))
    return ReportFiles(html, md, paths)
