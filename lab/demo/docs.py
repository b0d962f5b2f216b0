"""The demo's headline as data: the JSON ``rt3lab demo`` writes, and the README block made
from it.

``rt3lab demo`` writes ``OUT/headline.json`` (and, with ``--docs DIR``, copies it to
``DIR/demo-headline.json`` with the battery-life figure as ``DIR/demo-battery-life.png``).
The README's headline sits between ``<!-- demo-headline:begin -->`` and
``<!-- demo-headline:end -->`` and is exactly ``headline_markdown`` of that JSON;
``python -m lab.demo.docs docs/demo-headline.json README.md`` rewrites it, and
``tests/test_readme_headline.py`` checks it.

With the demo's intervals (``lab.study.intervals.pooled_intervals``, a bootstrap over the
timed runs and the test sequences of the demo's bundle and its replicas, ``bundles`` of
them) each policy's row also holds the 95% intervals of its
hours, on-time inferences and accuracy and its battery life within 1 point of dense, rt3's
row the share of resamples running each set at each level, each gain the intervals of its
ratios and whether they straddle 1 (``intervals``, with ``bundles``, ``sources`` and each
member's rt3 table and accuracies, and ``life_within_dense`` hold the rest);
the README block then shows them and says where an interval straddles 1.0x. A JSON
recorded without them gives the block it always gave.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from lab.host.cpu import cpu_model

FORMAT = "rt3lab-demo-headline"
BEGIN = "<!-- demo-headline:begin -->"
END = "<!-- demo-headline:end -->"
ROW_FIELDS = (
    "policy",
    "battery_life_h",
    "on_time_inferences",
    "missed_inferences",
    "miss_rate",
    "inferences",
    "mean_accuracy",
    "energy_per_on_time_inference_j",
    "switches",
    "variant_at_level",
    "provenance",
)


class HeadlineError(ValueError):
    """A headline JSON or README that cannot be used; the message names file and field."""


def host_info() -> dict[str, Any]:
    """CPU, cores, torch threads, torch version and the cpufreq governor, where known."""
    info: dict[str, Any] = {
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    info["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")
    info["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
    gov = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    info["governor"] = gov.read_text().strip() if gov.is_file() else None
    return info


def headline(
    results: list[Any],
    board: str,
    workload: str,
    elapsed_s: float | None = None,
    intervals: dict[str, Any] | None = None,
    deadline_map: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The headline JSON of a demo run from its ``SimulationResult`` list, with the
    intervals of ``demo_intervals`` where given (see the module's docstring) and the
    deadline map's points and summary (``deadline_map``: ``rt3lab study deadlines``' JSON)."""
    from reports.verdict import gains, provenance_sentence
    from simulator import workload_label

    records = [r.model_dump(mode="json") for r in results]
    rows = [{k: rec.get(k) for k in ROW_FIELDS} for rec in records]
    rt3 = next((rec for rec in records if rec["policy"] == "rt3"), None)
    data = {
        "format": FORMAT,
        "version": 1,
        "board": board,
        "workload": workload,
        "workload_label": workload_label(workload),
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "elapsed_s": elapsed_s,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "host": host_info(),
        "provenance": "" if rt3 is None else provenance_sentence(rt3),
        "policies": rows,
        "gains": [dict(g.__dict__) for g in gains(records)],
    }
    if intervals is not None:
        with_intervals(data, intervals)
    if deadline_map is not None:
        data["deadline_map"] = map_of(deadline_map)
    return data


def map_of(study: dict[str, Any]) -> dict[str, Any]:
    """The part of a deadline study the headline keeps: per point its deadlines, what rt3
    ran, rt3's and static-sparse's accuracy and rt3's gains; the summary."""
    keep = ("battery_life_h", "battery_life_h_ci95", "on_time_inferences",
            "on_time_inferences_ci95", "mean_accuracy", "mean_accuracy_ci95", "table")  # fmt: skip
    points = [
        {
            "top_deadline_ms": p["top_deadline_ms"],
            "anchor": p.get("anchor"),
            "deadlines_ms": p.get("deadlines_ms"),
            "policies": {n: {k: r.get(k) for k in keep} for n, r in p["policies"].items()},
            "gains": p.get("gains", {}),
        }
        for p in study["points"]
    ]
    return {
        "points": points,
        "summary": study["summary"],
        "accuracy_samples": study.get("accuracy_samples"),
        "wall_s": study.get("wall_s"),
    }


def map_lines(data: dict[str, Any]) -> list[str]:
    """The README block's deadline map: a row per point and the study's sentences; none
    for a headline recorded without a map."""
    from reports.deadline_map import map_rows, sets_words

    study = data.get("deadline_map")
    if not study:
        return []
    header, rows = map_rows(study)
    header.append("rt3 ran (top level first)")
    lines = [
        "The deadline map (`rt3lab study deadlines`, a small one: at each top-level deadline "
        "the sets searched again, re-scored, re-timed and simulated with 95% intervals):",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---:|" * len(header),
    ]
    for row, point in zip(rows, study["points"], strict=True):
        lines.append("| " + " | ".join([*row, sets_words(point)]) + " |")
    return [*lines, "", *study["summary"]["sentences"], ""]


