"""Host latency measurements of a reconfigurable model, its anchors and its switches.

Every comparison is measured interleaved in the same run (round-robin over the variants,
many rounds, medians), so a neighbour loading the CPU shifts all variants alike and the
ratios stay meaningful. Threads are pinned (``torch.set_num_threads`` and, where allowed,
``os.sched_setaffinity``).
"""

from __future__ import annotations

import contextlib
import copy
import gc
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lab.runtime import kernels as K
from lab.runtime import native
from lab.runtime.pattern_set import PatternSet
from lab.runtime.reconfigurable import ReconfigurableModel, SwitchableLinear


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


def layer_inputs(rm: ReconfigurableModel, inputs: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Input shape each pruned Linear layer sees in one forward."""
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str) -> Callable[..., None]:
        def hook(_mod: nn.Module, args: tuple[Any, ...]) -> None:
            shapes.setdefault(name, tuple(args[0].shape))  # returns None: args unchanged

        return hook

    hooks = [
        m.register_forward_pre_hook(record(name))
        for name, m in rm.module.named_modules()
        if isinstance(m, SwitchableLinear)
    ]
    try:
        rm(*inputs["args"], **inputs["kwargs"])
    finally:
        for h in hooks:
            h.remove()
    return shapes


def masked_state(module: nn.Module, ps: PatternSet) -> dict[str, torch.Tensor]:
    """The pruned layers' weights with the set's masks applied (what RT3 loads per set)."""
    mods = dict(module.named_modules())
    return {f"{n}.weight": mods[n].weight.detach() * p.mask() for n, p in ps.layers.items()}


def switch_anchors(module: nn.Module, sets: list[PatternSet], reps: int) -> dict[str, Timing]:
    """RT3-style switching on a plain model, alternating between two sets.

    ``mask-reapply``: every pruned weight rewritten as ``torch.mul(w0, mask, out=w)`` from a
    kept copy of the backbone. ``load_state_dict``: precomputed masked weights copied in.
    """
    plain = copy.deepcopy(module).eval()
    mods = dict(plain.named_modules())
    pair = sets[:2] if len(sets) > 1 else sets * 2
    layers = sorted(set(pair[0].layers) | set(pair[1].layers))
    w0 = {n: mods[n].weight.detach().clone() for n in layers}
    masks = [
        {
            n: (p.layers[n].mask() if n in p.layers else torch.ones_like(w0[n], dtype=torch.bool))
            for n in layers
        }
        for p in pair
    ]
    states = [{f"{n}.weight": w0[n] * m[n] for n in layers} for m in masks]
    weights = {n: mods[n].weight for n in layers}
    state = [0]

    def reapply() -> None:
        state[0] ^= 1
        m = masks[state[0]]
        with torch.no_grad():
            for n in layers:
                torch.mul(w0[n], m[n], out=weights[n])

    def load() -> None:
        state[0] ^= 1
        plain.load_state_dict(states[state[0]], strict=False)

    return interleaved({"mask-reapply": reapply, "load_state_dict": load}, reps, 1, 1)


def compact_switches(rm: ReconfigurableModel, reps: int) -> Timing:
    """Durations reported by ``switch`` while cycling through every set."""
    names = rm.set_names
    seconds = [rm.switch(names[i % len(names)]) for i in range(reps)]
    return Timing.of(seconds)


def timed_rounds(
    fns: dict[str, tuple[Callable[[], object], Callable[[], object]]],
    rounds: int,
    per_round: int,
    warmup: int,
    first: dict[str, list[float]] | None = None,
    raw: dict[str, list[float]] | None = None,
) -> dict[str, Timing]:
    """Like ``interleaved`` but each entry is ``(setup, call)``; setup runs untimed.

    ``first``, if given, also receives each round's first call after its setup (the
    first inference after a switch, on caches another variant left behind); ``raw``, if
    given, every sample in round order."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
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


class _Stub(K.Kernel):
    """A pruned Linear that answers instantly (zeros, kept per shape): times the rest."""

    def __init__(self, out_features: int):
        self.out_features = out_features
        self._zeros: dict[tuple[int, ...], torch.Tensor] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = (*x.shape[:-1], self.out_features)
        if shape not in self._zeros:
            self._zeros[shape] = torch.zeros(shape, dtype=x.dtype)
        return self._zeros[shape]


