"""``rt3lab bench runtime``: host latency of the runtime on every pattern set, its anchors
and its switches.

The figures lead with the runtime, the default path the demo, ``evaluate`` and ``profile``
run: ``ReconfigurableModel``'s ``auto`` executor, the whole model on the native engine (or,
where the engine cannot run the model, the torch reference; ``runtime`` says which and
``runtime_note`` why). Measured on this machine, with warm-up, interleaved repetitions,
medians and p99, and pinned threads: the dense model and each set end to end, speedup over
the runtime's own dense model (with a 95 % bootstrap interval over the interleaved rounds)
next to the FLOP-reduction limit of the pruned layers, the first inference after a switch
(caches hold the previous variant's weights), the switch time and memory.

Then the named anchors (``lab.bench.anchors``), the same model and sets run other ways:
the torch reference's per-layer forms, the per-layer C kernel, ExecuTorch XNNPACK, and per
set x*mask per call, PyTorch BSR and pre-masked dense; per layer the torch reference's
forms; and RT3-style switching (mask re-application, ``load_state_dict``).
``--synthetic rt3|small|distilbert`` measures random-weight models with random nested
block-column sets instead of a bundle.

A width, depth or early-exit bundle runs the same way, each variant against the runtime's
dense model and its FLOP limit over the whole model (``lab.bench.scheme_variants``: an
early-exit set once per exit, the exit forced; ``flop_limit`` says how the limit counts).
Depth and early-exit sets carry exits, which the anchors and the per-layer times do not
run: they are skipped, and said so.

``bench_runtime(RuntimeBenchOptions(...))`` is the command as a function: it returns a
``RuntimeBenchResult`` whose ``as_dict()`` is what ``--json`` prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from contracts import strict_json
from lab.bench.source import BenchInputError, SourceOptions, densities

if TYPE_CHECKING:
    from torch import nn

    from lab.bench.anchors import Runs, Subject
    from lab.runtime.measure import Timing
    from lab.runtime.pattern_set import PatternSet
    from lab.runtime.reconfigurable import ReconfigurableModel

app = typer.Typer()

PROVENANCE_KEY = "host-runtime-bench"
LAYOUTS = ("auto", "segments", "views")
EARLY_EXIT_PROFILE = (
    "--profile-out: set {!r} exits early, its latency is a distribution over its exits, "
    "not one figure; rt3lab profile --bundle writes it"
)


@dataclass
class RuntimeBenchOptions(SourceOptions):
    """What ``rt3lab bench runtime`` measures and how (its options, by the same names)."""

    threads: int = 1  # torch's intra-op threads and the engine's, for the whole bench
    thread_counts: tuple[int, ...] = ()  # more counts: the engine alone at each, interleaved
    seq_len: int = 35
    batch: int = 1
    rounds: int = 10
    per_round: int = 3
    warmup: int = 3
    switch_reps: int = 2000
    anchor_switch_reps: int = 10
    anchors: bool = True
    layers: bool = True
    executorch: bool | None = None  # None: with the anchors, when installed
    layout: str = "auto"

    def command(self) -> str:
        """The command line that measures the same (the options that name the workload)."""
        named = (
            ("bundle", self.bundle), ("synthetic", self.synthetic),
            ("threads", ",".join(map(str, self.thread_counts or (self.threads,)))),
            ("seq_len", self.seq_len), ("batch", self.batch),
        )  # fmt: skip
        opts = [f"--{k.replace('_', '-')} {v}" for k, v in named if v is not None]
        return "rt3lab bench runtime " + " ".join(opts)


@dataclass
class RuntimeBenchResult:
    """What ``rt3lab bench runtime`` measured; ``as_dict()`` is its ``--json``.

    The top-level figures are the runtime's (``runtime``: ``engine`` or ``torch``);
    ``anchors`` describes each anchor (or why it was skipped) and ``sets[name]["anchors"]``
    holds its figures per set. A width, depth or early-exit bundle's rows count their FLOP
    limit over the whole model, as ``flop_limit`` says (``lab.bench.scheme_variants``)."""

    source: dict[str, Any]
    host: dict[str, Any]
    workload: dict[str, int]
    runtime: str
    runtime_note: str
    prepare_s: float
    dense_latency_ms: float
    dense_latency_p99_ms: float
    dense_first_after_switch_ms: float
    sets: dict[str, dict[str, Any]]
    switch_ms_median: float
    switch_ms_p99: float
    memory_bytes: dict[str, Any]
    anchors: dict[str, dict[str, Any]] = field(default_factory=dict)
    layers: dict[str, Any] | None = None
    switch_anchors: dict[str, Any] | None = None
    engine_threads: int = 1
    engine_by_threads: dict[str, Any] | None = None
    serving: dict[str, Any] | None = None  # lab.bench.serving.serving_overhead
    flop_limit: str | None = None  # a width, depth or early-exit bundle's rule for the limit
    command: str = ""
    entries: dict[str, Any] = field(default_factory=dict, repr=False)  # bundle records

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: every field but ``entries``, absent parts left out."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "entries"}
        return {k: v for k, v in out.items() if v is not None}


def _quiet(_message: str) -> None:
    return None


def bench_runtime(
    options: RuntimeBenchOptions, progress: Callable[[str], None] = _quiet
) -> RuntimeBenchResult:
    """Measure the runtime and its anchors as ``options`` say (threads pinned for the run
    and restored after: in-process callers such as the demo keep theirs)."""
    import torch

    from lab.bench.executorch import executorch_installed
    from lab.runtime.measure import host_info, pin_threads

    if options.layout not in LAYOUTS:
        raise BenchInputError(f"--layout: {options.layout!r} is not one of {list(LAYOUTS)}")
    executorch = options.executorch
    if executorch is None:  # an anchor: on with the anchors, when installed
        executorch = options.anchors and executorch_installed()
    elif executorch and not executorch_installed():
        raise BenchInputError(
            "--executorch: the 'executorch' package is not installed "
            "(pip install 'rt3lab[anchors]')"
        )
    base, sets, entries, source = load_source(options)
    pinned = pin_threads(options.threads)
    torch.manual_seed(options.seed)
    try:
        figures = measure_runtime(
            base, sets, options, executorch, progress, source.get("scheme", "rt3")
        )
    finally:
        pinned["restore"]()
    by_threads = None
    if len(options.thread_counts) > 1:
        from lab.runtime.thread_scaling import engine_by_threads

        o = options
        peer = None
        if executorch:  # the anchor a user would pick instead, at every count too
            from lab.bench.executorch import executorch_by_threads
            from lab.runtime.measure import make_inputs

            peer = executorch_by_threads(base, make_inputs(base, o.batch, o.seq_len))
        by_threads = engine_by_threads(
            base, sets, list(o.thread_counts), o.batch, o.seq_len, o.rounds, o.per_round,
            o.warmup, progress, peer,
        )  # fmt: skip
    return RuntimeBenchResult(
        source=source,
        host=host_info(pinned),
        command=options.command(),
        entries=entries,
        engine_threads=options.threads,
        engine_by_threads=by_threads,
        **figures,
    )


def load_source(
    options: RuntimeBenchOptions,
) -> tuple[nn.Module, list[PatternSet], dict[str, Any], dict[str, Any]]:
    """(base module with backbone loaded, sets, bundle records by set name, what it is)."""
    kind, seed = options.check(), options.seed
    if kind is not None:
        from lab.runtime import synthetic as syn

        if kind not in syn.SYNTHETIC_KINDS:
            raise BenchInputError(
                f"--synthetic: {kind!r} is not one of {list(syn.SYNTHETIC_KINDS)}"
            )
        wanted = densities(options.densities)
        model = syn.synthetic_model(kind, seed=seed)
        sets = syn.nested_block_column_sets(syn.prunable(model, kind), wanted, seed=seed)
        return model, sets, {}, {"synthetic": kind, "weights": "random", "seed": seed}
    from lab.runtime.bundle import Bundle, runs_as_sets
    from lab.runtime.reconfigurable import module_from_bundle

    b = runs_as_sets(Bundle.load(options.bundle), "rt3lab bench runtime")
    source = {"bundle": str(options.bundle), "model": b.model["kind"], "scheme": b.scheme}
    return module_from_bundle(b), list(b.sets.values()), dict(b.entries), source


@dataclass
class Measured:
    """Timings of one set of interleaved rounds: medians, every sample in round order, each
    round's first call after its switch, and how many calls a round makes per variant."""

    timings: dict[str, Timing]
    raw: dict[str, list[float]]
    firsts: dict[str, list[float]]
    per_round: int

    def ms(self, key: str) -> float:
        """Median milliseconds of variant ``key``."""
        return self.timings[key].median_ms

    def ratio(self, num: str, den: str) -> tuple[float, list[float]]:
        """``median(num) / median(den)`` and its 95 % bootstrap interval over the rounds."""
        from lab.runtime.measure import ratio_ci

        lo, hi = ratio_ci(self.raw[num], self.raw[den], self.per_round)
        return self.ms(num) / self.ms(den), [lo, hi]

    def row(self, dense: str, run: str, limit: float, rest: str | None = None) -> dict[str, Any]:
        """``run``'s figures against ``dense``: latencies, the first call after its switch,
        and its :meth:`speedup` over the FLOP ``limit``."""
        from lab.runtime.measure import Timing

        return {
            "latency_ms": self.ms(run),
            "latency_p99_ms": self.timings[run].p99_ms,
            "first_after_switch_ms": Timing.of(self.firsts[run]).median_ms,
            "dense_latency_ms": self.ms(dense),
            "flop_speedup_limit": limit,
            **self.speedup(dense, run, limit, rest),
        }

    def speedup(
        self, dense: str, run: str, limit: float, rest: str | None = None, prefix: str = ""
    ) -> dict[str, Any]:
        """``run``'s speedup over ``dense`` with its interval, over the FLOP ``limit``, and,
        with ``rest`` (the unpruned rest, which does not shrink), over the Amdahl limit."""
        s, (lo, hi) = self.ratio(dense, run)
        out = {
            f"{prefix}speedup": s,
            f"{prefix}speedup_ci95": [lo, hi],
            f"{prefix}speedup_over_limit": s / limit,
            f"{prefix}speedup_over_limit_ci95": [lo / limit, hi / limit],
        }
        if rest is not None and rest in self.timings:
            amdahl = amdahl_limit(self.ms(dense), self.ms(rest), limit)
            out[f"{prefix}amdahl_limit"] = amdahl
            out[f"{prefix}speedup_over_amdahl_limit"] = s / amdahl
        return out


