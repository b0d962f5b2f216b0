"""Progress: rich bars on a terminal, plain timestamped lines anywhere else."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from termout.console import console, is_terminal

# Seconds between two lines of one task in line mode (the first and last always print).
INTERVAL_ENV = "RT3LAB_PROGRESS_INTERVAL"


@dataclass
class LineTask:
    """One task of a LineProgress (the fields rich's Task has that callers read)."""

    id: int
    description: str
    total: float | None
    completed: float = 0.0
    fields: dict[str, Any] = field(default_factory=dict)
    last_line: float = -1.0
    printed_at: float | None = None


class LineProgress:
    """A drop-in for the part of ``rich.progress.Progress`` the CLIs use, printing lines.

    Each line reads ``[  12.3 s] dense training: 150/300 (50%) loss 4.21``; lines of one
    task are at least ``interval`` seconds apart, except the first and the last.
    """

    def __init__(
        self, stream: TextIO | None = None, interval: float | None = None, disable: bool = False
    ) -> None:
        self.stream = stream
        if interval is None:
            try:
                interval = float(os.environ.get(INTERVAL_ENV, "1.0"))
            except ValueError:
                interval = 1.0
        self.interval = interval
        self.disable = disable
        self.tasks: list[LineTask] = []
        self._start = time.monotonic()

    def __enter__(self) -> LineProgress:
        self._start = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: float | None = 100.0, **fields: Any) -> int:
        """Start a task; prints its first line."""
        task = LineTask(len(self.tasks), description, total, fields=dict(fields))
        task.completed = float(fields.pop("completed", 0.0) or 0.0)
        task.fields = fields
        self.tasks.append(task)
        self._line(task, force=True)
        return task.id

    def update(
        self,
        task_id: int,
        *,
        total: float | None = None,
        completed: float | None = None,
        advance: float | None = None,
        description: str | None = None,
        **fields: Any,
    ) -> None:
        """Move a task on; prints a line when the interval has passed or it is complete."""
        task = self.tasks[task_id]
        if total is not None:
            task.total = total
        if completed is not None:
            task.completed = completed
        if advance is not None:
            task.completed += advance
        if description is not None:
            task.description = description
        task.fields.update(fields)
        done = task.total is not None and task.completed >= task.total
        self._line(task, force=done)

    def advance(self, task_id: int, advance: float = 1) -> None:
        """Advance a task by ``advance`` steps."""
        self.update(task_id, advance=advance)

    def _line(self, task: LineTask, force: bool) -> None:
        if self.disable:
            return
        now = time.monotonic() - self._start
        if not force and task.last_line >= 0 and now - task.last_line < self.interval:
            return
        if force and task.printed_at == task.completed:
            return  # the same state twice
        task.last_line = now
        task.printed_at = task.completed
        done = f"{task.completed:g}"
        if task.total is not None:
            pct = 100.0 * task.completed / task.total if task.total else 100.0
            done = f"{task.completed:g}/{task.total:g} ({pct:.0f}%)"
        note = " ".join(str(v) for k, v in task.fields.items() if v)
        line = f"[{now:7.1f} s] {task.description}: {done}" + (f" {note}" if note else "")
        stream = self.stream or sys.stderr
        stream.write(line.rstrip() + "\n")
        stream.flush()


def progress(*columns: Any, disable: bool = False, **kwargs: Any) -> Any:
    """A rich Progress (with ``columns``) on a terminal's stderr, else a LineProgress."""
    if is_terminal(stderr=True):
        from rich.progress import Progress

        return Progress(*columns, console=console(stderr=True), disable=disable, **kwargs)
    return LineProgress(disable=disable)
