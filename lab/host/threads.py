"""Threads under contention: OpenMP's wait policy and torch's thread count.

torch's CPU build runs its intra-op threads on GNU OpenMP, whose workers spin while they
wait at a barrier. On a shared machine a descheduled worker keeps the others spinning
through their time slices, and a small model's thousands of short parallel regions each
pay for it. ``configure_openmp`` sets ``OMP_WAIT_POLICY=PASSIVE`` unless the user set it
(``lab.cli.main`` calls it before torch is imported): a worker that waits sleeps. That is a
trade, measured by ``scripts/contention.py --micro 30`` (training steps of a layer of the
demo's size, each configuration alone and beside one CPU hog per core;
``docs/contention-micro.json``, its figures in ``lab/profiling/README.md``): sleeping
workers make the quiet machine's short regions slower and keep a busy machine's time near
its quiet time, where spinning ones multiply it. ``default_threads`` keeps one thread per
usable core (the scheduler shares a busy machine per thread, so fewer threads would only give
other jobs our share).
"""

from __future__ import annotations

import os

#: The most threads any ``--threads`` option takes (the native engine's and runner's limit).
MAX_THREADS = 256


def configure_openmp() -> str:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless already set; returns the policy in force."""
    return os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads() -> int:
    """Torch threads for a run: ``OMP_NUM_THREADS`` when set, else the usable cores (at
    most ``MAX_THREADS``).

    >>> 1 <= default_threads() <= MAX_THREADS
    True
    """
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return min(int(env), MAX_THREADS)
    return min(usable_cores(), MAX_THREADS)


class ThreadCountError(ValueError):
    """A thread count outside 1..MAX_THREADS, or a list of them that does not parse."""


def check_threads(threads: int, option: str = "--threads") -> int:
    """``threads`` if it is in 1..MAX_THREADS, else ThreadCountError naming ``option``.

    >>> check_threads(4)
    4
    >>> check_threads(100000)
    Traceback (most recent call last):
    ...
    lab.host.threads.ThreadCountError: --threads: expected 1..256 threads, got 100000
    """
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise ThreadCountError(f"{option}: expected a whole number of threads, got {threads!r}")
    if not 1 <= threads <= MAX_THREADS:
        raise ThreadCountError(f"{option}: expected 1..{MAX_THREADS} threads, got {threads}")
    return threads


def parse_thread_counts(text: str, option: str = "--threads") -> list[int]:
    """``1`` or ``1,2,4``: distinct thread counts in the order given, each checked.

    >>> parse_thread_counts("1,2")
    [1, 2]
    >>> parse_thread_counts("2,x")
    Traceback (most recent call last):
    ...
    lab.host.threads.ThreadCountError: --threads: 'x' is not a whole number (expected e.g. 1,2)
    """
    counts: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit():
            raise ThreadCountError(f"{option}: {part!r} is not a whole number (expected e.g. 1,2)")
        n = check_threads(int(part), option)
        if n not in counts:
            counts.append(n)
    return counts


def threads_option(value: int | None) -> int | None:
    """A typer callback for ``--threads N``: refuses a count outside 1..MAX_THREADS while the
    command line is parsed, before any work (ThreadCountError: one line, exit 2).

    >>> threads_option(None), threads_option(2)
    (None, 2)
    """
    return None if value is None else check_threads(value)