def amdahl_limit(total_ms: float, rest_ms: float, limit: float) -> float:
    """The speedup bound of a run taking ``total_ms`` whose ``rest_ms`` does not shrink
    while the remainder shrinks at most by ``limit`` (the rest is capped at the total).

    >>> amdahl_limit(10.0, 1.0, 3.0)
    2.5
    """
    rest = min(rest_ms, total_ms)
    return total_ms / (rest + (total_ms - rest) / limit)


def _key(group: str, what: str, name: str = "") -> str:
    """A variant's key in the rounds: group (``runtime`` or an anchor), then ``dense``,
    ``rest`` or ``set NAME`` (names hold no spaces)."""
    return f"{group} {what} {name}".rstrip()


def measure_runtime(
    base: nn.Module,
    sets: list[PatternSet],
    options: RuntimeBenchOptions,
    executorch: bool = False,
    progress: Callable[[str], None] = _quiet,
    scheme: str = "rt3",
) -> dict[str, Any]:
    """Every figure of ``RuntimeBenchResult`` but what names the source, host and command.

    ``base`` is the model with the backbone weights loaded (left untouched: the runtime and
    every anchor work on copies). A ``scheme`` other than RT3's gets its variants' rows
    (``lab.bench.scheme_variants``); where the sets carry exits the anchors and the layers
    are skipped (they run masks, not exits)."""
    import copy
    import time
    from dataclasses import replace

    from lab.bench import anchors as A
    from lab.bench.scheme_variants import SKIPPED
    from lab.bench.serving import serving_overhead
    from lab.runtime.exits import plan_of
    from lab.runtime.measure import make_inputs
    from lab.runtime.reconfigurable import ReconfigurableModel

    skip_anchors = options.anchors and any(plan_of(ps.meta) for ps in sets)
    if skip_anchors:
        options = replace(options, anchors=False, layers=False)
    base = base.eval()
    rows = options.batch * options.seq_len
    progress("preparing the runtime")
    t0 = time.perf_counter()
    rm = ReconfigurableModel(
        copy.deepcopy(base), sets, layout=options.layout, rows_hint=rows,
        engine_threads=options.threads,
    )  # fmt: skip
    prepare_s = time.perf_counter() - t0
    inputs = make_inputs(base, options.batch, options.seq_len)
    subject = A.Subject(base, sets, inputs, rm, options.threads, options.layout, rows, executorch)
    groups, anchors = {"runtime": A.runtime_runs(subject)}, {}
    if options.anchors:
        anchors = _build_model_anchors(subject, groups, progress)
    progress("end to end: the runtime and the anchors, dense and every set, interleaved")
    m = _time_groups(groups, options)
    rm.force_exit(None)
    figures = _runtime_figures(rm, m)
    if scheme == "rt3":
        figures["sets"] = _set_rows(rm, sets, m)
    else:
        from lab.bench.scheme_variants import FLOP_LIMIT, variant_rows

        rows = variant_rows(base, rm, sets, m, options.seq_len, _runtime_key)
        figures.update(sets=rows, flop_limit=FLOP_LIMIT)
    if skip_anchors:
        anchors = {n: {"what": a.what, "skipped": SKIPPED} for n, a in A.ANCHORS.items()}
    figures.update(workload={"batch": options.batch, "seq_len": options.seq_len})
    figures.update(prepare_s=prepare_s, anchors=anchors)
    for name, runs in groups.items():
        if name != "runtime":
            _anchor_figures(name, runs, m, figures)
    if options.anchors:
        _time_set_anchors(subject, figures, options, progress)
    if options.layers:
        progress("per layer, on the torch reference's forms")
        figures["layers"] = layer_times(subject.torch_reference(), sets, inputs, options)
    progress("the serving call's wrapper against the bound engine call, on the sparsest set")
    figures["serving"] = serving_overhead(rm, sets, inputs, options.rounds, options.warmup)
    progress("switching")
    figures.update(_switching(rm, base, sets, options))
    figures["memory_bytes"] = rm.memory().as_dict()
    return figures


