"""Terminal output that survives a pipe: every CLI prints tables and progress through here.

On a terminal, rich tables and progress bars as usual. When the stream is not a terminal
(a pipe, a log file), nothing is ever cut: tables are laid out on an unbounded width, and
progress is plain lines, one per step, each with the elapsed time. ``--format csv`` prints a
table as CSV instead.

This package imports nothing from the rest of rt3lab, so every package may use it; rich is
imported only when something is printed.

>>> from termout import csv_text
>>> print(csv_text(["name", "value"], [["odroid-xu4", "1,853,362"]]), end="")
name,value
odroid-xu4,1853362
"""

from termout.console import (
    FORMATS,
    PIPE_WIDTH,
    console,
    csv_text,
    format_option,
    is_terminal,
    print_table,
)
from termout.progress import LineProgress, progress

__all__ = [
    "FORMATS",
    "PIPE_WIDTH",
    "LineProgress",
    "console",
    "csv_text",
    "format_option",
    "is_terminal",
    "print_table",
    "progress",
]
