"""The tables ``rt3lab bench runtime`` prints (from its ``--json`` form, old or new).

The runtime first (end to end, dense and every set; its serving call's wrapper against the
bound engine call), then the anchors (each anchor's run of
every set, the runtime's speedup over it; the runtime's sets against each anchor's dense
model), the torch reference per layer, switching and memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table


def print_tables(result: dict[str, Any]) -> None:
    """Print every table of a ``RuntimeBenchResult.as_dict()``."""
    from rich.console import Console

    from termout import console as termout_console
    from termout import is_terminal

    con = termout_console() if not is_terminal() else Console(width=max(Console().width, 170))
    w, h = result["workload"], result["host"]
    con.print(
        f"[bold]runtime bench[/]: {result['source']}  batch {w['batch']}  seq {w['seq_len']}  "
        f"threads {h['threads']} (cpus {h['affinity']})  {h['cpu']} @ {h['freq_khz']} kHz"
    )
    con.print(f"runtime: {result.get('runtime', '?')} ({result.get('runtime_note', '')})")
    if "flop_limit" in result:
        con.print(f"FLOP limit: {result['flop_limit']}")
    for table in (
        runtime_table(result),
        thread_table(result),
        serving_table(result),
        anchor_table(result),
        anchor_dense_table(result),
        layer_table(result),
        switch_table(result),
        memory_table(result),
    ):
        if table is not None and table.row_count:
            con.print(table)
    for name, a in result.get("anchors", {}).items():
        if "skipped" in a:
            con.print(f"anchor {name}: skipped ({a['skipped']})")


def _table(title: str, columns: list[str]) -> Table:
    from rich.table import Table

    t = Table(title=title)
    for c in columns:
        t.add_column(c, justify="right")
    return t


def _ci(value: float, ci: list[float]) -> str:
    return f"{value:.2f} ({ci[0]:.2f}-{ci[1]:.2f})"


def _variants(name: str, s: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """A set's rows: the set (a depth or early-exit set's labelled with the layers its exit
    runs), then an early-exit set's earlier exits."""
    exits = s.get("per_exit", [])
    if "exit_layers" not in s:
        return [(name, s)]
    last = "last exit, " if exits else ""
    rows = [(f"{name} ({last}depth {s['exit_layers']})", s)]
    rows += [(f"  exit at depth {e['exit_layers']}", e) for e in exits[:-1]]
    return rows


def runtime_table(result: dict[str, Any]) -> Table:
    """The runtime end to end: dense and every set (an early-exit set's every exit), speedup
    over its own dense model (and the Amdahl limit where the runtime is the torch reference,
    whose rest can be timed)."""
    sets = result["sets"]
    amdahl = any("amdahl_limit" in s for s in sets.values())
    cols = ["variant", "density", "latency", "p99", "1st after switch", "speedup"]
    cols += ["FLOP limit", "of limit (95% CI)"] + ["Amdahl limit"] * amdahl
    t = _table(f"the runtime ({result.get('runtime', '?')}), end to end (median ms)", cols)
    d = result["dense_latency_ms"]
    t.add_row(
        "dense", "1.000", f"{d:.3f}", f"{result['dense_latency_p99_ms']:.3f}",
        f"{result['dense_first_after_switch_ms']:.3f}", "1.00", "", "", *[""] * amdahl,
    )  # fmt: skip
    for label, s in (row for n, v in sets.items() for row in _variants(n, v)):
        t.add_row(
            label,
            f"{s['density']:.3f}" if "density" in s else "",
            f"{s['latency_ms']:.3f}",
            f"{s['latency_p99_ms']:.3f}",
            f"{s['first_after_switch_ms']:.3f}",
            f"{s['speedup']:.2f}",
            f"{s['flop_speedup_limit']:.2f}",
            _ci(s["speedup_over_limit"], s["speedup_over_limit_ci95"]),
            *[f"{s['amdahl_limit']:.2f}" if "amdahl_limit" in s else ""] * amdahl,
        )
    return t


def thread_table(result: dict[str, Any]) -> Table | None:
    """The engine at every ``--threads`` count (median ms; dense speedup over the first)."""
    by_threads = result.get("engine_by_threads")
    if not by_threads:
        return None
    rows = next(iter(by_threads.values()))
    peer = "anchor_dense_latency_ms" in rows
    t = _table(
        "the native engine by thread count (median ms, interleaved)",
        ["threads", "dense", "dense over the first count", *rows["sets"]]
        + (["ExecuTorch dense (engine's speedup)"] if peer else []),
    )
    for n, r in by_threads.items():
        cells = [f"{s['latency_ms']:.3f}" for s in r["sets"].values()]
        if peer:
            a, x = r["anchor_dense_latency_ms"], r["engine_dense_speedup_over_anchor"]
            cells.append(f"{a:.3f} ({x:.2f}x)")
        t.add_row(n, f"{r['dense_latency_ms']:.3f}", f"{r['dense_speedup_over_first']:.2f}", *cells)
    return t