def _build_model_anchors(
    subject: Subject, groups: dict[str, Runs], progress: Callable[[str], None]
) -> dict[str, dict[str, Any]]:
    """Add every model anchor that can run here to ``groups``; each one's description."""
    from lab.bench.anchors import ANCHORS, AnchorSkipped

    described = {}
    for name, anchor in ANCHORS.items():
        described[name] = {"what": anchor.what}
        if anchor.model is None:
            continue
        progress(f"anchor {name}: {anchor.what}")
        try:
            groups[name] = anchor.model(subject)
        except AnchorSkipped as why:
            described[name]["skipped"] = str(why)
            continue
        described[name].update(groups[name].info)
    return described


def _time_groups(groups: dict[str, Runs], options: RuntimeBenchOptions) -> Measured:
    """Every run of every group in the same interleaved rounds."""
    from lab.runtime.measure import timed_rounds

    variants = {}
    for group, runs in groups.items():
        if runs.dense is not None:
            variants[_key(group, "dense")] = runs.dense
        for name, run in runs.sets.items():
            variants[_key(group, "set", name)] = run
        if runs.rest is not None:
            variants[_key(group, "rest")] = runs.rest
    firsts: dict[str, list[float]] = {}
    raw: dict[str, list[float]] = {}
    timings = timed_rounds(
        variants, options.rounds, options.per_round, options.warmup, first=firsts, raw=raw
    )
    return Measured(timings, raw, firsts, options.per_round)


