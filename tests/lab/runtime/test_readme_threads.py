"""The runtime README's thread-scaling lines are what the recorded benches say
(``rt3lab bench runtime ... --threads 1,2 --json`` kept under docs/)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def thread_line(name: str) -> str:
    """The README's line for ``docs/NAME.json``: the engine's dense model at each count, its
    speedup at the last, the sets' speedups, and ExecuTorch's dense model beside it."""
    doc = json.loads((ROOT / "docs" / f"{name}.json").read_text(encoding="utf-8"))
    by = doc["engine_by_threads"]
    first, last = by[min(by, key=int)], by[max(by, key=int)]
    sets = ", ".join(
        f"{s} {first['sets'][s]['latency_ms'] / last['sets'][s]['latency_ms']:.2f}x"
        for s in first["sets"]
    )
    line = (
        f"`docs/{name}.json`: engine dense {first['dense_latency_ms']:.3f} ms at "
        f"{first['threads']} thread, {last['dense_latency_ms']:.3f} ms at {last['threads']} "
        f"({last['dense_speedup_over_first']:.2f}x); sets {sets}"
    )
    if "anchor_dense_latency_ms" in first:
        line += (
            f"; ExecuTorch XNNPACK dense {first['anchor_dense_latency_ms']:.3f} / "
            f"{last['anchor_dense_latency_ms']:.3f} ms, the engine "
            f"{first['engine_dense_speedup_over_anchor']:.2f}x / "
            f"{last['engine_dense_speedup_over_anchor']:.2f}x faster"
        )
    return line


def test_readme_thread_lines_match_the_recorded_benches():
    readme = " ".join((ROOT / "lab" / "runtime" / "README.md").read_text(encoding="utf-8").split())
    for name in ("runtime-bench-synthetic-small", "runtime-bench-default", "runtime-bench-quick"):
        assert thread_line(name) in readme, thread_line(name)


def scheme_line(name: str) -> str:
    """The README's line for ``docs/NAME.json`` (a width or depth bundle's bench): each
    set's speedup over engine dense against its FLOP limit, and the share of the limit."""
    doc = json.loads((ROOT / "docs" / f"{name}.json").read_text(encoding="utf-8"))
    sets = "; ".join(
        f"{n} {s['speedup']:.2f}x of a {s['flop_speedup_limit']:.2f}x limit "
        f"({s['speedup_over_limit']:.3f} [{s['speedup_over_limit_ci95'][0]:.3f}, "
        f"{s['speedup_over_limit_ci95'][1]:.3f}])"
        for n, s in doc["sets"].items()
    )
    return f"`docs/{name}.json` (engine dense {doc['dense_latency_ms']:.3f} ms): {sets}"


def test_readme_width_and_depth_lines_match_the_recorded_benches():
    readme = " ".join((ROOT / "lab" / "runtime" / "README.md").read_text(encoding="utf-8").split())
    for name in ("runtime-bench-width-quick", "runtime-bench-depth-quick"):
        assert scheme_line(name) in readme, scheme_line(name)


def _speedups(name: str) -> tuple[float, list[float]]:
    """``docs/NAME.json``'s dense speedup at the last count over the first, and its sets'."""
    doc = json.loads((ROOT / "docs" / f"{name}.json").read_text(encoding="utf-8"))
    by = doc["engine_by_threads"]
    first, last = by[min(by, key=int)], by[max(by, key=int)]
    sets = [first["sets"][s]["latency_ms"] / last["sets"][s]["latency_ms"] for s in first["sets"]]
    return last["dense_speedup_over_first"], sets


def test_readme_scaling_paragraph_quotes_the_recorded_benches():
    """The hand-written reading under the lines: its speedups are the recorded runs'."""
    readme = " ".join((ROOT / "lab" / "runtime" / "README.md").read_text(encoding="utf-8").split())
    start = readme.index("On the default budget's model the engine scales")
    text = readme[start : readme.index("Where the threads run", start)]
    for name, what in (
        ("runtime-bench-default", "dense {d:.2f}x and the sets {lo:.2f}-{hi:.2f}x here"),
        ("runtime-bench-synthetic-small", "{d:.2f}x dense on the synthetic model of its shape "
         "(its sets {lo:.2f}-{hi:.2f}x)"),
        ("runtime-bench-quick", "(dense {d:.2f}x, sets {lo:.2f}-{hi:.2f}x)"),
    ):  # fmt: skip
        dense, sets = _speedups(name)
        assert what.format(d=dense, lo=min(sets), hi=max(sets)) in text, name
    quick = json.loads((ROOT / "docs" / "runtime-bench-quick.json").read_text(encoding="utf-8"))
    by = quick["engine_by_threads"]
    p800 = by["1"]["sets"]["pp-800mhz"]["latency_ms"] / by["2"]["sets"]["pp-800mhz"]["latency_ms"]
    assert f"here {p800:.2f}x" in text