INTERVAL_KEYS = ("battery_life_h_ci95", "on_time_inferences_ci95", "mean_accuracy_ci95")


def with_intervals(data: dict[str, Any], intervals: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a headline) with the intervals of ``demo_intervals``'s result added to its
    policies, rt3 and gains, and ``intervals`` (what was resampled, how often, warnings)
    and ``life_within_dense`` (each policy's life within 1 point of dense) beside them."""
    spread = {p["policy"]: p for p in intervals.get("policies", [])}
    within = {r["policy"]: r for r in intervals.get("life_within_dense", [])}
    for row in data["policies"]:
        s = spread.get(row["policy"], {})
        row.update({k: s.get(k) for k in INTERVAL_KEYS})
        w = within.get(row["policy"])
        row["life_within_dense_h"] = None if w is None else w["battery_life_h"]
        if row["policy"] == "rt3":
            row["variant_share"] = s.get("variant_share")
    by_base = {g["baseline"]: g for g in intervals.get("gains", [])}
    for g in data["gains"]:
        spread_g = by_base.get(g["baseline"], {})
        for fig in ("hours", "on_time"):
            r = spread_g.get(fig) or {}
            g[f"{fig}_ci95"] = r.get("ci95")
            g[f"{fig}_straddles_one"] = r.get("straddles_one")
    keep = ("resamples", "seed", "mode", "latency_resampled", "latency_fixed",
            "accuracy_resampled", "accuracy_fixed", "warnings")  # fmt: skip
    data["intervals"] = {k: intervals.get(k) for k in keep}
    if "bundles" in intervals:  # pooled over the demo's bundle and its replicas
        data["intervals"]["bundles"] = intervals["bundles"]
        data["intervals"]["sources"] = intervals.get("sources")
        data["intervals"]["members"] = [
            {"name": m["name"], "tables": {p: r["table"] for p, r in m["policies"].items()
                                          if p == "rt3"},
             "accuracy": m["accuracy"]}
            for m in intervals.get("members", [])
        ]  # fmt: skip
    data["life_within_dense"] = list(within.values())
    if "life_within_dense_unavailable" in intervals:
        data["intervals"]["life_within_dense_unavailable"] = intervals[
            "life_within_dense_unavailable"
        ]
    return data


def gain_of(g: dict[str, Any]) -> Any:
    """A headline gain as ``reports.verdict.Gain`` (its intervals left out)."""
    from dataclasses import fields

    from reports.verdict import Gain

    return Gain(**{f.name: g[f.name] for f in fields(Gain) if f.name in g})


def load_headline(path: str | Path) -> dict[str, Any]:
    """A headline JSON, checked for its format."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise HeadlineError(f"{p}: cannot read a headline JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise HeadlineError(f"{p}: format: expected {FORMAT!r}")
    return data


def _num(x: float | None, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def _count(x: float) -> str:
    """A count, short: ``5.30M``, ``12.3k``, ``950``.

    >>> _count(5_299_740.2), _count(12_345), _count(950)
    ('5.30M', '12.3k', '950')
    """
    if abs(x) >= 1e6:
        return f"{x / 1e6:,.2f}M"
    return f"{x / 1e3:,.1f}k" if abs(x) >= 1e4 else f"{x:,.0f}"


def _with_ci(x: float | None, ci: list[float] | None, spec: str) -> str:
    """``x`` and its 95% interval: ``120.128 [118.500, 121.900]``; a count's interval
    short (``415,078,986 [410.10M, 420.30M]``)."""
    if ci is None:
        return _num(x, spec)
    if spec == ",":
        return f"{_num(x, spec)} [{_count(ci[0])}, {_count(ci[1])}]"
    return f"{_num(x, spec)} [{format(ci[0], spec)}, {format(ci[1], spec)}]"


def _table(data: dict[str, Any], shown: set[str]) -> list[str]:
    """The headline table: with intervals (and life within 1 point of dense) when the
    JSON has them."""
    spread = "intervals" in data
    head = "| policy | battery life (h) | on-time inferences | missed | accuracy |"
    lines = [
        head + (" life within 1 pt of dense (h) |" if spread else ""),
        "|---|---:|---:|---:|---:|",
    ]
    if spread:
        lines[1] += "---:|"
    for r in data["policies"]:
        if r["policy"] not in shown:
            continue
        cells = [
            r["policy"],
            _with_ci(r["battery_life_h"], r.get("battery_life_h_ci95"), ".3f"),
            _with_ci(r["on_time_inferences"], r.get("on_time_inferences_ci95"), ","),
            f"{r['missed_inferences']:,}",
            _with_ci(r["mean_accuracy"], r.get("mean_accuracy_ci95"), ".4f"),
        ]
        if spread:
            within = r.get("life_within_dense_h")
            cells.append("none within 1 pt" if within is None else f"{within:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _ratio(point: float | None, ci: list[float] | None, what: str) -> str:
    if point is None:
        return f"{what}: no ratio (none for the baseline)"
    return f"{point:.2f}x" + ("" if ci is None else f" [{ci[0]:.2f}x, {ci[1]:.2f}x]") + f" {what}"


def interval_lines(data: dict[str, Any]) -> list[str]:
    """The block's lines on uncertainty: per baseline rt3's gains with their intervals and
    which straddle 1.0x, rt3's set per level across resamples, what was held fixed; none
    for a JSON recorded without intervals."""
    iv = data.get("intervals")
    if not iv:
        return []
    bundles = iv.get("bundles")
    pool = (
        f" of {bundles} bundles of this commit (the demo's and {bundles - 1} compressed again "
        "from a latency table measured anew), each resample one bundle's timed runs and test "
        "sequences"
        if bundles and bundles > 1
        else " of the timed runs and the test sequences"
    )
    lines = [f"95% intervals over {iv['resamples']} bootstrap resamples{pool} (in brackets):", ""]
    for g in data.get("gains", []):
        flat = [
            name
            for fig, name in (("hours", "hours"), ("on_time", "on-time inferences"))
            if g.get(f"{fig}_straddles_one")
        ]
        verb = "interval straddles" if len(flat) == 1 else "intervals straddle"
        note = f"; the {' and '.join(flat)} {verb} 1.0x: no gain shown" if flat else ""
        hours = _ratio(g["hours_ratio"], g.get("hours_ci95"), "the hours")
        on_time = _ratio(g["on_time_ratio"], g.get("on_time_ci95"), "the on-time inferences")
        lines.append(f"- rt3 against {g['baseline']}: {hours}, {on_time}{note}")
    rt3 = next((r for r in data["policies"] if r["policy"] == "rt3"), {})
    share = rt3.get("variant_share") or {}
    if share:
        levels = sorted(share, key=int, reverse=True)
        parts = [
            f"{int(k) / 1000:.0f} MHz "
            + ", ".join(
                f"{n} {100 * x:.0f}%" for n, x in sorted(share[k].items(), key=lambda t: -t[1])
            )
            for k in levels
        ]
        lines.append(f"- rt3's set per level across resamples: {'; '.join(parts)}")
    fixed = [
        f"{what} of {', '.join(iv[key])}"
        for key, what in (("latency_fixed", "latency"), ("accuracy_fixed", "accuracy"))
        if iv.get(key)
    ]
    if fixed:
        lines.append(f"- held fixed (no samples): {'; '.join(fixed)}")
    lines += [f"- warning: {w}" for w in iv.get("warnings") or []]
    return [*lines, ""]


def headline_markdown(data: dict[str, Any], figure: str = "docs/demo-battery-life.png") -> str:
    """The README block: the workload, one row per headline policy, rt3's gains (and,
    when the JSON has them, their intervals)."""
    from contracts.policies import BASELINES

    lines = [
        f"Workload: {data['workload_label']} (`{data['workload']}`); host-calibrated "
        f"`{data['board']}` profile; recorded {data['created']} on {data['host']['cpu']} "
        f"({data['host']['cores']} cores), load average "
        f"{', '.join(f'{x:.2f}' for x in data.get('load_average') or [])}.",
        "",
        *_table(data, {"rt3", *BASELINES}),
        "",
    ]
    gains = [gain_of(g) for g in data.get("gains", [])]
    if gains:
        lines.append("rt3 " + "; ".join(g.sentence() for g in gains) + ".")
        lines.append("")
    lines += interval_lines(data)
    lines += map_lines(data)
    if data.get("provenance"):
        lines += [data["provenance"], ""]
    lines.append(f"![Battery life and on-time inferences per policy (rt3lab demo)]({figure})")
    return "\n".join(lines)


def readme_block(text: str, where: str = "README.md") -> str:
    """The text between the README's headline markers."""
    if BEGIN not in text or END not in text:
        raise HeadlineError(f"{where}: no {BEGIN} ... {END} block")
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")


def update_readme(readme: str | Path, data: dict[str, Any]) -> bool:
    """Rewrite the README's headline block from ``data``; True when it changed."""
    p = Path(readme)
    text = p.read_text(encoding="utf-8")
    old = readme_block(text, str(p))
    new = headline_markdown(data)
    if old == new:
        return False
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    p.write_text(f"{head}{BEGIN}\n{new}\n{END}{tail}", encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m lab.demo.docs HEADLINE.json README.md``: rewrite the README block."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m lab.demo.docs HEADLINE.json README.md", file=sys.stderr)
        return 2
    try:
        changed = update_readme(args[1], load_headline(args[0]))
    except HeadlineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args[1]}: {'updated' if changed else 'already matches'} {args[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