def _runtime_key(name: str) -> str:
    """The key of the runtime's run of set ``name`` in the rounds (``""``: its dense run)."""
    return _key("runtime", "set", name) if name else _key("runtime", "dense")


def _runtime_figures(rm: ReconfigurableModel, m: Measured) -> dict[str, Any]:
    """The top-level figures: the runtime's dense model."""
    from lab.runtime import engine
    from lab.runtime.measure import Timing

    dense = _key("runtime", "dense")
    return {
        "runtime": rm.executor,
        "runtime_note": rm.fallback_reason or engine.status(),
        "dense_latency_ms": m.ms(dense),
        "dense_latency_p99_ms": m.timings[dense].p99_ms,
        "dense_first_after_switch_ms": Timing.of(m.firsts[dense]).median_ms,
    }


def _set_rows(
    rm: ReconfigurableModel, sets: list[PatternSet], m: Measured
) -> dict[str, dict[str, Any]]:
    """RT3's sets' rows: each against the runtime's dense model and the FLOP limit of its
    pruned layers (and the Amdahl limit where the rest was timed)."""

    dense = _key("runtime", "dense")
    out: dict[str, dict[str, Any]] = {}
    for ps in sets:
        dense_macs, set_macs = rm.macs_per_token(ps.name)
        limit = dense_macs / max(1, set_macs)
        key = _key("runtime", "set", ps.name)
        out[ps.name] = {
            "density": ps.density,
            **m.row(dense, key, limit, _key("runtime", "rest")),
            "pruned_macs_per_token": {"dense": dense_macs, "set": set_macs},
            "anchors": {},
        }
    return out


