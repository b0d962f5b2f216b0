"""Threads under contention: OpenMP's wait policy and torch's thread count.

torch's CPU build runs its intra-op threads on GNU OpenMP, whose workers spin while they
wait at a barrier. On a shared machine a descheduled worker keeps the others spinning
through their time slices, and a small model's thousands of short parallel regions each
pay for it: ``scripts/contention.py --micro 30`` (training steps of a layer of the demo's
size, 2 threads, the 2-core machine at load average 16-17) took 12-43 s with the default
wait policy and 0.4-0.8 s with ``OMP_WAIT_POLICY=PASSIVE``; one thread took 0.5-1.5 s
either way (``docs/contention-micro.json``). So the wait policy, not the thread count,
made a busy machine slow compress far more than its load: ``configure_openmp`` sets
``PASSIVE`` unless the user set it (``lab.cli.main`` calls it before torch is imported),
and ``default_threads`` keeps one thread per usable core (the scheduler shares a busy
machine per thread, so fewer threads would only give other jobs our share).
"""

from __future__ import annotations

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


def default_threads() -> int:
    """Torch threads for a run: ``OMP_NUM_THREADS`` when set, else the usable cores.

    >>> default_threads() >= 1
    True
    """
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return usable_cores()
