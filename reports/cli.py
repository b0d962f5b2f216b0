"""``rt3lab report RUN_DIR --out DIR``: an HTML report and a Markdown summary of a run."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer()


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run directory (results.json) or a sweep's."),
    out: Path | None = typer.Option(
        None, "--out", help="Where to write report.html and report.md (default RUN_DIR/report)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a report already in --out (else refused)."
    ),
) -> None:
    """Write a self-contained HTML report and a Markdown summary of a run or a sweep."""
    from reports.report import build_report

    files = build_report(run_dir, out if out is not None else run_dir / "report", overwrite)
    typer.echo(f"report: {files.html}")
    typer.echo(f"summary: {files.markdown}")
