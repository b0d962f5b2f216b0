"""``rt3lab bench runner``: the standalone runner on this host, against the ctypes engine.

A separate bench from ``bench runtime`` (which times PyTorch, the engine and the anchors in
one process): this one builds the host runner and runs it as its own process, as a board
would, on one export. Two figures:

- **latency**: per set (and dense), the runner's median latency (its own clock, per run)
  next to the ctypes engine's (``Engine.bind``'s prepared call timed from Python, the
  ctypes call included) on the same export and token sequence, in interleaved rounds (which
  goes first rotates), with the ratio runner / ctypes and its 95 % bootstrap interval over
  whole rounds (``lab.runtime.measure.ratio_ci``). Target: within 10 % (no hidden Python
  cost either way). Beside them ``Engine.forward_into``, which checks its arrays and looks
  up their pointers on every call: ``forward_into_extra_ms`` is what that costs per
  inference (Python run on caches the inference has just filled). Both on ``--threads N``
  (default 1): the engine's own pool, in the runner and in the ctypes engine alike.
- **switch**: the runner's ``--switch-to`` median (1001 switches there and back) from each
  set to the next, and their median. Target: under 0.1 ms.

``--bundle B`` measures a bundle; ``--synthetic distilbert`` RT3's Transformer LM at
DistilBERT's size (6 layers, hidden 768, ff 3072, 12 heads; vocabulary 1000 so the decoder
does not dominate), ``--synthetic rt3`` at RT3's, ``--synthetic small`` the default
budget's, all with random weights and nested block-column sets (``--densities``). The load
average is recorded with the figures: on a shared machine they are contaminated.

``bench_runner(RunnerBenchOptions(...))`` is the command as a function: it returns a
``RunnerBenchResult`` whose ``as_dict()`` is what ``--json`` prints.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from contracts import strict_json
from lab.bench.source import BenchInputError, SourceOptions, densities
from lab.host.threads import threads_option

app = typer.Typer()

DISTILBERT_RT3 = {"vocab_size": 1000, "emb": 768, "ff": 3072, "layers": 6, "heads": 12}
SWITCH_TARGET_MS = 0.1
RATIO_TARGET = 0.10


class RunnerBenchError(BenchInputError):
    """Bad command-line input for the runner bench."""


@dataclass
class RunnerBenchOptions(SourceOptions):
    """What ``rt3lab bench runner`` measures and how (its options, by the same names)."""

    densities: str = "0.6,0.5,0.3,0.2"
    runs: int = 50
    warmup: int = 5
    rounds: int = 7
    tokens: int = 35
    threads: int = 1


@dataclass
class RunnerBenchResult:
    """What ``rt3lab bench runner`` measured; ``as_dict()`` is its ``--json``."""

    source: dict[str, Any]
    tokens: int
    runs: int
    warmup: int
    rounds: int
    threads: int
    load_average: list[float]
    cpu: str
    simd: Any
    date: str
    latency: dict[str, dict[str, Any]]
    switch_ms: dict[str, float]
    switch_median_ms: float
    switch_under_target: bool  # the median under SWITCH_TARGET_MS

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``switch_under_target`` as ``switch_under_0.1ms``)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["switch_under_0.1ms"] = out.pop("switch_under_target")
        return out


def bench_runner(options: RunnerBenchOptions) -> RunnerBenchResult:
    """``rt3lab bench runner`` as a function: build the host runner, export the bundle (or
    the synthetic model) and measure both sides on it."""
    o = options
    limits = (("--runs", o.runs, 1), ("--rounds", o.rounds, 1), ("--tokens", o.tokens, 1),
              ("--warmup", o.warmup, 0))  # fmt: skip
    for opt, value, low in limits:
        if value < low:
            raise RunnerBenchError(f"{opt}: must be at least {low}, got {value}")
    from lab.host.cpu import cpu_model, simd_flags
    from lab.runtime.runner import build_runner

    load = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="rt3lab-runner-bench-") as tmp:
        export, source = _export(options, Path(tmp) / "export")
        binary = build_runner("host", Path(tmp) / "rt3lab-runner")
        result = measure(export, binary, o.runs, o.warmup, o.rounds, o.tokens, o.threads)
    return RunnerBenchResult(
        source=source, tokens=o.tokens, runs=o.runs, warmup=o.warmup, rounds=o.rounds,
        threads=o.threads, load_average=load, cpu=cpu_model(), simd=simd_flags(),
        date=datetime.now(UTC).isoformat(timespec="seconds"), latency=result["latency"],
        switch_ms=result["switch_ms"], switch_median_ms=result["switch_median_ms"],
        switch_under_target=result["switch_under_0.1ms"],
    )  # fmt: skip


def _export(options: RunnerBenchOptions, out: Path) -> tuple[Path, dict[str, Any]]:
    """Write the export measured; (its directory, what it is)."""
    from lab.runtime.export import export_bundle, write_export

    bundle, synthetic, seed = options.bundle, options.check(), options.seed
    if bundle is not None:
        from lab.runtime.bundle import Bundle

        b = Bundle.load(bundle)
        return export_bundle(b, out), {"bundle": str(bundle), "model": b.model["kind"]}
    import torch

    from lab.model.transformer import RT3TransformerLM
    from lab.runtime import synthetic as syn

    configs = {
        "distilbert": DISTILBERT_RT3,
        "rt3": {"vocab_size": 28_782, "emb": 800, "ff": 200, "layers": 2, "heads": 4},
        "small": syn.SMALL_RT3_CONFIG,
    }
    if synthetic not in configs:
        raise RunnerBenchError(f"--synthetic: {synthetic!r} is not one of {list(configs)}")
    config = dict(configs[synthetic])
    torch.manual_seed(seed)
    model = RT3TransformerLM(**config).eval()
    wanted = densities(options.densities)
    sets = syn.nested_block_column_sets(syn.prunable(model, "rt3"), wanted, seed=seed)
    state = {k: v.detach() for k, v in model.state_dict().items()}
    source = {"synthetic": synthetic, "config": config, "weights": "random", "seed": seed}
    return write_export(out, config, state, sets), source


def measure(
    export: Path, binary: Path, runs: int, warmup: int, rounds: int, tokens: int, threads: int = 1
) -> dict[str, Any]:
    """Interleaved rounds of the runner and the ctypes engine on every set, and the runner's
    switch times (see the module's docstring)."""
    import time

    import numpy as np

    from lab.runtime.engine import Engine
    from lab.runtime.measure import ratio_ci
    from lab.runtime.runner import median, run_runner

    engine = Engine(export, threads=threads)
    names = ["dense", *engine.set_names]
    vocab = engine.vocab
    ids = np.array([(t * 7919 + 13) % vocab for t in range(tokens)], dtype=np.int64)
    out = np.empty((tokens, vocab), dtype=np.float32)
    runner_ms: dict[str, list[float]] = {n: [] for n in names}
    ctypes_ms: dict[str, list[float]] = {n: [] for n in names}
    into_ms: dict[str, list[float]] = {n: [] for n in names}
    bound = engine.bind(ids, out)

    def timed(call: Any) -> list[float]:
        for _ in range(warmup):
            call()
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            call()
            times.append((time.perf_counter() - t0) * 1e3)
        return times

    def timed_runner(name: str) -> list[float]:
        res = run_runner(binary, export, name, runs, warmup, tokens=ids.tolist(), threads=threads)
        return [float(x) for x in res["runs_ms"]]

    for r in range(rounds):
        for name in names:
            engine.select(None if name == "dense" else name)
            sides = [
                (runner_ms, lambda n=name: timed_runner(n)),
                (ctypes_ms, lambda: timed(bound)),
                (into_ms, lambda: timed(lambda: engine.forward_into(ids, out))),
            ]
            k = r % len(sides)  # which goes first rotates between rounds
            for store, measure_side in sides[k:] + sides[:k]:
                store[name] += measure_side()
    engine.close()
    latency = {}
    for name in names:
        rm, cm, im = median(runner_ms[name]), median(ctypes_ms[name]), median(into_ms[name])
        lo, hi = ratio_ci(runner_ms[name], ctypes_ms[name], per_round=runs)
        latency[name] = {
            "runner_median_ms": rm,
            "ctypes_median_ms": cm,
            "ratio": rm / cm,
            "ratio_ci95": [lo, hi],
            "within_10pct": abs(rm / cm - 1) <= RATIO_TARGET,
            # the general call (checks and pointer look-ups per call) against the bound one
            "forward_into_median_ms": im,
            "forward_into_extra_ms": im - cm,
        }
    switch = {}
    for i, name in enumerate(names):
        other = names[(i + 1) % len(names)]
        res = run_runner(binary, export, name, 1, 0, other, ids.tolist(), threads=threads)
        switch[f"{name}->{other}"] = float(res["switch_ms"])
    sw_median = median(list(switch.values()))
    return {
        "latency": latency,
        "switch_ms": switch,
        "switch_median_ms": sw_median,
        "switch_under_0.1ms": sw_median < SWITCH_TARGET_MS,
    }


def _print(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    src = result["source"]
    what = src.get("bundle") or f"synthetic {src.get('synthetic')}"
    t = Table(
        title=f"host runner vs ctypes engine, {what} ({result['tokens']} tokens, "
        f"{result['threads']} threads)"
    )
    cols = ("set", "runner ms", "ctypes ms", "runner/ctypes", "95% CI", "within 10%",
            "forward_into ms")  # fmt: skip
    for col in cols:
        t.add_column(col, justify="left" if col == "set" else "right")
    for name, row in result["latency"].items():
        lo, hi = row["ratio_ci95"]
        t.add_row(
            name, f"{row['runner_median_ms']:.4f}", f"{row['ctypes_median_ms']:.4f}",
            f"{row['ratio']:.3f}", f"[{lo:.3f}, {hi:.3f}]",
            "yes" if row["within_10pct"] else "NO", f"{row['forward_into_median_ms']:.4f}",
        )  # fmt: skip
    s = Table(title="switch on the runner (--switch-to, median of 1001 there and back)")
    s.add_column("switch")
    s.add_column("ms", justify="right")
    for pair, ms in result["switch_ms"].items():
        s.add_row(pair, f"{ms:.6f}")
    c = Console()
    c.print(t)
    c.print(s)
    ok = "under" if result["switch_under_0.1ms"] else "NOT under"
    c.print(f"switch median {result['switch_median_ms']:.6f} ms: {ok} the 0.1 ms target")
    c.print(f"load average at the start: {result['load_average']}")


@app.command("runner")
def runner(
    bundle: Path | None = typer.Option(None, "--bundle", help="Bundle directory."),
    synthetic: str | None = typer.Option(
        None, "--synthetic", help="distilbert (6x768), rt3 or small: random weights instead."
    ),
    densities: str = typer.Option(
        "0.6,0.5,0.3,0.2", "--densities", help="Synthetic sets' densities."
    ),
    runs: int = typer.Option(50, "--runs", help="Timed runs per set, round and side."),
    warmup: int = typer.Option(5, "--warmup", help="Warm-up runs before each batch."),
    rounds: int = typer.Option(7, "--rounds", help="Interleaved rounds."),
    tokens: int = typer.Option(35, "--tokens", help="Tokens per inference (batch 1)."),
    seed: int = typer.Option(0, "--seed", help="Synthetic weights' and sets' seed."),
    threads: int = typer.Option(
        1, "--threads", help="The engine's threads (1..256), both sides.", callback=threads_option
    ),
    json_out: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """The host runner against the ctypes engine on one export, and the runner's switch."""
    options = RunnerBenchOptions(
        bundle=bundle, synthetic=synthetic, densities=densities, seed=seed, runs=runs,
        warmup=warmup, rounds=rounds, tokens=tokens, threads=threads,
    )  # fmt: skip
    result = bench_runner(options).as_dict()
    if json_out:
        typer.echo(strict_json.dumps(result))
    else:
        _print(result)
