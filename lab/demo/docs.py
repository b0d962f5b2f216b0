"""The demo's headline as data: the JSON ``rt3lab demo`` writes, and the README block made
from it.

``rt3lab demo`` writes ``OUT/headline.json`` (and, with ``--docs DIR``, copies it to
``DIR/demo-headline.json`` with the battery-life figure as ``DIR/demo-battery-life.png``).
The README's headline sits between ``<!-- demo-headline:begin -->`` and
``<!-- demo-headline:end -->`` and is exactly ``headline_markdown`` of that JSON;
``python -m lab.demo.docs docs/demo-headline.json README.md`` rewrites it, and
``tests/test_readme_headline.py`` checks it.
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
    results: list[Any], board: str, workload: str, elapsed_s: float | None = None
) -> dict[str, Any]:
    """The headline JSON of a demo run from its ``SimulationResult`` list."""
    from reports.verdict import gains, provenance_sentence
    from simulator import workload_label

    records = [r.model_dump(mode="json") for r in results]
    rows = [{k: rec.get(k) for k in ROW_FIELDS} for rec in records]
    rt3 = next((rec for rec in records if rec["policy"] == "rt3"), None)
    return {
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
        "gains": [g.__dict__ for g in gains(records)],
    }


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


def headline_markdown(data: dict[str, Any], figure: str = "docs/demo-battery-life.png") -> str:
    """The README block: the workload, one row per headline policy, rt3's gains."""
    from contracts.policies import BASELINES
    from reports.verdict import Gain

    shown = {"rt3", *BASELINES}
    lines = [
        f"Workload: {data['workload_label']} (`{data['workload']}`); host-calibrated "
        f"`{data['board']}` profile; recorded {data['created']} on {data['host']['cpu']} "
        f"({data['host']['cores']} cores), load average "
        f"{', '.join(f'{x:.2f}' for x in data.get('load_average') or [])}.",
        "",
        "| policy | battery life (h) | on-time inferences | missed | accuracy |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in data["policies"]:
        if r["policy"] not in shown:
            continue
        lines.append(
            f"| {r['policy']} | {_num(r['battery_life_h'], '.3f')} | "
            f"{r['on_time_inferences']:,} | {r['missed_inferences']:,} | "
            f"{_num(r['mean_accuracy'], '.4f')} |"
        )
    lines.append("")
    gains = [Gain(**g) for g in data.get("gains", [])]
    if gains:
        lines.append("rt3 " + "; ".join(g.sentence() for g in gains) + ".")
        lines.append("")
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
