"""A latency table measured on the runtime the pattern sets will run on (``lab.runtime``).

What is measured, on this host, at the thread count ``compress`` uses (torch's and the
engine's own pool alike), one inference of
``batch x seq_len`` tokens on the runtime the sets will run on: the native engine
(:mod:`lab.runtime.engine`, the whole model in C, which ``ReconfigurableModel``'s ``auto``
runs, and so ``rt3lab evaluate``, ``profile`` and the demo), or, where the engine cannot run
the model, the per-layer forms of :class:`lab.runtime.ReconfigurableModel`. The table
records which (``runtime``). All variants live in one engine, so switching between them is
selecting index tables:

- ``dense``: the whole model, every layer dense (the unpruned rest included), timed first
  in each round and again just before each layer's variants (:func:`layer_points`);
- per pruned layer and per *bucket*: the whole model with that one layer at the bucket's
  pattern and every other layer dense, its saving taken against the dense run beside it.
  The buckets are BP alone and BP with each sparsity level's first candidate patterns (the
  kept-column counts the search can reach).

A set's estimate at the host's clock is ``dense + k x sum over layers (t(layer, d) -
dense)`` where ``t(layer, d)`` is interpolated linearly in the layer's density ``d`` (kept
/ all weights) between the layer's buckets (``t(layer, 1) = dense``), and ``k``
(``additivity``) is one least-squares factor fitted, in the same interleaved rounds, to
the whole bucket sets (every layer at a bucket) measured end to end: one-layer savings do
not add up exactly (caches, the runtime's choice of form), and on a loaded machine their
sum drifted by a factor of two either way. Timing each layer inside
the whole model (rather than beside instant stand-ins for the others) keeps the caches as
the sets see them: measured against stand-ins, the sum over-estimated a hand-built set by
26 %. It is projected to a DVFS level by the rule the
profiles use, ``latency = a + b/f`` (:func:`lab.profiling.calibrate.fit_latency`) with one
frequency measured: ``a = 0``, all of it scales with the clock.

The table is written beside the bundle (``latency_table.json``) and named in its
provenance (host, CPU, date, threads). A table measured on another host or at another
thread count, or one that does not parse, is refused with a message naming its file.
"""

from __future__ import annotations

import json
import platform
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.compression.sparsifier import CompressionError

if TYPE_CHECKING:
    import torch
    from torch import nn

TABLE_FORMAT = "rt3lab-latency-table"
TABLE_FILE = "latency_table.json"


RUNTIME_NOTES = {
    "engine": "the whole model on the native engine (lab.runtime.engine), as auto runs it",
    "per-layer": "PyTorch/native forms per layer (the engine could not run this model)",
}


class LatencyTableError(CompressionError):
    """A latency table that does not parse, or was measured elsewhere."""


def host_identity() -> dict[str, Any]:
    """What identifies this host for a latency table: hostname and CPU model."""
    from lab.host.cpu import cpu_model

    return {"hostname": platform.node(), "cpu": cpu_model()}


