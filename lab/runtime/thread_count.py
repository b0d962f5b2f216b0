"""The thread count a bundle's sets were searched at, against the one they run at.

``compress --estimator measured`` times its latency table (``latency_table.json``) with the
native engine on ``--threads`` threads and records the count in the bundle's provenance
(``provenance.latency_table.threads``). Sets chosen to meet deadlines at one count need not
meet them at another (more threads: shorter latencies, and the pruned layers' share of
them changes), so a run at another count says so, once, as a :class:`ThreadsWarning`.

>>> from types import SimpleNamespace
>>> b = SimpleNamespace(provenance={"latency_table": {"threads": 4}}, path="B")
>>> searched_threads(b)
4
>>> other_threads_note(b, 1)
'bundle B: its sets were searched with a latency table measured at 4 threads; this run uses 1'
>>> other_threads_note(b, 4) is None
True
"""

from __future__ import annotations

import warnings
from typing import Any


class ThreadsWarning(UserWarning):
    """A bundle searched at one thread count runs at another."""


def searched_threads(bundle: Any) -> int | None:
    """The thread count of the latency table the bundle's sets were searched with, or None
    (no measured table: ``--estimator op-count`` or ``profile``)."""
    table = (getattr(bundle, "provenance", None) or {}).get("latency_table") or {}
    threads = table.get("threads") if isinstance(table, dict) else None
    return threads if isinstance(threads, int) and not isinstance(threads, bool) else None


def other_threads_note(bundle: Any, threads: int) -> str | None:
    """One line when ``bundle`` was searched at another thread count than ``threads``."""
    searched = searched_threads(bundle)
    if searched is None or searched == threads:
        return None
    return (
        f"bundle {getattr(bundle, 'path', None) or '(in memory)'}: its sets were searched with "
        f"a latency table measured at {searched} threads; this run uses {threads}"
    )


def warn_other_threads(bundle: Any, threads: int) -> str | None:
    """Warn (:class:`ThreadsWarning`, one line in the CLI) when ``bundle`` was searched at
    another thread count; returns the note, or None."""
    note = other_threads_note(bundle, threads)
    if note is not None:
        warnings.warn(note, ThreadsWarning, stacklevel=2)
    return note
