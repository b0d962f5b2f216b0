"""The big cluster of a board's CPUs: where ``rt3lab profile --adb`` runs the model.

A phone's cpufreq policies are its clusters (``policyN`` clocks the CPUs in its
``affected_cpus``). The big one, where an inference runs fastest, is the policy with the
highest ``cpuinfo_max_freq``; on a tie, the one with more CPUs, then the later one (prime
cores come last). ``--policy`` chooses another.
"""

from __future__ import annotations

import re

from lab.profiling.board.cpufreq import CPU
from lab.profiling.board.sysfs import Files, SysfsError


def big_cluster_policy(files: Files) -> str | None:
    """The name (``policyN``) of the big cluster's cpufreq policy in ``files``' tree, or
    None where it has no ``cpufreq/policyN`` directory with a readable maximum."""
    best: tuple[int, int, int] | None = None
    for name in files.listdir(f"{CPU}/cpufreq"):
        if not re.fullmatch(r"policy\d+", name):
            continue
        d = f"{CPU}/cpufreq/{name}"
        try:
            top = int(files.read(f"{d}/cpuinfo_max_freq").split()[0])
        except (SysfsError, ValueError, IndexError):
            continue
        try:
            cpus = len(files.read(f"{d}/affected_cpus").split())
        except SysfsError:
            cpus = 0
        key = (top, cpus, int(name[6:]))
        best = key if best is None or key > best else best
    return None if best is None else f"policy{best[2]}"


def threads_for(cpus: list[int]) -> int:
    """One thread per CPU of the cluster (1 where its CPUs are unknown).

    >>> threads_for([4, 5, 6, 7]), threads_for([])
    (4, 1)
    """
    return max(1, len(set(cpus)))
