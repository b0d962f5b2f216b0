"""A latency table measured on the runtime the pattern sets will run on (``lab.runtime``).

What is measured, on this host, at the thread count ``compress`` uses, one inference of
``batch x seq_len`` tokens on the runtime the sets will run on: the native engine
(:mod:`lab.runtime.engine`, the whole model in C, which ``ReconfigurableModel``'s ``auto``
runs, and so ``rt3lab evaluate``, ``profile`` and the demo), or, where the engine cannot run
the model, the torch reference's per-layer forms (what ``auto`` falls back to). The table
records which (``runtime``). All variants live in one engine, so switching between them is
selecting index tables:

- ``dense``: the whole model, every layer dense (the unpruned rest included), timed first
  in each round and again just before each layer's variants
  (:func:`lab.compression.latency.timing.layer_points`);
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
import math
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.compression.latency.timing import TimingSetup, dense_key, fastest_ms, layer_points
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
    # the search's winners timed end to end (lab.compression.search.verify): child key ->
    # host-clock medians (ms) of its sets (level-i), the model dense and the deadlines' anchor
    winners_ms: dict[str, dict[str, float]] = field(default_factory=dict)

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

    def buckets(self) -> dict[str, list[float]]:
        """Every layer's densities (its buckets and 1.0), ascending."""
        return {name: [p[0] for p in pts] for name, pts in self.layers.items()}

    def provenance(self, path: str | None = None, source: str | None = None) -> dict[str, Any]:
        """What the bundle records about the table: where it is and came from (``source``),
        what measured it, and its values (``dense_ms``, ``layers``: the measurement every
        latency choice of the run was made on)."""
        return {
            "file": path,
            "source": source,
            "host": self.host,
            "threads": self.threads,
            "date": self.date,
            "host_freq_khz": self.host_freq_khz,
            "rows": self.rows,
            "additivity": self.additivity,
            "runtime": RUNTIME_NOTES[self.runtime],
            "projection": "latency = a + b/f, a = 0 (one host frequency measured)",
            "dense_ms": self.dense_ms,
            "layers": {k: [list(p) for p in v] for k, v in self.layers.items()},
            "winners_ms": self.winners_ms,
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
            "winners_ms": self.winners_ms,
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
        table = cls(**_table_fields(_read_table_doc(path), path))
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


MAX_TABLE_BYTES = 4 << 20  # a table is a few KiB: one row per layer and bucket
MAX_ROWS = 4096  # tokens per measured inference (batch x sequence length)
MAX_MS = 1e7  # milliseconds: nearly three hours per inference


def _read_table_doc(path: Path) -> dict[str, Any]:
    """The table file's JSON object (a regular file of bounded size, UTF-8)."""
    from power_meter.input_files import InputFileError, decode_text, read_regular

    try:
        doc = json.loads(decode_text(read_regular(path, MAX_TABLE_BYTES, "latency table"),
                                     path, "latency table"))  # fmt: skip
    except InputFileError as exc:
        raise LatencyTableError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise LatencyTableError(f"{path}: latency table is not readable JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != TABLE_FORMAT:
        raise LatencyTableError(f"{path}: field format is not {TABLE_FORMAT!r}")
    return doc


def _table_fields(doc: dict[str, Any], path: Path) -> dict[str, Any]:
    """The table's fields, each checked: integers where counts are (no booleans, no
    fractions), numbers finite and in range, at least one layer with rows by density."""
    from lab.host.threads import MAX_THREADS

    def number(key: str, lo: float, hi: float, integral: bool = False) -> Any:
        v = doc.get(key)
        ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        if not ok or (integral and not isinstance(v, int)) or not lo <= v <= hi:
            kind = "an integer" if integral else "a number"
            raise LatencyTableError(
                f"{path}: field {key} is {v!r}, expected {kind} in {lo:g}..{hi:g}"
            )
        return v

    layers = doc.get("layers")
    if not isinstance(layers, dict) or not layers:
        raise LatencyTableError(f"{path}: field layers: expected rows for at least one layer")
    for key in ("host", "date"):
        if not isinstance(doc.get(key), dict if key == "host" else str):
            raise LatencyTableError(f"{path}: field {key} missing or malformed")
    return {
        "host": dict(doc["host"]),
        "threads": number("threads", 1, MAX_THREADS, integral=True),
        "date": doc["date"],
        "host_freq_khz": number("host_freq_khz", 1, 1e8, integral=True),
        "rows": number("rows", 1, MAX_ROWS, integral=True),
        "dense_ms": float(number("dense_ms", 0, MAX_MS)),
        "additivity": float(number("additivity", 0.25, 4.0)),  # what the fit is clamped to
        "runtime": _runtime(doc.get("runtime", "per-layer"), path),
        "layers": {str(k): _layer_rows(k, v, path) for k, v in layers.items()},
        "winners_ms": _winners(doc.get("winners_ms", {}), path),
    }


MAX_WINNERS = 64  # a search keeps one winner and re-picks a few times


def _winners(value: object, path: Path) -> dict[str, dict[str, float]]:
    """The table's ``winners_ms``: at most :data:`MAX_WINNERS` children, each a map of
    variant names to finite milliseconds in range."""
    bad = f"{path}: field winners_ms: expected child -> {{variant: ms}} (at most {MAX_WINNERS})"
    if not isinstance(value, dict) or len(value) > MAX_WINNERS:
        raise LatencyTableError(bad)
    out: dict[str, dict[str, float]] = {}
    for key, row in value.items():
        if not isinstance(row, dict) or not row or len(row) > MAX_WINNERS:
            raise LatencyTableError(bad)
        for name, ms in row.items():
            ok = isinstance(ms, int | float) and not isinstance(ms, bool)
            if not ok or not math.isfinite(ms) or not 0 < ms <= MAX_MS:
                raise LatencyTableError(f"{path}: field winners_ms.{key}.{name} is {ms!r}, "
                                        f"expected milliseconds in 0..{MAX_MS:g}")  # fmt: skip
        out[str(key)] = {str(n): float(ms) for n, ms in row.items()}
    return out


def _runtime(value: object, path: Path) -> str:
    if value not in RUNTIME_NOTES:
        raise LatencyTableError(
            f"{path}: field runtime {value!r} is not one of {sorted(RUNTIME_NOTES)}"
        )
    return str(value)


def _layer_rows(name: str, rows: object, path: Path) -> list[tuple[float, float]]:
    """A layer's (density in 0..1, ms) rows, at least one, ascending in density."""
    out = []
    for row in rows if isinstance(rows, list) else [None]:
        ok = isinstance(row, list | tuple) and len(row) == 2
        ok = ok and all(isinstance(x, int | float) and not isinstance(x, bool) for x in row)
        ok = ok and all(math.isfinite(x) for x in row) and 0 <= row[0] <= 1
        ok = ok and 0 <= row[1] <= MAX_MS
        if not ok:
            raise LatencyTableError(
                f"{path}: layer {name!r}: row {row!r}: expected [density 0..1, ms 0..{MAX_MS:g}]"
            )
        out.append((float(row[0]), float(row[1])))
    ds = [d for d, _ in out]
    if not out or ds != sorted(ds):
        raise LatencyTableError(
            f"{path}: layer {name!r}: expected rows (density, ms >= 0) by density"
        )
    return out


def table_file(given: Path) -> Path:
    """The table ``--latency-table`` names: the file itself, or a bundle directory's
    ``latency_table.json``; refused, naming the path, when there is none."""
    path = Path(given)
    path = path / TABLE_FILE if path.is_dir() else path
    if not path.is_file():
        raise LatencyTableError(
            f"--latency-table {given}: no such file (expected a {TABLE_FILE} or a bundle "
            "directory holding one)"
        )
    return path


def read_table(given: Path, threads: int, buckets: Mapping[str, list[float]]) -> LatencyTable:
    """The table ``--latency-table`` names (:func:`table_file`), refused unless it was
    measured on this host at ``threads`` for exactly these layers' ``buckets`` (the
    densities BP and the first candidates give: another seed, model or BP config has
    others)."""
    path = table_file(given)
    table = LatencyTable.load(path, threads=threads, layers=list(buckets))
    have = table.buckets()
    for name, want in buckets.items():
        if have[name] != want:
            raise LatencyTableError(
                f"{path}: latency table has layer {name!r} at densities {have[name]}, this "
                f"run needs {want} (measured for another seed, model or BP config)"
            )
    return table


def layer_densities(masks: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Kept fraction of every masked layer."""
    return {n: float(m.sum()) / m.numel() for n, m in masks.items()}


def measure_table(
    model: nn.Module, buckets: list[dict[str, torch.Tensor]], setup: TimingSetup
) -> LatencyTable:
    """Measure the table on ``model`` (weights loaded; left untouched) with the layer masks
    of ``buckets`` (every dict names the same layers), through ``lab.runtime``."""
    return measure_table_and_sets(model, buckets, {}, setup)[0]


def measure_table_and_sets(
    model: nn.Module,
    buckets: list[dict[str, torch.Tensor]],
    sets: Mapping[str, Mapping[str, torch.Tensor]],
    setup: TimingSetup,
    runtime: str | None = None,
) -> tuple[LatencyTable, dict[str, float]]:
    """:func:`measure_table`, and every set of ``sets`` (name -> layer masks) measured end
    to end in the same interleaved rounds (so a neighbour's load shifts both alike).

    ``runtime`` ``None`` times on the native engine where it can run the model (what
    ``ReconfigurableModel``'s ``auto`` runs), else on the torch reference's per-layer forms."""
    import copy

    from lab.model.training import torch_threads
    from lab.runtime.measure import make_inputs, timed_rounds
    from lab.runtime.pattern_set import PatternSet

    block_rows, block_cols, threads = setup.block_rows, setup.block_cols, setup.threads
    rounds, per_round = setup.rounds, setup.per_round
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
        inputs = make_inputs(base, setup.batch, setup.seq_len)
        rm_engine = None
        if runtime in (None, "engine"):
            rm_engine = _engine_model(
                base, bucket_sets + extra + list(one.values()), runtime == "engine", threads
            )
        raw: dict[str, list[float]] = {}
        if rm_engine is not None:
            used = "engine"
            eng = rm_engine
            # the call a serving loop makes, as evaluate and profile time it
            run = eng.serving_call(*inputs["args"], **inputs["kwargs"])
            variants: dict[str, tuple[Any, Any]] = {"dense": (lambda: eng.switch(None), run)}
            for key, ps in one.items():
                if key.endswith("|0"):  # the model dense again, just before each layer's
                    variants[dense_key(key)] = (lambda: eng.switch(None), run)
                variants[key] = (lambda n=ps.name: eng.switch(n), run)
            for ps in bucket_sets + extra:
                variants[ps.name] = (lambda n=ps.name: eng.switch(n), run)
            timed_rounds(variants, rounds, per_round, warmup=2, raw=raw, settle=1)
            eng.switch(None)
        else:
            from lab.runtime.reconfigurable import ReconfigurableModel

            used = "per-layer"
            rm = ReconfigurableModel(  # the torch reference: one layer at a time
                base, bucket_sets + extra, executor="torch", rows_hint=setup.rows
            )
            run_rm = rm.serving_call(*inputs["args"], **inputs["kwargs"])

            def activate(forms: dict[str, Any]) -> None:
                rm.activate_forms(forms)  # one layer in a bucket's form, the others dense

            variants = {"dense": (lambda: rm.switch(None), run_rm)}
            for key in one:
                name, i = key.split("|", 1)
                if i == "0":
                    variants[dense_key(key)] = (lambda: rm.switch(None), run_rm)
                form = {name: rm.forms[bucket_sets[int(i)].name][name]}
                variants[key] = (lambda f=form: activate(f), run_rm)
            for ps in bucket_sets + extra:
                variants[ps.name] = (lambda n=ps.name: rm.switch(n), run_rm)
            timed_rounds(variants, rounds, per_round, warmup=2, raw=raw, settle=1)
            rm.switch(None)
    timed = fastest_ms(raw)
    table_out = _fitted_table(timed, buckets, bucket_sets, dens, threads, setup.rows, used)
    measured = {extra_names[ps.name]: timed[ps.name] for ps in extra}
    return table_out, measured


def _fitted_table(
    timed: Mapping[str, float],
    buckets: list[dict[str, torch.Tensor]],
    bucket_sets: list[Any],
    dens: Mapping[str, float],
    threads: int,
    rows: int,
    runtime: str,
) -> LatencyTable:
    """The table from the variants' fastest times (ms): every layer's points
    (:func:`layer_points`) and the additivity factor."""
    from lab.runtime.measure import host_freq_khz

    dense, table = layer_points(timed, dens, list(buckets[0]))
    # the sum of one-layer savings against whole sets (every layer at a bucket), measured in
    # the same rounds: one least-squares factor through the origin
    prelim = LatencyTable({}, threads, "", 1, rows, dense, table)
    pred = [prelim.host_ms(layer_densities(b)) - dense for b in buckets]
    meas = [timed[ps.name] - dense for ps in bucket_sets]
    den = sum(x * x for x in pred)
    additivity = sum(x * y for x, y in zip(pred, meas, strict=True)) / den if den > 0 else 1.0
    additivity = min(max(additivity, 0.25), 4.0)
    freq = host_freq_khz() or 0
    return LatencyTable(
        host=host_identity(),
        threads=threads,
        date=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        host_freq_khz=freq if freq > 0 else 1_000_000,
        rows=rows,
        dense_ms=dense,
        layers=table,
        additivity=additivity,
        runtime=runtime,
    )


def _engine_model(module: nn.Module, sets: list[Any], required: bool, threads: int = 1) -> Any:
    """``module`` with ``sets`` on the native engine (``ReconfigurableModel``'s engine
    executor, timed through the same call as the runtime's), or None where the engine
    cannot run them (``required``: raise instead)."""
    from lab.runtime.reconfigurable import ReconfigurableModel, ReconfigurationError

    try:
        return ReconfigurableModel(module, sets, executor="engine", engine_threads=threads)
    except ReconfigurationError:
        if required:
            raise
        return None
