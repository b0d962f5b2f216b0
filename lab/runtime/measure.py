"""Timing primitives for host latency: interleaved rounds, medians, bootstrap intervals.

Every comparison is measured interleaved in the same run (round-robin over the variants,
many rounds, medians), so a neighbour loading the CPU shifts all variants alike and the
ratios stay meaningful. Threads are pinned (``torch.set_num_threads`` and, where allowed,
``os.sched_setaffinity``). Used by the benches (``lab.bench``), the latency table
(``lab.compression.latency.table``) and profiling; what a bench measures lives there.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn


@dataclass
class Timing:
    """Median and 99th percentile of repeated timings, in milliseconds."""

    median_ms: float
    p99_ms: float
    n: int

    @classmethod
    def of(cls, seconds: list[float]) -> Timing:
        """Summarise a list of durations in seconds."""
        s = sorted(seconds)
        p99 = s[min(len(s) - 1, round(0.99 * (len(s) - 1)))]
        return cls(1e3 * _median(s), 1e3 * p99, len(s))


def _median(s: list[float]) -> float:
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def ratio_ci(
    num: list[float], den: list[float], per_round: int, draws: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95 % bootstrap interval of ``median(num) / median(den)`` for interleaved timings.

    Samples come in rounds of ``per_round`` (both lists in round order); whole rounds are
    resampled, the same rounds for both, so a round's shared conditions (a neighbour
    loading the CPU, a frequency change) stay paired.

    >>> ratio_ci([2.0, 2.2, 4.0, 4.4], [1.0, 1.1, 2.0, 2.2], per_round=2)
    (2.0, 2.0)
    """
    import numpy as np

    n = min(len(num), len(den)) // per_round
    if n == 0:
        raise ValueError("ratio_ci: no complete round of samples")
    a = np.asarray(num[: n * per_round]).reshape(n, per_round)
    b = np.asarray(den[: n * per_round]).reshape(n, per_round)
    picks = np.random.default_rng(seed).integers(0, n, size=(draws, n))
    ratios = np.median(a[picks].reshape(draws, -1), axis=1) / np.median(
        b[picks].reshape(draws, -1), axis=1
    )
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(lo), float(hi)


def pin_threads(threads: int) -> dict[str, Any]:
    """Use ``threads`` intra-op threads and, where allowed, pin the process to as many CPUs.

    The returned record holds ``restore``: call it to undo both (in-process callers).
    """
    before_threads = torch.get_num_threads()
    before_cpus = None
    torch.set_num_threads(threads)
    affinity = None
    if hasattr(os, "sched_getaffinity"):
        try:
            before_cpus = os.sched_getaffinity(0)
            cpus = sorted(before_cpus)[:threads]
            os.sched_setaffinity(0, cpus)
            affinity = cpus
        except OSError:
            affinity = None

    def restore() -> None:
        torch.set_num_threads(before_threads)
        if before_cpus is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, before_cpus)

    return {"threads": torch.get_num_threads(), "affinity": affinity, "restore": restore}


def host_freq_khz(root: str = "/") -> int | None:
    """The current CPU frequency: cpufreq's ``scaling_cur_freq``, else /proc/cpuinfo MHz."""
    base = Path(root)
    sysfs = base / "sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq"
    try:
        return int(sysfs.read_text().strip())
    except (OSError, ValueError):
        pass
    try:
        for line in (base / "proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("cpu mhz"):
                return round(float(line.split(":", 1)[1]) * 1000)
    except (OSError, ValueError):
        pass
    return None


def host_info(threads: dict[str, Any]) -> dict[str, Any]:
    """What machine and software measured."""
    from lab.host.cpu import cpu_model, simd_flags

    return {
        "hostname": platform.node(),
        "cpu": cpu_model(),
        "simd": simd_flags(),
        "cpus": os.cpu_count(),
        "freq_khz": host_freq_khz(),
        "torch": torch.__version__,
        **{k: v for k, v in threads.items() if k != "restore"},
    }


def interleaved(
    fns: dict[str, Callable[[], object]], rounds: int, per_round: int, warmup: int
) -> dict[str, Timing]:
    """Time every function ``rounds x per_round`` times, round-robin; returns medians/p99."""
    return timed_rounds({k: (_nothing, fn) for k, fn in fns.items()}, rounds, per_round, warmup)


def _nothing() -> None:
    return None


def make_inputs(module: nn.Module, batch: int, seq_len: int, seed: int = 0) -> dict[str, Any]:
    """Random token ids for ``module``: ``{"args": ..., "kwargs": ...}`` to call it with."""
    g = torch.Generator().manual_seed(seed)
    config = getattr(module, "config", None)
    vocab = getattr(config, "vocab_size", None)
    if vocab is None:
        embs = [m for m in module.modules() if isinstance(m, nn.Embedding)]
        vocab = embs[0].num_embeddings
    tokens = torch.randint(0, int(vocab), (batch, seq_len), generator=g)
    if hasattr(module, "base_model_prefix") or hasattr(config, "model_type"):
        return {"args": (), "kwargs": {"input_ids": tokens}}
    return {"args": (tokens,), "kwargs": {}}


Key = TypeVar("Key", bound=Hashable)


def timed_rounds(
    fns: dict[Key, tuple[Callable[[], object], Callable[[], object]]],
    rounds: int,
    per_round: int,
    warmup: int,
    first: dict[Key, list[float]] | None = None,
    raw: dict[Key, list[float]] | None = None,
    settle: int = 0,
) -> dict[Key, Timing]:
    """Like ``interleaved`` but each entry is ``(setup, call)``; setup runs untimed.

    ``first``, if given, also receives each round's first call after its setup (the
    first inference after a switch, on caches another variant left behind); ``raw``, if
    given, every sample in round order. ``settle`` calls after each round's setup run
    untimed: the samples are then of a variant serving on its own caches, as a serving
    loop (and the host profile, which warms each variant up) runs it between switches."""
    samples: dict[Key, list[float]] = {k: [] for k in fns}
    for setup, fn in fns.values():
        setup()
        for _ in range(warmup):
            fn()
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for k, (setup, fn) in fns.items():
                setup()
                for _ in range(settle):
                    fn()
                for i in range(per_round):
                    t0 = time.perf_counter()
                    fn()
                    took = time.perf_counter() - t0
                    samples[k].append(took)
                    if first is not None and i == 0:
                        first.setdefault(k, []).append(took)
    finally:
        if gc_was:
            gc.enable()
    if raw is not None:
        raw.update(samples)
    return {k: Timing.of(v) for k, v in samples.items()}