def _anchor_figures(name: str, runs: Runs, m: Measured, figures: dict[str, Any]) -> None:
    """A model anchor's figures: its dense model against the runtime's (top level), and per
    set its run against the runtime's, the runtime's set against its dense model, and its
    own speedup (``figures["sets"][set]["anchors"][name]``)."""
    dense = _key(name, "dense")
    top = figures["anchors"][name]
    if runs.dense is not None:
        top["dense_latency_ms"] = m.ms(dense)
        top["dense_latency_p99_ms"] = m.timings[dense].p99_ms
        top["runtime_dense_speedup"], top["runtime_dense_speedup_ci95"] = m.ratio(
            dense, _key("runtime", "dense")
        )
    if runs.rest is not None:
        top["unpruned_rest_ms"] = m.ms(_key(name, "rest"))
    for set_name, row in figures["sets"].items():
        limit, mine, theirs = row["flop_speedup_limit"], _key("runtime", "set", set_name), None
        out: dict[str, Any] = {}
        if set_name in runs.sets:
            theirs = _key(name, "set", set_name)
            out["latency_ms"] = m.ms(theirs)
            out["runtime_speedup"], out["runtime_speedup_ci95"] = m.ratio(theirs, mine)
        if runs.dense is not None:
            out.update(m.speedup(dense, mine, limit, prefix="dense_"))
            if theirs is not None:
                out.update(m.speedup(dense, theirs, limit, _key(name, "rest")))
        row["anchors"][name] = out


