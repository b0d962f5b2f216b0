"""Threads under contention: OpenMP's wait policy and torch's thread count.

On a shared machine, torch's OpenMP workers that spin while they wait for each other
(libgomp's default) fight the other jobs for the cores: a worker that is descheduled holds
every other worker spinning at the next barrier, and a busy machine slows a run far more
than the load explains. ``configure_openmp`` sets ``OMP_WAIT_POLICY=PASSIVE`` (workers
sleep instead of spinning) unless the user set it; it must run before torch (and with it
OpenMP) is imported, which ``lab.cli.main`` does first. ``default_threads`` gives torch
the cores this process may use less the load the other jobs put on them, at least one.
"""

from __future__ import annotations

import math
import os


def configure_openmp() -> str:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless already set; returns the policy in force."""
    return os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def others_running() -> float:
    """Runnable tasks right now besides this one (``procs_running`` of ``/proc/stat``), the
    instantaneous load the 1-minute average lags behind; 0 where unknown."""
    try:
        for line in open("/proc/stat", encoding="ascii"):  # noqa: SIM115
            if line.startswith("procs_running"):
                return max(0.0, float(line.split()[1]) - 1)
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def default_threads(load: float | None = None, cores: int | None = None) -> int:
    """Torch threads for a run: the usable cores less the load others put on them (the
    larger of the 1-minute load average and the runnable tasks now), rounded, at least 1
    (``OMP_NUM_THREADS``, when set, wins).

    >>> default_threads(load=0.2, cores=2), default_threads(load=1.6, cores=2)
    (2, 1)
    >>> default_threads(load=9.0, cores=16), default_threads(load=40.0, cores=16)
    (7, 1)
    """
    env = os.environ.get("OMP_NUM_THREADS")
    if env and env.isdigit() and int(env) > 0 and load is None and cores is None:
        return int(env)
    n = usable_cores() if cores is None else cores
    if load is None:
        try:
            load = max(os.getloadavg()[0], others_running())
        except (AttributeError, OSError):
            load = others_running()
    return max(1, min(n, math.floor(n - load + 0.5)))
