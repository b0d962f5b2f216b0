"""The schemes map: ``rt3lab study schemes``' JSON (``schemes.json``) as the frontier figure
and the README's block.

The figure: battery life (h) on x, mean accuracy on y, one colour per scheme; every policy of
the scheme a point with its 95 % intervals as error bars (hours across, accuracy up), the
scheme's Pareto front (more hours and more accuracy win) joined by a line, and the dense
model's accuracy less the study's bound as a dotted line: the points above it are the
equal-accuracy comparison's candidates. Reads the JSON only (no lab, no simulator).

The README's block (``lab/study/README.md``, between ``BEGIN`` and ``END``) is
`readme_block` of the recorded ``docs/schemes-quick.json``;
``python -m reports.schemes_map docs/schemes-quick.json lab/study/README.md`` rewrites it.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from reports.axes import pyplot
from reports.pareto import pareto_front


def _points(entry: dict[str, Any]) -> list[tuple[str, float, float]]:
    return [
        (name, f["battery_life_h"], f["mean_accuracy"])
        for name, f in entry["policies"].items()
        if f.get("battery_life_h") is not None and f.get("mean_accuracy") is not None
    ]


def _bars(ci: Any, point: float) -> tuple[float, float]:
    """Error-bar lengths below and above ``point`` (0 where there is no interval; the
    bootstrap's interval need not hold the point: clipped at 0)."""
    if not ci:
        return 0.0, 0.0
    return max(point - ci[0], 0.0), max(ci[1] - point, 0.0)


def frontier_figure(doc: dict[str, Any]) -> Any:
    """The frontier figure of the study ``doc`` (see the module's docstring)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.2))
    bound = doc.get("max_accuracy_loss", 1.0)
    for scheme, entry in doc["schemes"].items():
        pts = _points(entry)
        if not pts:
            continue
        pols = entry["policies"]
        xerr = [_bars(pols[n].get("battery_life_h_ci95"), x) for n, x, _ in pts]
        yerr = [_bars(pols[n].get("mean_accuracy_ci95"), y) for n, _, y in pts]
        bars = ax.errorbar(
            [p[1] for p in pts], [p[2] for p in pts],
            xerr=[[e[0] for e in xerr], [e[1] for e in xerr]],
            yerr=[[e[0] for e in yerr], [e[1] for e in yerr]],
            fmt="o", markersize=4, capsize=2, alpha=0.75, label=scheme,
        )  # fmt: skip
        front = pareto_front(pts)
        ax.plot([p[1] for p in front], [p[2] for p in front], "-", color=bars[0].get_color())
        best = entry.get("best_within_accuracy")
        if best:
            ax.plot(best["battery_life_h"], best["mean_accuracy"], marker="*", markersize=13,
                    color=bars[0].get_color(), markeredgecolor="black")  # fmt: skip
        dense = entry.get("dense_accuracy")
        if dense is not None:
            ax.axhline(dense - bound / 100.0, color=bars[0].get_color(), linestyle=":", lw=0.8)
    ax.set_xlabel("battery life (h)")
    ax.set_ylabel("mean accuracy")
    ax.set_title(
        f"Schemes on {doc.get('board', '?')} ({doc.get('budget', '?')} budget): every policy, "
        f"95 % intervals; * best within {bound:g} point(s) of dense (dotted)",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    return fig


def _ci(ci: Any, fmt: str = ".2f") -> str:
    return f"[{ci[0]:{fmt}}, {ci[1]:{fmt}}]" if ci else "n/a"


def best_table(doc: dict[str, Any]) -> str:
    """A markdown table: per scheme, its best policy within the bound, the hours with
    their interval, the accuracy and its loss against dense.

    >>> doc = {"max_accuracy_loss": 1.0, "schemes": {"rt3": {"dense_accuracy": 0.3,
    ...        "best_within_accuracy": {"policy": "rt3", "battery_life_h": 5.0,
    ...        "ci95": [4.5, 5.5], "mean_accuracy": 0.297, "accuracy_loss_points": 0.3}}}}
    >>> print(best_table(doc).splitlines()[-1])
    | rt3 | rt3 | 5.00 | [4.50, 5.50] | 0.2970 | 0.30 | 0.3000 |
    """
    lines = [
        f"| scheme | best policy within {doc['max_accuracy_loss']:g} point(s) | hours | "
        "95 % interval | accuracy | points below dense | dense accuracy |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for scheme, entry in doc["schemes"].items():
        b = entry.get("best_within_accuracy")
        dense = entry.get("dense_accuracy")
        dense_s = "n/a" if dense is None else f"{dense:.4f}"
        if not b:
            lines.append(f"| {scheme} | none | | | | | {dense_s} |")
            continue
        loss = b.get("accuracy_loss_points")
        lines.append(
            f"| {scheme} | {b['policy']} | {b['battery_life_h']:.2f} | {_ci(b.get('ci95'))} | "
            f"{b['mean_accuracy']:.4f} | {'n/a' if loss is None else f'{loss:.2f}'} | "
            f"{dense_s} |"
        )
    return "\n".join(lines)


def readme_block(doc: dict[str, Any], figure: str = "docs/schemes/schemes-frontier.png") -> str:
    """The README's block for the recorded study ``doc``: the table of each scheme's best
    policy within the bound, the summary's sentences (the deadline map's too) and the
    frontier figure at ``figure`` (a path relative to the README)."""
    sentences = "\n".join(f"- {s}" for s in doc["summary"]["sentences"])
    moved = doc["summary"].get("deadline_map_sentences") or []
    at_other = (
        "\n\nAt other top-level deadlines (the same variants):\n\n"
        + "\n".join(f"- {s}" for s in moved)
        if moved
        else ""
    )
    return (
        f"{best_table(doc)}\n\n{sentences}{at_other}\n\n"
        f"![battery life against accuracy, one curve per scheme]({figure})\n"
    )


BEGIN = "<!-- schemes-quick:begin -->"
END = "<!-- schemes-quick:end -->"
RECORDED_JSON = "docs/schemes-quick.json"
FIGURE_FROM_README = "../../docs/schemes/schemes-frontier.png"  # lab/study/README.md's view
_BLOCK = re.compile(f"{re.escape(BEGIN)}\n*(.*?)\n*{re.escape(END)}", re.S)


def block_of(text: str, where: str = "README.md") -> str:
    """The text between ``BEGIN`` and ``END`` in ``text`` (``ValueError`` naming ``where``
    when the markers are missing).

    >>> block_of(f"a\\n{BEGIN}\\nx\\n{END}\\nb")
    'x'
    """
    found = _BLOCK.search(text)
    if found is None:
        raise ValueError(f"{where}: no {BEGIN} ... {END} block")
    return found.group(1)


def sync_readme(study_json: Path, readme: Path, figure: str = FIGURE_FROM_README) -> bool:
    """Make ``readme``'s block `readme_block` of the recorded study at ``study_json``; True
    when the file was rewritten, False when it already matched."""
    text = readme.read_text(encoding="utf-8")
    new = readme_block(json.loads(study_json.read_text(encoding="utf-8")), figure).strip("\n")
    changed = block_of(text, str(readme)) != new
    if changed:
        readme.write_text(_BLOCK.sub(lambda _m: f"{BEGIN}\n{new}\n{END}", text, count=1), "utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    """``python -m reports.schemes_map STUDY_JSON README``: the README's block from the
    study; 2 on bad arguments or files (one line on stderr)."""
    args = sys.argv[1:] if argv is None else argv
    try:
        study, readme = (Path(a) for a in args)  # ValueError: not two arguments
        changed = sync_readme(study, readme)
    except (ValueError, OSError, KeyError) as exc:
        print(f"schemes_map: {exc} (usage: STUDY_JSON README)", file=sys.stderr)
        return 2
    print(f"{readme}: {'block rewritten' if changed else 'already matches'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