def _stub_forms(rm: ReconfigurableModel) -> dict[str, K.Kernel]:
    """Forms that make every pruned Linear of ``rm`` answer instantly."""
    return {
        name: _Stub(m.out_features)
        for name, m in rm.module.named_modules()
        if isinstance(m, SwitchableLinear)
    }


def native_dense_forms(rm: ReconfigurableModel) -> dict[str, K.Kernel] | None:
    """The pruned Linears of ``rm`` with every weight kept, run by the native kernel: the
    dense model on the same kernel as the sets (a control that separates what sparsity buys
    from what the kernel buys). None where the kernel is unavailable."""
    from lab.runtime.pattern_set import LayerPattern

    if native.kernel() is None:
        return None
    forms: dict[str, K.Kernel] = {}
    for name, m in rm.module.named_modules():
        if isinstance(m, SwitchableLinear):
            ones = torch.ones(m.weight.shape, dtype=torch.bool)
            full = LayerPattern.from_mask(name, ones, native.BLOCK_ROWS, native.BLOCK_ROWS)
            bias = None if m.bias is None else m.bias.detach()
            forms[name] = K.NativeBlockColumnLinear.build(m.weight.detach(), bias, full)
    return forms


def amdahl_limit(total_ms: float, rest_ms: float, limit: float) -> float:
    """The speedup bound of a run taking ``total_ms`` whose ``rest_ms`` does not shrink
    while the remainder shrinks at most by ``limit`` (the rest is capped at the total).

    >>> amdahl_limit(10.0, 1.0, 3.0)
    2.5
    """
    rest = min(rest_ms, total_ms)
    return total_ms / (rest + (total_ms - rest) / limit)


def _activate(rm: ReconfigurableModel, forms: dict[str, K.Kernel]) -> None:
    """Make ``forms`` the active forms (a bench-only set, not one of the model's)."""
    rm.switch(None)
    rm._active.forms = forms


def _engine_row(
    e2e: dict[str, Timing],
    raw: dict[str, list[float]],
    name: str,
    torch_dense_ms: float,
    limit: float,
    per_round: int,
) -> dict[str, Any]:
    """One set on the native engine: its fraction of the FLOP limit against PyTorch dense and
    against the engine's own dense (kernel-matched), with 95 % intervals."""
    t = e2e[f" engine {name}"].median_ms
    ed = e2e[" engine dense"].median_ms
    ci_t = ratio_ci(raw["dense"], raw[f" engine {name}"], per_round)
    ci_e = ratio_ci(raw[" engine dense"], raw[f" engine {name}"], per_round)
    return {
        "latency_ms": t,
        "speedup_over_torch_dense": torch_dense_ms / t,
        "torch_dense_speedup_over_limit": torch_dense_ms / t / limit,
        "torch_dense_speedup_over_limit_ci95": [ci_t[0] / limit, ci_t[1] / limit],
        "speedup_over_engine_dense": ed / t,
        "engine_dense_speedup_over_limit": ed / t / limit,
        "engine_dense_speedup_over_limit_ci95": [ci_e[0] / limit, ci_e[1] / limit],
    }


def _executorch_row(
    e2e: dict[str, Timing], raw: dict[str, list[float]], name: str, per_round: int
) -> dict[str, Any]:
    """One set (compact PyTorch and, when there, the engine) against the dense model on
    ExecuTorch XNNPACK: speedup over it with a 95 % interval."""
    et = e2e[" executorch dense"].median_ms
    row: dict[str, Any] = {}
    for how, key in (("compact", name), ("engine", f" engine {name}")):
        if key in e2e:
            lo, hi = ratio_ci(raw[" executorch dense"], raw[key], per_round)
            row[f"{how}_speedup"] = et / e2e[key].median_ms
            row[f"{how}_speedup_ci95"] = [lo, hi]
    return row