def anchor_table(result: dict[str, Any]) -> Table:
    """Each anchor's run of the dense model and of every set (ms), with the runtime's
    speedup over it."""
    names = list(result["sets"])
    t = _table("anchors: the same model and sets run other ways (ms; runtime's speedup)", [
        "anchor", "dense", *names])  # fmt: skip
    for anchor, a in result.get("anchors", {}).items():
        cells = []
        for n in names:
            row = result["sets"][n].get("anchors", {}).get(anchor, {})
            ok = "latency_ms" in row
            cells.append(f"{row['latency_ms']:.3f} ({row['runtime_speedup']:.2f}x)" if ok else "")
        dense = ""
        if "dense_latency_ms" in a:
            dense = f"{a['dense_latency_ms']:.3f} ({a['runtime_dense_speedup']:.2f}x)"
        if dense or any(cells):
            t.add_row(anchor, dense, *cells)
    return t


def anchor_dense_table(result: dict[str, Any]) -> Table:
    """The runtime's sets against each anchor's dense model: speedup, of the FLOP limit."""
    names = list(result["sets"])
    title = "the runtime's sets over each anchor's dense model (speedup; of FLOP limit, 95% CI)"
    t = _table(title, ["dense of", *names])
    for anchor in result.get("anchors", {}):
        rows = [result["sets"][n].get("anchors", {}).get(anchor, {}) for n in names]
        if not any("dense_speedup" in r for r in rows):
            continue
        t.add_row(
            anchor,
            *(
                f"{r['dense_speedup']:.2f}x; "
                + _ci(r["dense_speedup_over_limit"], r["dense_speedup_over_limit_ci95"])
                if "dense_speedup" in r
                else ""
                for r in rows
            ),
        )
    return t


def _role(layer: str) -> str:
    return ".".join("*" if p.isdigit() else p for p in layer.split("."))


def layer_table(result: dict[str, Any]) -> Table | None:
    """The torch reference per layer, summed over the layers of a role (``layers.*.x``)."""
    if "layers" not in result:
        return None
    roles: dict[str, dict[str, list[float]]] = {}
    for name, lay in result["layers"].items():
        r = roles.setdefault(_role(name), {" dense": []})
        r[" dense"].append(lay["dense_ms"])
        for k, v in lay["sets"].items():
            r.setdefault(k, []).append(v["ms"])
    names = list(result["sets"])
    t = _table("the torch reference per layer, summed by role (ms; speedup over dense)", [
        "layer", "dense", *names])  # fmt: skip
    for role, r in roles.items():
        d = sum(r[" dense"])
        cells = [f"{sum(r[n]):.3f} ({d / sum(r[n]):.2f}x)" if n in r else "" for n in names]
        t.add_row(role, f"{d:.3f}", *cells)
    return t


def serving_table(result: dict[str, Any]) -> Table | None:
    """The serving call's wrapper (what the table, evaluate and profile time) and the general
    call against the bound engine call, on the sparsest set (``serving``)."""
    s = result.get("serving")
    if not s:
        return None
    t = _table(
        f"per-call cost over the bound engine call, sparsest set {s['set']} "
        f"({s['bound_median_ms']:.4f} ms bound)",
        ["call", "median ms", "over bound (us)", "of the set", "ratio 95% CI"],
    )
    for side, what in (("serving", "serving_call (measured)"), ("call", "rm(tokens)")):
        over_us = s[f"{side}_overhead_us"]
        lo, hi = s[f"{side}_over_bound_ci95"]
        t.add_row(
            what, f"{s[f'{side}_median_ms']:.4f}", f"{over_us:.2f}",
            f"{over_us / (1e3 * s['bound_median_ms']):.1%}", f"[{lo:.3f}, {hi:.3f}]",
        )  # fmt: skip
    return t


def switch_table(result: dict[str, Any]) -> Table:
    """The runtime's switch against RT3-style switching and RT3's published figure."""
    t = _table("switching (ms)", ["how", "median", "p99", "vs runtime"])
    sw = result["switch_ms_median"]
    t.add_row("runtime (select a set)", f"{sw:.4f}", f"{result['switch_ms_p99']:.4f}", "1x")
    for k, v in result.get("switch_anchors", {}).items():
        over = v.get("over_runtime_median", v.get("over_compact_median", 0.0))
        t.add_row(k, f"{v['median_ms']:.2f}", f"{v['p99_ms']:.2f}", f"{over:.0f}x")
    t.add_row("RT3 (paper, its device)", "45", "", f"{45 / sw:.0f}x")
    return t


def memory_table(result: dict[str, Any]) -> Table:
    """Bytes of the backbone, the runtime's weights and every set's own tables."""
    m = result["memory_bytes"]
    t = _table("memory (MB)", ["part", "MB"])
    t.add_row("backbone (all parameters, dense)", f"{m['backbone_bytes'] / 1e6:.2f}")
    t.add_row("one dense copy of the pruned layers", f"{m['pruned_dense_bytes'] / 1e6:.2f}")
    if m.get("engine_bytes"):
        t.add_row("the engine's copy of the weights", f"{m['engine_bytes'] / 1e6:.2f}")
    if m.get("shared_compact_bytes"):
        t.add_row("shared compact pools", f"{m['shared_compact_bytes'] / 1e6:.2f}")
    for k, v in m["sets"].items():
        t.add_row(f"set {k} (own indices, tables)", f"{v / 1e6:.2f}")
    t.add_row(
        "all sets together",
        f"{m['sets_total_bytes'] / 1e6:.2f} ({m['sets_over_pruned_dense']:.2f} of a dense copy)",
    )
    return t
