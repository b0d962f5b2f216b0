"""Consoles sized for where the output goes, and tables as rich, or as CSV."""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

# Width of a console whose stream is not a terminal: wide enough that no name or number
# is ever wrapped or cut (rich tables take only the width their cells need).
PIPE_WIDTH = 100_000
FORMATS = ("table", "csv")


class FormatError(ValueError):
    """An output format that is not one of FORMATS."""


def is_terminal(stderr: bool = False) -> bool:
    """True when stdout (or stderr) is an interactive terminal."""
    stream = sys.stderr if stderr else sys.stdout
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def console(stderr: bool = False, quiet: bool = False) -> Console:
    """A rich Console: the terminal's width on a terminal, unbounded in a pipe or file."""
    from rich.console import Console

    if is_terminal(stderr):
        return Console(stderr=stderr, quiet=quiet)
    return Console(stderr=stderr, quiet=quiet, width=PIPE_WIDTH, soft_wrap=True)


def format_option() -> Any:
    """The ``--format table|csv`` option every table-printing command takes."""
    import typer

    return typer.Option(
        "table",
        "--format",
        metavar="table|csv",
        help="table (rich) or csv (one header row).",
        callback=check_format,
    )


def check_format(fmt: str) -> str:
    """``fmt`` when it is one of FORMATS; else FormatError (checked before any work)."""
    if fmt not in FORMATS:
        raise FormatError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    return fmt


def _plain(cell: Any) -> str:
    from rich.text import Text

    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        return Text.from_markup(cell).plain
    return str(cell)


_GROUPED = re.compile(r"-?\d{1,3}(,\d{3})+(\.\d+)?")


def _csv_cell(cell: Any) -> str:
    """A cell's plain text; a number written with thousands separators loses them."""
    text = _plain(cell)
    return text.replace(",", "") if _GROUPED.fullmatch(text) else text


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV with one header row; cells as plain text, numbers without thousands separators."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(columns))
    for row in rows:
        writer.writerow([_csv_cell(c) for c in row])
    return buf.getvalue()


def print_table(table: Table, fmt: str = "table", out: Console | None = None) -> None:
    """Print a rich Table, or its header and cells as CSV when ``fmt`` is ``csv``."""
    check_format(fmt)
    if fmt == "csv":
        columns = [_plain(c.header) for c in table.columns]
        cells = [list(c.cells) for c in table.columns]
        rows = [[col[i] for col in cells] for i in range(table.row_count)]
        sys.stdout.write(csv_text(columns, rows))
        sys.stdout.flush()
        return
    (out or console()).print(table)
