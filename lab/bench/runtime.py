"""``rt3lab bench runtime``: host latency of every pattern set, its anchors and its switches.

Measures, on this machine, with warm-up, interleaved repetitions, medians and p99, and
pinned threads: the dense model and each pattern set end to end and per layer, speedup
(with a 95 % bootstrap interval over the interleaved rounds) next to the FLOP-reduction
limit of the pruned layers and the Amdahl limit (the unpruned
rest, timed with every pruned Linear answering instantly, does not shrink), the same masks
run the ways others run them (weight x mask per call, PyTorch BSR via ``torch.addmm``,
pre-masked dense), the switch time against RT3-style switching (mask re-application,
``load_state_dict``), the first inference after a switch (caches hold the previous
variant's weights), and memory. ``--synthetic rt3|small|distilbert`` measures random-weight
models with random nested block-column sets instead of a bundle.

``--threads 1,2``: the whole bench runs at the first count (torch's threads and the native
engine's), and the engine alone at every count in interleaved rounds of its own
(``engine_by_threads`` in the JSON, :mod:`lab.runtime.thread_scaling`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

app = typer.Typer()

PROVENANCE_KEY = "host-runtime-bench"


class BenchInputError(ValueError):
    """Bad command-line input for the runtime bench."""


def densities(text: str) -> dict[str, float]:
    """``--densities`` parsed (``0.5,0.2``): synthetic sets named ``p50``, ``p20``."""
    out = {}
    for part in text.split(","):
        try:
            d = float(part)
        except ValueError:
            raise BenchInputError(f"--densities: {part!r} is not a number") from None
        if not 0 < d <= 1:
            raise BenchInputError(f"--densities: {d} is not in (0, 1]")
        out[f"p{round(d * 100):02d}"] = d
    return out


def _load_source(
    bundle: Path | None, synthetic: str | None, density_text: str, seed: int
) -> tuple[Any, list[Any], dict[str, Any], dict[str, Any]]:
    """(base module with backbone loaded, sets, entries by set name, source description)."""
    if (bundle is None) == (synthetic is None):
        raise BenchInputError(
            "give exactly one of --bundle DIR or --synthetic rt3|small|distilbert"
        )
    if synthetic is not None:
        from lab.runtime import synthetic as syn

        if synthetic not in syn.SYNTHETIC_KINDS:
            raise BenchInputError(
                f"--synthetic: {synthetic!r} is not one of {list(syn.SYNTHETIC_KINDS)}"
            )
        wanted = densities(density_text)  # the parameter no longer hides the parser
        model = syn.synthetic_model(synthetic, seed=seed)
        sets = syn.nested_block_column_sets(syn.prunable(model, synthetic), wanted, seed=seed)
        return model, sets, {}, {"synthetic": synthetic, "weights": "random", "seed": seed}
    from lab.runtime.bundle import Bundle
    from lab.runtime.reconfigurable import module_from_bundle

    b = Bundle.load(bundle)
    module = module_from_bundle(b)
    return (
        module,
        list(b.sets.values()),
        {n: e for n, e in b.entries.items()},
        {"bundle": str(bundle), "model": b.model["kind"]},
    )


def profile_latency_section(result: dict[str, Any], entries: dict[str, Any]) -> dict[str, Any]:
    """The figures as a device-profile fragment: ``sources``, ``variants``, ``switch_cost``.

    Latencies are LevelLatency rows at the host's current frequency, provenance measured.
    """
    from device_profiles.schema import LevelLatency, SwitchCost, Variant

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

    variants = [
        Variant(
            name="dense",
            sparsity=0.0,
            latency=[row(result["dense_latency_ms"])],
            provenance=PROVENANCE_KEY,
        ).model_dump(exclude_none=True)
    ]
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


def _role(layer: str) -> str:
    return ".".join("*" if p.isdigit() else p for p in layer.split("."))


def _print_tables(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from termout import console as termout_console
    from termout import is_terminal

    con = termout_console() if not is_terminal() else Console(width=max(Console().width, 170))
    w = result["workload"]
    h = result["host"]
    con.print(
        f"[bold]runtime bench[/]: {result['source']}  batch {w['batch']}  seq {w['seq_len']}  "
        f"threads {h['threads']} (cpus {h['affinity']})  {h['cpu']} @ {h['freq_khz']} kHz"
    )
    t = Table(title="end to end (median ms, interleaved)")
    cols = ["variant", "density", "latency", "p99", "1st after switch", "speedup"]
    cols += ["FLOP limit", "of limit (95% CI)", "Amdahl limit"]
    native = result.get("native_dense_latency_ms")
    if native is not None:
        cols += ["speedup over native dense", "of limit (95% CI)"]
    for c in cols:
        t.add_column(c, justify="right")
    pad = [""] * (len(cols) - 6)
    d = result["dense_latency_ms"]
    t.add_row(
        "dense",
        "1.000",
        f"{d:.2f}",
        f"{result['dense_latency_p99_ms']:.2f}",
        f"{result['dense_first_after_switch_ms']:.2f}",
        "1.00",
        *pad,
    )
    if native is not None:
        t.add_row("dense, native", "1.000", f"{native:.2f}", "", "", f"{d / native:.2f}", *pad)
    anchors = Table(title="the same masks run as others run them (ms; compact's speedup over it)")
    for c in ("set", "x*mask", "BSR", "premasked"):
        anchors.add_column(c, justify="right")
    for name, s in result["sets"].items():
        a = s.get("anchors", {})
        lo, hi = s["speedup_over_limit_ci95"]
        row = [
            name,
            f"{s['density']:.3f}",
            f"{s['latency_ms']:.2f}",
            f"{s['latency_p99_ms']:.2f}",
            f"{s['first_after_switch_ms']:.2f}",
            f"{s['speedup']:.2f}",
            f"{s['flop_speedup_limit']:.2f}",
            f"{s['speedup_over_limit']:.2f} ({lo:.2f}-{hi:.2f})",
            f"{s['amdahl_limit']:.2f}" if "amdahl_limit" in s else "",
        ]
        if native is not None:
            mlo, mhi = s["native_dense_speedup_over_limit_ci95"]
            row += [
                f"{s['speedup_over_native_dense']:.2f}",
                f"{s['native_dense_speedup_over_limit']:.2f} ({mlo:.2f}-{mhi:.2f})",
            ]
        t.add_row(*row)
        if a:
            anchors.add_row(
                name,
                *(
                    f"{a[k]['latency_ms']:.1f} ({a[k]['compact_speedup']:.1f}x)" if k in a else ""
                    for k in ("mask-per-call", "bsr", "premasked")
                ),
            )
    con.print(t)
    ed = result.get("engine_dense_latency_ms")
    if ed is not None:
        et = Table(title="the whole model on the native engine (median ms, same rounds)")
        for c in ("variant", "latency", "over torch dense", "of limit (95% CI)",
                  "over engine dense", "of limit (95% CI) "):  # fmt: skip
            et.add_column(c, justify="right")
        et.add_row("engine dense", f"{ed:.3f}", f"{d / ed:.2f}", "", "1.00", "")
        for name, s in result["sets"].items():
            e = s.get("engine")
            if e is None:
                continue
            tlo, thi = e["torch_dense_speedup_over_limit_ci95"]
            elo, ehi = e["engine_dense_speedup_over_limit_ci95"]
            et.add_row(
                f"engine {name}",
                f"{e['latency_ms']:.3f}",
                f"{e['speedup_over_torch_dense']:.2f}",
                f"{e['torch_dense_speedup_over_limit']:.2f} ({tlo:.2f}-{thi:.2f})",
                f"{e['speedup_over_engine_dense']:.2f}",
                f"{e['engine_dense_speedup_over_limit']:.2f} ({elo:.2f}-{ehi:.2f})",
            )
        con.print(et)
    if anchors.row_count:
        con.print(anchors)
    ex = result.get("executorch_dense")
    if ex is not None:
        xt = Table(
            title=f"against ExecuTorch {ex['executorch']} {ex['backend']} dense "
            f"({ex['threads']} threads; median ms, same rounds; speedup over it, 95% CI)"
        )
        for c in ("variant", "latency", "speedup over ExecuTorch dense"):
            xt.add_column(c, justify="right")
        xt.add_row("ExecuTorch dense", f"{ex['latency_ms']:.3f}", "1.00")
        xt.add_row("torch dense", f"{d:.3f}", f"{ex['torch_dense_speedup_over_it']:.2f}")
        if ed is not None:
            xt.add_row("engine dense", f"{ed:.3f}", f"{ex['engine_dense_speedup_over_it']:.2f}")
        for name, s in result["sets"].items():
            x = s.get("executorch_dense", {})
            for how, label, ms in (
                ("compact", f"torch {name}", s["latency_ms"]),
                ("engine", f"engine {name}", s.get("engine", {}).get("latency_ms")),
            ):
                if f"{how}_speedup" in x:
                    lo, hi = x[f"{how}_speedup_ci95"]
                    xt.add_row(label, f"{ms:.3f}", f"{x[f'{how}_speedup']:.2f} ({lo:.2f}-{hi:.2f})")
        con.print(xt)
    con.print(f"native kernel: {result.get('native_kernel', 'not reported')}")
    if "layers" in result:
        roles: dict[str, dict[str, list[float]]] = {}
        for name, lay in result["layers"].items():
            r = roles.setdefault(_role(name), {"dense": []})
            r["dense"].append(lay["dense_ms"])
            for k, v in lay["sets"].items():
                r.setdefault(k, []).append(v["ms"])
        lt = Table(title="per layer, summed over layers of a role (ms; speedup over dense)")
        lt.add_column("layer")
        lt.add_column("dense", justify="right")
        names = list(result["sets"])
        for n in names:
            lt.add_column(n, justify="right")
        for role, r in roles.items():
            d = sum(r["dense"])
            cells = [f"{sum(r[n]):.3f} ({d / sum(r[n]):.2f}x)" if n in r else "" for n in names]
            lt.add_row(role, f"{d:.3f}", *cells)
        con.print(lt)
    st = Table(title="switching (ms)")
    for c in ("how", "median", "p99", "vs compact"):
        st.add_column(c, justify="right")
    st.add_row(
        "compact (swap references)",
        f"{result['switch_ms_median']:.4f}",
        f"{result['switch_ms_p99']:.4f}",
        "1x",
    )
    for k, v in result.get("switch_anchors", {}).items():
        st.add_row(
            k, f"{v['median_ms']:.2f}", f"{v['p99_ms']:.2f}", f"{v['over_compact_median']:.0f}x"
        )
    st.add_row("RT3 (paper, its device)", "45", "", f"{45 / result['switch_ms_median']:.0f}x")
    con.print(st)
    m = result["memory_bytes"]
    mt = Table(title="memory (MB)")
    for c in ("part", "MB"):
        mt.add_column(c, justify="right")
    mt.add_row("backbone (all parameters, dense)", f"{m['backbone_bytes'] / 1e6:.2f}")
    mt.add_row("one dense copy of the pruned layers", f"{m['pruned_dense_bytes'] / 1e6:.2f}")
    mt.add_row("shared compact pools", f"{m['shared_compact_bytes'] / 1e6:.2f}")
    for k, v in m["sets"].items():
        mt.add_row(f"set {k} (own indices, tables)", f"{v / 1e6:.2f}")
    mt.add_row(
        "all sets together",
        f"{m['sets_total_bytes'] / 1e6:.2f} ({m['sets_over_pruned_dense']:.2f} of a dense copy)",
    )
    con.print(mt)


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
        help="the dense model on ExecuTorch XNNPACK as an anchor row (default: with the "
        "anchors, when the 'executorch' package is installed: pip install 'rt3lab[anchors]')",
    ),
    seed: int = typer.Option(0, help="seed of the synthetic weights, sets and inputs"),
    layout: str = typer.Option("auto", help="shared pool layout: auto, segments or views"),
    as_json: bool = typer.Option(False, "--json", help="print only JSON"),
    profile_out: Path | None = typer.Option(
        None, "--profile-out", help="write the latencies as a device-profile latency section"
    ),
) -> None:
    """Measure the reconfigurable runtime on this host (dense, every set, anchors, switch)."""
    from lab.host.threads import parse_thread_counts

    counts = parse_thread_counts(threads)  # before any work: out of range is one line, exit 2
    import torch

    from lab.runtime.measure import host_info, pin_threads, run_bench

    if layout not in ("auto", "segments", "views"):
        raise BenchInputError(f"--layout: {layout!r} is not one of ['auto', 'segments', 'views']")
    from lab.runtime.anchors import executorch_installed

    if executorch is None:  # an anchor: on with the anchors, when installed
        executorch = anchors and executorch_installed()
    elif executorch and not executorch_installed():
        raise BenchInputError(
            "--executorch: the 'executorch' package is not installed "
            "(pip install 'rt3lab[anchors]')"
        )
    base, sets, entries, source = _load_source(bundle, synthetic, densities, seed)
    pinned = pin_threads(counts[0])
    torch.manual_seed(seed)
    progress = (lambda _m: None) if as_json else (lambda m: typer.echo(f"... {m}", err=True))
    try:
        result = run_bench(
            base,
            sets,
            batch=batch,
            seq_len=seq_len,
            rounds=rounds,
            per_round=per_round,
            warmup=warmup,
            switch_reps=switch_reps,
            anchor_switch_reps=anchor_switch_reps,
            anchors=anchors,
            layers=layers,
            progress=progress,
            layout=layout,
            executorch=executorch,
            engine_threads=counts[0],
        )
    finally:
        pinned["restore"]()  # in-process callers (the demo) keep their threads
    result = {"source": source, "host": host_info(pinned), "engine_threads": counts[0], **result}
    if len(counts) > 1:
        from lab.runtime.thread_scaling import engine_by_threads

        result["engine_by_threads"] = engine_by_threads(
            base, sets, counts, batch, seq_len, rounds, per_round, warmup, progress
        )
    result["command"] = "rt3lab bench runtime " + " ".join(
        f"--{k.replace('_', '-')} {v}"
        for k, v in (
            ("bundle", bundle),
            ("synthetic", synthetic),
            ("threads", threads),
            ("seq_len", seq_len),
            ("batch", batch),
        )
        if v is not None
    )
    if profile_out is not None:
        import yaml

        section = profile_latency_section(result, entries)
        profile_out.write_text(yaml.safe_dump(section, sort_keys=False))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        _print_tables(result)
        _print_thread_table(result.get("engine_by_threads"))


def _print_thread_table(by_threads: dict[str, Any] | None) -> None:
    """The engine at every ``--threads`` count (median ms; speedup over the first count)."""
    if not by_threads:
        return
    from rich.table import Table

    from termout import console

    t = Table(title="the native engine by thread count (median ms, interleaved)")
    rows = next(iter(by_threads.values()))
    for c in ("threads", "dense", "over the first count", *rows["sets"]):
        t.add_column(c, justify="right")
    for n, r in by_threads.items():
        cells = [f"{s['latency_ms']:.3f}" for s in r["sets"].values()]
        t.add_row(n, f"{r['dense_latency_ms']:.3f}", f"{r['dense_speedup_over_first']:.2f}", *cells)
    console().print(t)