def _time_set_anchors(
    subject: Subject,
    figures: dict[str, Any],
    options: RuntimeBenchOptions,
    progress: Callable[[str], None],
) -> None:
    """Every set anchor, one set at a time, in rounds of its own against the runtime's run
    of that set (``figures["sets"][set]["anchors"][name]``)."""
    import gc

    from lab.bench.anchors import ANCHORS
    from lab.runtime.measure import timed_rounds

    per_set = {n: a for n, a in ANCHORS.items() if a.per_set is not None}
    rm = subject.runtime
    for ps in subject.sets:
        progress(f"set {ps.name!r} run as the set anchors: {', '.join(per_set)}")
        fns = {"runtime": (lambda n=ps.name: rm.switch(n), subject.serving())}
        for name, anchor in per_set.items():
            fns[_key(name, "set", ps.name)] = (_quiet_setup, anchor.per_set(subject, ps))
        raw: dict[str, list[float]] = {}
        got = timed_rounds(fns, max(2, options.rounds // 2), options.per_round, 1, raw=raw)
        m = Measured(got, raw, {}, options.per_round)
        for name in per_set:
            key = _key(name, "set", ps.name)
            speedup, ci = m.ratio(key, "runtime")
            row = {"latency_ms": m.ms(key), "runtime_speedup": speedup}
            figures["sets"][ps.name]["anchors"][name] = {**row, "runtime_speedup_ci95": ci}
        del fns, got
        gc.collect()


def _quiet_setup() -> None:
    return None


def layer_inputs(rm: ReconfigurableModel, inputs: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Input shape each pruned Linear layer of the torch reference sees in one forward."""
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str) -> Callable[..., None]:
        def hook(_mod: Any, args: tuple[Any, ...]) -> None:
            shapes.setdefault(name, tuple(args[0].shape))  # returns None: args unchanged

        return hook

    hooks = [m.register_forward_pre_hook(record(n)) for n, m in rm.switchable_linears().items()]
    try:
        rm(*inputs["args"], **inputs["kwargs"])
    finally:
        for h in hooks:
            h.remove()
    return shapes


def layer_times(
    rm: ReconfigurableModel,
    sets: list[PatternSet],
    inputs: dict[str, Any],
    options: RuntimeBenchOptions,
) -> dict[str, Any]:
    """Per pruned Linear layer of the torch reference: its dense form and every set's form
    on the input it sees in one forward, interleaved."""
    import torch

    from lab.runtime.measure import timed_rounds

    shapes = layer_inputs(rm, inputs)
    density = {ps.name: ps.layers for ps in sets}
    per_layer: dict[str, Any] = {}
    for name, mod in rm.switchable_linears().items():
        if name not in shapes:
            continue
        x = torch.randn(shapes[name])
        forms = {" dense": mod.dense}  # a space: never a set's name
        forms.update({n: f[name] for n, f in rm.forms.items() if name in f})
        fns = {k: (_quiet_setup, lambda f=f, x=x: f(x)) for k, f in forms.items()}
        with torch.inference_mode():
            got = timed_rounds(fns, max(2, options.rounds // 2), options.per_round, 1)
        d = got.pop(" dense").median_ms
        per_layer[name] = {
            "shape": list(mod.weight.shape),
            "input_shape": list(shapes[name]),
            "dense_ms": d,
            "sets": {
                k: {
                    "ms": v.median_ms,
                    "speedup": d / v.median_ms,
                    "form": forms[k].kind,
                    "density": density[k][name].density,
                }
                for k, v in got.items()
            },
        }
    return per_layer


def _switching(
    rm: ReconfigurableModel, base: nn.Module, sets: list[PatternSet], options: RuntimeBenchOptions
) -> dict[str, Any]:
    """The runtime's switch times cycling through every set, and with the anchors RT3-style
    switching (``lab.bench.anchors.switch_anchors``) against them."""
    from lab.bench.anchors import switch_anchors
    from lab.runtime.measure import Timing

    names = rm.set_names
    sw = Timing.of([rm.switch(names[i % len(names)]) for i in range(options.switch_reps)])
    out: dict[str, Any] = {"switch_ms_median": sw.median_ms, "switch_ms_p99": sw.p99_ms}
    if options.anchors:
        anc = switch_anchors(base, sets, options.anchor_switch_reps)
        out["switch_anchors"] = {
            k: {
                "median_ms": v.median_ms,
                "p99_ms": v.p99_ms,
                "over_runtime_median": v.median_ms / sw.median_ms,
            }
            for k, v in anc.items()
        }
    return out


def profile_latency_section(result: dict[str, Any], entries: dict[str, Any]) -> dict[str, Any]:
    """The runtime's figures as a device-profile fragment: ``sources``, ``variants``,
    ``switch_cost``. Latencies are LevelLatency rows at the host's current frequency,
    provenance measured."""
    from device_profiles.schema import LevelLatency, SwitchCost, Variant

    early = [n for n, s in result["sets"].items() if "per_exit" in s]
    if early:
        raise BenchInputError(EARLY_EXIT_PROFILE.format(early[0]))
    host = result["host"]
    khz = host.get("freq_khz")
    if not khz:
        raise BenchInputError("--profile-out: the host's CPU frequency is unknown")
    tool = f"rt3lab bench runtime (torch {host['torch']}, {host['threads']} thread(s))"
    source = {
        "kind": "measured",
        "meter": "time.perf_counter (host CPU wall clock)",
        "date": datetime.now(UTC).date().isoformat(),
        "tool": tool,
        "board": f"{host['hostname']}: {host['cpu']}",
        "note": (
            f"batch {result['workload']['batch']}, seq {result['workload']['seq_len']}, "
            f"medians of interleaved repetitions at the current frequency {khz} kHz"
        ),
    }

    def row(ms: float) -> dict[str, Any]:
        return LevelLatency(freq_khz=khz, latency_ms=ms, provenance=PROVENANCE_KEY).model_dump()

    dense = Variant(
        name="dense", sparsity=0.0, latency=[row(result["dense_latency_ms"])],
        provenance=PROVENANCE_KEY,
    )  # fmt: skip
    variants = [dense.model_dump(exclude_none=True)]
    for name, s in result["sets"].items():
        e = entries.get(name)
        v = Variant(
            name=name,
            sparsity=min(1 - s["density"], 0.999999),
            accuracy=None if e is None else e.accuracy,
            nonzero_mults=None if e is None else e.nonzero_mults,
            nonzero_adds=None if e is None else e.nonzero_adds,
            latency=[row(s["latency_ms"])],
            provenance=PROVENANCE_KEY,
        )
        variants.append(v.model_dump(exclude_none=True))
    switch = SwitchCost(time_ms=result["switch_ms_median"], provenance=PROVENANCE_KEY)
    return {
        "sources": {PROVENANCE_KEY: source},
        "variants": variants,
        "switch_cost": switch.model_dump(exclude_none=True),
    }


def _check_profile_out(bundle: Path) -> None:
    """Refuse ``--profile-out`` on an early-exit bundle before any work (its manifest only)."""
    from contracts import bundle_manifest as M
    from contracts.schemes import bundle_scheme

    doc = M.read_manifest(bundle)
    if bundle_scheme(doc, str(bundle / M.MANIFEST)) == "early-exit":
        raise BenchInputError(EARLY_EXIT_PROFILE.format(doc["sets"][0]["name"]))


@app.command()
def runtime(
    bundle: Path | None = typer.Option(None, "--bundle", help="bundle directory"),
    synthetic: str | None = typer.Option(
        None,
        "--synthetic",
        help="rt3, small (the default budget's model), distilbert: random weights and sets",
    ),
    densities: str = typer.Option("0.5,0.3,0.2", help="set densities for --synthetic"),
    threads: str = typer.Option(
        "1",
        "--threads",
        help="thread counts, 1..256 each, e.g. 1 or 1,2: the first runs the bench (torch's "
        "intra-op threads and the engine's, pinned); the engine alone at every count",
    ),
    seq_len: int = typer.Option(35, "--seq-len", min=1),
    batch: int = typer.Option(1, "--batch", min=1),
    rounds: int = typer.Option(10, help="interleaved rounds over the variants"),
    per_round: int = typer.Option(3, "--per-round", help="timed calls per variant per round"),
    warmup: int = typer.Option(3, help="untimed calls per variant first"),
    switch_reps: int = typer.Option(2000, "--switch-reps"),
    anchor_switch_reps: int = typer.Option(10, "--anchor-switch-reps"),
    anchors: bool = typer.Option(True, "--anchors/--no-anchors", help="time the anchors"),
    layers: bool = typer.Option(True, "--layers/--no-layers", help="time every layer"),
    executorch: bool | None = typer.Option(
        None,
        "--executorch/--no-executorch",
        help="the dense model on ExecuTorch XNNPACK as an anchor (default: with the "
        "anchors, when the 'executorch' package is installed: pip install 'rt3lab[anchors]')",
    ),
    seed: int = typer.Option(0, help="seed of the synthetic weights, sets and inputs"),
    layout: str = typer.Option("auto", help="torch reference's pool layout: auto, segments, views"),
    as_json: bool = typer.Option(False, "--json", help="print only JSON"),
    profile_out: Path | None = typer.Option(
        None, "--profile-out", help="write the latencies as a device-profile latency section"
    ),
) -> None:
    """Measure the runtime on this host (dense, every set, anchors, switch, memory)."""
    from lab.host.threads import parse_thread_counts

    counts = tuple(parse_thread_counts(threads))  # before any work: one line, exit 2
    if profile_out is not None and bundle is not None:
        _check_profile_out(bundle)
    options = RuntimeBenchOptions(
        bundle=bundle, synthetic=synthetic, densities=densities, seed=seed,
        threads=counts[0], thread_counts=counts,
        seq_len=seq_len, batch=batch, rounds=rounds, per_round=per_round, warmup=warmup,
        switch_reps=switch_reps, anchor_switch_reps=anchor_switch_reps, anchors=anchors,
        layers=layers, executorch=executorch, layout=layout,
    )  # fmt: skip
    progress = _quiet if as_json else (lambda m: typer.echo(f"... {m}", err=True))
    result = bench_runtime(options, progress)
    data = result.as_dict()
    if profile_out is not None:
        import yaml

        section = profile_latency_section(data, result.entries)
        profile_out.write_text(yaml.safe_dump(section, sort_keys=False))
    if as_json:
        typer.echo(strict_json.dumps(data, indent=2))
    else:
        from lab.bench.runtime_tables import print_tables

        print_tables(data)