def run_bench(
    base: nn.Module,
    sets: list[PatternSet],
    batch: int = 1,
    seq_len: int = 35,
    rounds: int = 10,
    per_round: int = 3,
    warmup: int = 3,
    switch_reps: int = 2000,
    anchor_switch_reps: int = 10,
    anchors: bool = True,
    layers: bool = True,
    progress: Callable[[str], None] = lambda _msg: None,
    layout: str = "auto",
    executorch: bool = False,
    engine_threads: int = 1,
) -> dict[str, Any]:
    """Measure dense, every set, per-layer forms, anchors, switches and memory.

    ``base`` is the model with the backbone weights loaded (left untouched: the runtime and
    every anchor work on copies). ``executorch``: also the dense model on ExecuTorch's
    XNNPACK backend (``lab.runtime.anchors``) in the same rounds; the engine on
    ``engine_threads``."""
    base = base.eval()
    inputs = make_inputs(base, batch, seq_len)
    args, kwargs = inputs["args"], inputs["kwargs"]
    progress("preparing the compact forms")
    t0 = time.perf_counter()
    # the auto executor picks each layer's form by timing it on this workload's rows
    rm = ReconfigurableModel(
        copy.deepcopy(base), sets, layout=layout, rows_hint=batch * seq_len, engine=False
    )
    prepare_s = time.perf_counter() - t0
    from lab.runtime.reconfigurable import _engine_for

    eng = _engine_for(base, sets, threads=engine_threads)  # whole model in C, or None

    def run() -> object:
        return rm(*args, **kwargs)

    progress("end-to-end latency: dense, every set and the unpruned rest, interleaved")
    variants = {"dense": (lambda: rm.switch(None), run)}
    for ps in sets:
        variants[ps.name] = (lambda n=ps.name: rm.switch(n), run)
    stubs = _stub_forms(rm)
    variants[" rest"] = (lambda: _activate(rm, stubs), run)  # the space: never a set name
    control = native_dense_forms(rm)
    if control is not None:
        variants[" native dense"] = (lambda: _activate(rm, control), run)
    if eng is not None:
        variants[" engine dense"] = (lambda: eng.select(None), lambda: eng(*args))
        for ps in sets:
            variants[f" engine {ps.name}"] = (lambda n=ps.name: eng.select(n), lambda: eng(*args))
    et_info: dict[str, Any] | None = None
    if executorch:
        from lab.runtime.anchors import executorch_dense

        progress("ExecuTorch: lowering the dense model to XNNPACK")
        et_run, et_info = executorch_dense(base, inputs, torch.get_num_threads())
        variants[" executorch dense"] = (_nothing, et_run)
    firsts: dict[str, list[float]] = {}
    raw: dict[str, list[float]] = {}
    e2e = timed_rounds(variants, rounds, per_round, warmup, first=firsts, raw=raw)
    rm.switch(None)
    dense = e2e["dense"]
    # Amdahl: the unpruned rest (the model with every pruned Linear answering instantly)
    # does not shrink; the pruned layers' time shrinks at most by the FLOP limit.
    rest = min(e2e[" rest"].median_ms, dense.median_ms)
    result_sets: dict[str, Any] = {}
    for ps in sets:
        dense_macs, set_macs = rm.macs_per_token(ps.name)
        limit = dense_macs / max(1, set_macs)
        t = e2e[ps.name]
        speedup = dense.median_ms / t.median_ms
        ci = ratio_ci(raw["dense"], raw[ps.name], per_round)
        matched: dict[str, Any] = {}
        if control is not None:
            nd = e2e[" native dense"].median_ms
            mci = ratio_ci(raw[" native dense"], raw[ps.name], per_round)
            matched = {
                "speedup_over_native_dense": nd / t.median_ms,
                "native_dense_speedup_over_limit": nd / t.median_ms / limit,
                "native_dense_speedup_over_limit_ci95": [mci[0] / limit, mci[1] / limit],
                # the same bound as amdahl_limit, from the kernel-matched dense run
                "native_dense_amdahl_limit": amdahl_limit(nd, rest, limit),
            }
        if eng is not None:
            matched["engine"] = _engine_row(e2e, raw, ps.name, dense.median_ms, limit, per_round)
        if et_info is not None:
            matched["executorch_dense"] = _executorch_row(e2e, raw, ps.name, per_round)
        amdahl = amdahl_limit(dense.median_ms, rest, limit)
        result_sets[ps.name] = {
            "density": ps.density,
            "latency_ms": t.median_ms,
            "latency_p99_ms": t.p99_ms,
            "first_after_switch_ms": Timing.of(firsts[ps.name]).median_ms,
            "dense_latency_ms": dense.median_ms,
            "speedup": speedup,
            "speedup_ci95": list(ci),
            "flop_speedup_limit": limit,
            "speedup_over_limit": speedup / limit,
            "speedup_over_limit_ci95": [ci[0] / limit, ci[1] / limit],
            "amdahl_limit": amdahl,
            "speedup_over_amdahl_limit": speedup / amdahl,
            "pruned_macs_per_token": {"dense": dense_macs, "set": set_macs},
            **matched,
        }
    out: dict[str, Any] = {
        "workload": {"batch": batch, "seq_len": seq_len},
        "layout": rm.layout,
        "prepare_s": prepare_s,
        "dense_latency_ms": dense.median_ms,
        "dense_latency_p99_ms": dense.p99_ms,
        "dense_first_after_switch_ms": Timing.of(firsts["dense"]).median_ms,
        "unpruned_dense_ms": rest,
        "native_dense_latency_ms": (
            e2e[" native dense"].median_ms if control is not None else None
        ),
        "native_kernel": native.status(),
        "engine_dense_latency_ms": e2e[" engine dense"].median_ms if eng is not None else None,
        "sets": result_sets,
    }
    if et_info is not None:
        etd = e2e[" executorch dense"].median_ms
        out["executorch_dense"] = {
            **et_info,
            "latency_ms": etd,
            "latency_p99_ms": e2e[" executorch dense"].p99_ms,
            "torch_dense_speedup_over_it": etd / dense.median_ms,
            "engine_dense_speedup_over_it": (
                etd / e2e[" engine dense"].median_ms if eng is not None else None
            ),
        }
    if anchors:
        for ps in sets:
            progress(f"anchors for set {ps.name!r}: mask per call, BSR addmm, pre-masked")
            built = {
                ex: ReconfigurableModel(copy.deepcopy(base), [ps], executor=ex, active=ps.name)
                for ex in ("mask-per-call", "bsr", "premasked")
            }
            fns = {"compact": (lambda n=ps.name: rm.switch(n), run)}
            for ex, m in built.items():
                fns[ex] = (lambda: None, lambda m=m: m(*args, **kwargs))
            got = timed_rounds(fns, max(2, rounds // 2), per_round, 1)
            c = got["compact"].median_ms
            result_sets[ps.name]["anchors"] = {
                ex: {"latency_ms": got[ex].median_ms, "compact_speedup": got[ex].median_ms / c}
                for ex in built
            }
            result_sets[ps.name]["anchors"]["compact_latency_ms"] = c
            del built, fns
            gc.collect()
    if layers:
        progress("per-layer latency")
        shapes = layer_inputs(rm, inputs)
        mods = dict(rm.module.named_modules())
        per_layer: dict[str, Any] = {}
        for name in rm.layer_names:
            if name not in shapes:
                continue
            x = torch.randn(shapes[name])
            mod = mods[name]
            fns = {"dense": (lambda: None, lambda f=mod.dense, x=x: f(x))}
            for ps in sets:
                if name in rm.forms[ps.name]:
                    fns[ps.name] = (lambda: None, lambda f=rm.forms[ps.name][name], x=x: f(x))
            with torch.inference_mode():
                got = timed_rounds(fns, max(2, rounds // 2), per_round, 1)
            d = got["dense"].median_ms
            per_layer[name] = {
                "shape": list(mod.weight.shape),
                "input_shape": list(shapes[name]),
                "dense_ms": d,
                "sets": {
                    k: {
                        "ms": v.median_ms,
                        "speedup": d / v.median_ms,
                        "form": rm.forms[k][name].kind,
                        "density": next(p for p in sets if p.name == k).layers[name].density,
                    }
                    for k, v in got.items()
                    if k != "dense"
                },
            }
        out["layers"] = per_layer
    progress("switching")
    sw = compact_switches(rm, switch_reps)
    out["switch_ms_median"] = sw.median_ms
    out["switch_ms_p99"] = sw.p99_ms
    if anchors:
        anc = switch_anchors(base, sets, anchor_switch_reps)
        out["switch_anchors"] = {
            k: {
                "median_ms": v.median_ms,
                "p99_ms": v.p99_ms,
                "over_compact_median": v.median_ms / sw.median_ms,
            }
            for k, v in anc.items()
        }
    out["memory_bytes"] = rm.memory().as_dict()
    return out