@dataclass(frozen=True)
class LatencyTable:
    """Measured milliseconds per layer and bucket plus the unpruned rest.

    >>> t = LatencyTable({"hostname": "h", "cpu": "c"}, 1, "2026-01-01", 1000000, 35,
    ...                  2.0, {"fc": [(0.5, 1.5), (1.0, 2.0)]})
    >>> t.host_ms({"fc": 0.75})
    1.75
    >>> t.latency_ms({"fc": 0.75}, 500000)
    3.5
    """

    host: dict[str, Any]
    threads: int
    date: str
    host_freq_khz: int
    rows: int  # tokens per measured inference
    dense_ms: float
    layers: dict[str, list[tuple[float, float]]]  # layer -> [(density, ms)], ascending
    additivity: float = 1.0  # the per-layer savings' scale fitted to whole bucket sets
    runtime: str = "engine"  # what was timed: "engine" (whole model in C) or "per-layer"

    def layer_ms(self, layer: str, density: float) -> float:
        """Milliseconds of the whole model with ``layer`` at ``density``, the rest dense."""
        import numpy as np

        pts = self.layers.get(layer)
        if not pts:
            raise LatencyTableError(f"latency table: no row for layer {layer!r}")
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        return float(np.interp(density, xs, ys))

    def host_ms(self, densities: Mapping[str, float]) -> float:
        """Estimated milliseconds per inference at the host's clock."""
        saved = sum(
            self.layer_ms(name, densities.get(name, 1.0)) - self.dense_ms for name in self.layers
        )
        return max(self.dense_ms + self.additivity * saved, 0.0)

    def latency_ms(self, densities: Mapping[str, float], freq_khz: int) -> float:
        """The host estimate projected to ``freq_khz`` by ``a + b/f`` (a = 0)."""
        from lab.profiling.calibrate import fit_latency

        fit = fit_latency([self.host_freq_khz], [self.host_ms(densities)])
        return max(fit.latency_ms(freq_khz), 0.0)

    def provenance(self, path: str | None = None) -> dict[str, Any]:
        """What the bundle records about the table."""
        return {
            "file": path,
            "host": self.host,
            "threads": self.threads,
            "date": self.date,
            "host_freq_khz": self.host_freq_khz,
            "rows": self.rows,
            "additivity": self.additivity,
            "runtime": RUNTIME_NOTES[self.runtime],
            "projection": "latency = a + b/f, a = 0 (one host frequency measured)",
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "format": TABLE_FORMAT,
            "host": self.host,
            "threads": self.threads,
            "date": self.date,
            "host_freq_khz": self.host_freq_khz,
            "rows": self.rows,
            "dense_ms": self.dense_ms,
            "additivity": self.additivity,
            "runtime": self.runtime,
            "layers": {k: [list(p) for p in v] for k, v in self.layers.items()},
        }

    def save(self, path: Path) -> Path:
        """Write the table to ``path`` (atomically)."""
        import os

        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(
        cls,
        path: Path,
        threads: int | None = None,
        host: dict[str, Any] | None = None,
        layers: list[str] | None = None,
    ) -> LatencyTable:
        """Read ``path``; refuse a corrupt table or one measured on another host (default:
        this one), at other ``threads`` or for other ``layers``, naming the file."""
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LatencyTableError(f"{path}: latency table is not readable JSON ({exc})") from exc
        if not isinstance(doc, dict) or doc.get("format") != TABLE_FORMAT:
            raise LatencyTableError(f"{path}: field format is not {TABLE_FORMAT!r}")
        try:
            table = cls(
                host=dict(doc["host"]),
                threads=int(doc["threads"]),
                date=str(doc["date"]),
                host_freq_khz=int(doc["host_freq_khz"]),
                rows=int(doc["rows"]),
                dense_ms=float(doc["dense_ms"]),
                additivity=float(doc["additivity"]),
                runtime=str(doc.get("runtime", "per-layer")),
                layers={
                    str(k): [(float(d), float(ms)) for d, ms in v]
                    for k, v in dict(doc["layers"]).items()
                },
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LatencyTableError(
                f"{path}: latency table field missing or malformed ({exc})"
            ) from exc
        for name, pts in table.layers.items():
            ds = [p[0] for p in pts]
            if not pts or ds != sorted(ds) or any(ms < 0 for _, ms in pts):
                raise LatencyTableError(
                    f"{path}: layer {name!r}: expected rows (density, ms >= 0) by density"
                )
        if table.runtime not in RUNTIME_NOTES:
            raise LatencyTableError(
                f"{path}: field runtime {table.runtime!r} is not one of {sorted(RUNTIME_NOTES)}"
            )
        if table.host_freq_khz <= 0 or table.dense_ms < 0:
            raise LatencyTableError(f"{path}: field host_freq_khz or dense_ms out of range")
        want_host = host if host is not None else host_identity()
        if table.host != want_host:
            raise LatencyTableError(
                f"{path}: latency table measured on another host ({table.host.get('hostname')}, "
                f"{table.host.get('cpu')}); this is {want_host.get('hostname')}, "
                f"{want_host.get('cpu')}: delete it to measure here"
            )
        if threads is not None and table.threads != threads:
            raise LatencyTableError(
                f"{path}: latency table measured with {table.threads} threads, this run uses "
                f"{threads}: delete it or pass --threads {table.threads}"
            )
        if layers is not None and sorted(table.layers) != sorted(layers):
            raise LatencyTableError(
                f"{path}: latency table covers layers {sorted(table.layers)}, the model prunes "
                f"{sorted(layers)}"
            )
        return table


def fastest_ms(raw: Mapping[str, list[float]]) -> dict[str, float]:
    """Per variant, the fastest of its timings (seconds) in ms.

    The table and ``evaluate``'s measurement both use the minimum, not the median: on this
    project's shared 2-core machine (load averages of 10 to 16 while six engineers train)
    medians of the same variant moved by 2x between rounds, while the fastest run is the
    one a neighbour did not interrupt.

    >>> fastest_ms({"a": [0.003, 0.001, 0.002]})
    {'a': 1.0}
    """
    return {k: 1e3 * min(v) for k, v in raw.items()}


def monotone(points: list[tuple[float, float]], cap: float) -> list[tuple[float, float]]:
    """Least-squares non-decreasing fit (pool adjacent violators) of ``(density, ms)``
    points sorted by density, each first capped at ``cap`` (the model dense).

    A layer keeping fewer weights is not slower, and the runtime can always run it dense:
    timing noise on a shared machine made single buckets of small layers 10-40 % slower
    than dense, and summed over ten layers that noise outweighed the decoder's real saving.

    >>> monotone([(0.25, 1.0), (0.5, 0.8), (0.75, 1.3), (1.0, 1.2)], cap=1.2)
    [(0.25, 0.9), (0.5, 0.9), (0.75, 1.2), (1.0, 1.2)]
    """
    blocks: list[list[float]] = []  # [sum, count]
    for _, y in points:
        blocks.append([min(y, cap), 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    fitted = [b[0] / b[1] for b in blocks for _ in range(int(b[1]))]
    return [(d, round(y, 9)) for (d, _), y in zip(points, fitted, strict=True)]


def layer_densities(masks: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Kept fraction of every masked layer."""
    return {n: float(m.sum()) / m.numel() for n, m in masks.items()}


def measure_table(
    model: nn.Module,
    buckets: list[dict[str, torch.Tensor]],
    block_rows: int,
    block_cols: int,
    threads: int,
    seq_len: int,
    batch: int = 1,
    rounds: int = 12,
    per_round: int = 3,
) -> LatencyTable:
    """Measure the table on ``model`` (weights loaded; left untouched) with the layer masks
    of ``buckets`` (every dict names the same layers), through ``lab.runtime``."""
    return measure_table_and_sets(
        model, buckets, {}, block_rows, block_cols, threads, seq_len, batch, rounds, per_round
    )[0]


def measure_table_and_sets(
    model: nn.Module,
    buckets: list[dict[str, torch.Tensor]],
    sets: Mapping[str, Mapping[str, torch.Tensor]],
    block_rows: int,
    block_cols: int,
    threads: int,
    seq_len: int,
    batch: int = 1,
    rounds: int = 12,
    per_round: int = 3,
    runtime: str | None = None,
) -> tuple[LatencyTable, dict[str, float]]:
    """:func:`measure_table`, and every set of ``sets`` (name -> layer masks) measured end
    to end in the same interleaved rounds (so a neighbour's load shifts both alike).

    ``runtime`` ``None`` times on the native engine where it can run the model (what
    ``ReconfigurableModel``'s ``auto`` runs), else on the per-layer forms."""
    import copy

    from lab.model.training import torch_threads
    from lab.runtime.measure import host_freq_khz, make_inputs, timed_rounds
    from lab.runtime.pattern_set import PatternSet

    layers = list(buckets[0])
    bucket_sets = [
        PatternSet.from_masks(f"bucket-{i}", masks, block_rows, block_cols)
        for i, masks in enumerate(buckets)
    ]
    extra = [
        PatternSet.from_masks(f"set-{k}", dict(masks), block_rows, block_cols)
        for k, masks in enumerate(sets.values())
    ]
    extra_names = dict(zip((ps.name for ps in extra), sets, strict=True))
    # one layer at one bucket's pattern, every other layer dense
    one: dict[str, PatternSet] = {}
    dens: dict[str, float] = {}
    for name in layers:
        for i, ps in enumerate(bucket_sets):
            key = f"{name}|{i}"
            one[key] = PatternSet(f"one-{len(one)}", {name: ps.layers[name]})
            dens[key] = float(buckets[i][name].sum()) / buckets[i][name].numel()
    with torch_threads(threads):
        base = copy.deepcopy(model).eval()
        inputs = make_inputs(base, batch, seq_len)
        rm_engine = None
        if runtime in (None, "engine"):
            rm_engine = _engine_model(
                base, bucket_sets + extra + list(one.values()), runtime == "engine", threads
            )
        raw: dict[str, list[float]] = {}
        if rm_engine is not None:
            used = "engine"
            eng = rm_engine

            def run() -> object:  # the call evaluate, profile and the demo make
                return eng(*inputs["args"], **inputs["kwargs"])

            variants: dict[str, tuple[Any, Any]] = {"dense": (lambda: eng.switch(None), run)}
            for key, ps in one.items():
                if key.endswith("|0"):  # the model dense again, just before each layer's
                    variants[_local(key)] = (lambda: eng.switch(None), run)
                variants[key] = (lambda n=ps.name: eng.switch(n), run)
            for ps in bucket_sets + extra:
                variants[ps.name] = (lambda n=ps.name: eng.switch(n), run)
            timed_rounds(variants, rounds, per_round, warmup=2, raw=raw)
            eng.switch(None)
        else:
            from lab.runtime.reconfigurable import ReconfigurableModel

            used = "per-layer"
            rm = ReconfigurableModel(  # per-layer forms: one layer at a time
                base, bucket_sets + extra, rows_hint=batch * seq_len, engine=False
            )

            def run_rm() -> object:
                return rm(*inputs["args"], **inputs["kwargs"])

            def activate(forms: dict[str, Any]) -> None:
                rm.switch(None)
                rm._active.forms = forms  # one layer in a bucket's form, the others dense

            variants = {"dense": (lambda: rm.switch(None), run_rm)}
            for key in one:
                name, i = key.split("|", 1)
                if i == "0":
                    variants[_local(key)] = (lambda: rm.switch(None), run_rm)
                form = {name: rm.forms[bucket_sets[int(i)].name][name]}
                variants[key] = (lambda f=form: activate(f), run_rm)
            for ps in bucket_sets + extra:
                variants[ps.name] = (lambda n=ps.name: rm.switch(n), run_rm)
            timed_rounds(variants, rounds, per_round, warmup=2, raw=raw)
            rm.switch(None)
    timed = fastest_ms(raw)
    dense, table = layer_points(timed, dens, layers)
    # the sum of one-layer savings against whole sets (every layer at a bucket), measured in
    # the same rounds: one least-squares factor through the origin
    prelim = LatencyTable({}, threads, "", 1, batch * seq_len, dense, table)
    pred = [prelim.host_ms(layer_densities(b)) - dense for b in buckets]
    meas = [timed[ps.name] - dense for ps in bucket_sets]
    den = sum(x * x for x in pred)
    additivity = sum(x * y for x, y in zip(pred, meas, strict=True)) / den if den > 0 else 1.0
    additivity = min(max(additivity, 0.25), 4.0)
    freq = host_freq_khz() or 0
    measured = {extra_names[ps.name]: timed[ps.name] for ps in extra}
    table_out = LatencyTable(
        host=host_identity(),
        threads=threads,
        date=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        host_freq_khz=freq if freq > 0 else 1_000_000,
        rows=batch * seq_len,
        dense_ms=dense,
        layers=table,
        additivity=additivity,
        runtime=used,
    )
    return table_out, measured


def layer_points(
    timed: Mapping[str, float], dens: Mapping[str, float], layers: list[str]
) -> tuple[float, dict[str, list[tuple[float, float]]]]:
    """The model's dense ms and every layer's ``(density, ms)`` points from the fastest
    times of the variants (``dense``, ``dense@LAYER`` timed just before LAYER's variants,
    ``LAYER|i`` the layer at bucket ``i`` with ``dens`` its density).

    Each layer's saving is taken against its own neighbouring dense run, and the model's
    dense is the median of all dense runs. With one dense figure for all, its error was
    every layer's: on the engine (default bundle, ~1.5 ms), the dense run that opens each
    round came out 7 % above the others, ten layers showed 2-3 % savings that were not
    there, and estimates fell to 0.2-0.7 of the sets timed in the same rounds (0.92-1.05
    with this).

    >>> t = {"dense": 1.2, "dense@a": 1.0, "a|0": 0.6, "dense@b": 1.0, "b|0": 0.9}
    >>> layer_points(t, {"a|0": 0.5, "b|0": 0.5}, ["a", "b"])
    (1.0, {'a': [(0.5, 0.6), (1.0, 1.0)], 'b': [(0.5, 0.9), (1.0, 1.0)]})
    """
    local = {name: timed[_local(f"{name}|0")] for name in layers}
    dense = statistics.median([timed["dense"], *local.values()])
    table: dict[str, list[tuple[float, float]]] = {}
    for name in layers:
        pts: dict[float, float] = {1.0: dense}
        for key, d in dens.items():
            if key.split("|", 1)[0] == name:
                pts.setdefault(round(d, 6), timed[key] - local[name] + dense)
        table[name] = monotone(sorted(pts.items()), cap=dense)
    return dense, table


def _local(key: str) -> str:
    """The variant key of the dense run timed just before layer ``key``'s variants."""
    return "dense@" + key.split("|", 1)[0]


def _engine_model(module: nn.Module, sets: list[Any], required: bool, threads: int = 1) -> Any:
    """``module`` with ``sets`` on the native engine on ``threads`` threads
    (``ReconfigurableModel``'s engine executor, timed through the same call as the
    runtime's), or None where the engine cannot run them (``required``: raise instead)."""
    from lab.runtime.reconfigurable import ReconfigurableModel, ReconfigurationError

    try:
        return ReconfigurableModel(module, sets, executor="engine", engine_threads=threads)
    except ReconfigurationError:
        if required:
            raise
        return None


def measure_end_to_end(
    model: nn.Module,
    sets: Mapping[str, Mapping[str, torch.Tensor]],
    block_rows: int,
    block_cols: int,
    threads: int,
    seq_len: int,
    batch: int = 1,
    rounds: int = 12,
    per_round: int = 3,
    runtime: str = "engine",
) -> dict[str, float]:
    """Fastest milliseconds of one inference of every set (name -> layer masks) and of the
    model run dense (``"dense"``), end to end by :class:`lab.runtime.ReconfigurableModel`
    (``runtime`` ``engine``: its engine executor; ``per-layer``: its per-layer forms),
    interleaved, at ``threads``."""
    import copy

    from lab.model.training import torch_threads
    from lab.runtime.measure import make_inputs, timed_rounds
    from lab.runtime.pattern_set import PatternSet
    from lab.runtime.reconfigurable import ReconfigurableModel

    pattern_sets = [
        PatternSet.from_masks(name, dict(masks), block_rows, block_cols)
        for name, masks in sets.items()
    ]
    with torch_threads(threads):
        base = copy.deepcopy(model).eval()
        if runtime == "engine":
            rm = ReconfigurableModel(base, pattern_sets, executor="engine", engine_threads=threads)
        else:
            rm = ReconfigurableModel(base, pattern_sets, rows_hint=batch * seq_len, engine=False)
        inputs = make_inputs(base, batch, seq_len)

        def run() -> object:
            return rm(*inputs["args"], **inputs["kwargs"])

        # the switch before a variant's runs, untimed as the table's: an inference is timed,
        # not a switch per inference (the bench times switches apart)
        fns = {n: (lambda n=n: rm.switch(n), run) for n in sets}
        fns["dense"] = (lambda: rm.switch(None), run)
        raw: dict[str, list[float]] = {}
        timed_rounds(fns, rounds, per_round, warmup=2, raw=raw)
    return fastest_ms(raw)


def bundle_latencies(bundle: Any) -> dict[str, tuple[float, float]]:
    """Per set of a saved bundle (and ``dense``): the table's estimate and the runtime's end
    to end measurement, both in ms at this host's clock and the table's thread count.

    Empty when the bundle has no table (estimator ``op-count`` or ``profile``); a corrupt
    table or one measured on another host is refused, naming it.
    """
    from lab.runtime.reconfigurable import module_from_bundle

    if bundle.path is None or not (Path(bundle.path) / TABLE_FILE).is_file():
        return {}
    table = LatencyTable.load(Path(bundle.path) / TABLE_FILE)
    cfg = bundle.provenance.get("bp_config", {})
    rows, cols = int(cfg.get("block_rows", 32)), int(cfg.get("block_cols", 32))
    sets = {name: ps.masks() for name, ps in bundle.sets.items()}
    module = module_from_bundle(bundle)
    measured = measure_end_to_end(
        module, sets, rows, cols, table.threads, table.rows, runtime=table.runtime
    )
    out = {"dense": (table.dense_ms, measured["dense"])}
    for name, masks in sets.items():
        out[name] = (table.host_ms(layer_densities(masks)), measured[name])
    return out


def latency_markdown(evaluation: Mapping[str, Any]) -> str:
    """The README's table of an ``rt3lab evaluate --json`` document's latency columns."""
    lines = [
        "| set | MHz | sparsity % | estimate ms | measured ms | estimate / measured |",
        "|---|---|---|---|---|---|",
    ]
    for r in evaluation["sets"]:
        est, meas = r.get("latency_estimate_ms"), r.get("latency_measured_ms")
        if est is None or meas is None:
            continue
        mhz = "-" if r["freq_khz"] is None else f"{r['freq_khz'] // 1000}"
        lines.append(
            f"| {r['name']} | {mhz} | {100 * r['sparsity']:.1f} | {est:.3f} | {meas:.3f} | "
            f"{est / meas:.2f} |"
        )
    return "\n".join(lines)
