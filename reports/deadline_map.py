"""The deadline map in a report: ``rt3lab study deadlines``' JSON (``deadlines.json`` beside
a run's ``results.json``, as the demo writes it) as a table, two figures and the study's
own sentences on where switching buys battery life and where it buys only accuracy.

The figures are drawn here (reports own the drawing; ``lab.study.plots`` saves the same
figures for ``study deadlines --out``): rt3's gain in hours and in on-time inferences over
static-sparse, dvfs-only:bp and dense-max against the top-level deadline, and each
policy's mean accuracy against it, each point with its 95 % interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reports.axes import pyplot

GAIN_BASELINES = ("static-sparse", "dvfs-only:bp", "dense-max")
SECTION = "The deadline map"
MAP_FILE = "deadlines.json"


def _errorbar(ax: Any, xs: list[float], points: list[Any], cis: list[Any], **kw: Any) -> None:
    """Points joined by a line, each with its 95 % interval as a vertical bar (the
    bootstrap's interval need not hold the point estimate); None points left out."""
    keep = [(x, p, c) for x, p, c in zip(xs, points, cis, strict=True) if p is not None]
    if not keep:
        return
    (line,) = ax.plot([k[0] for k in keep], [k[1] for k in keep], marker="o", **kw)
    bars = [(x, c) for x, _, c in keep if c]
    if bars:
        ax.vlines([x for x, _ in bars], [c[0] for _, c in bars], [c[1] for _, c in bars],
                  color=line.get_color(), alpha=0.6)  # fmt: skip


def _anchors(ax: Any, points: list[dict[str, Any]]) -> None:
    for p in points:
        if p.get("anchor") in ("scaled", "dense-top"):
            ax.axvline(p["top_deadline_ms"], color="grey", linestyle=":", linewidth=1)


def gain_figure(study: dict[str, Any]) -> Any:
    """rt3's gain in hours and in on-time inferences over each baseline against the
    top-level deadline (ms), with 95 % intervals; a matplotlib figure."""
    plt = pyplot()
    points = study["points"]
    xs = [p["top_deadline_ms"] for p in points]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    figures = (("hours", "battery life"), ("on_time", "on-time inferences"))
    for ax, (figure, label) in zip(axes, figures, strict=True):
        for base in GAIN_BASELINES:
            ratios = [p["gains"].get(base, {}).get(figure, {}) for p in points]
            _errorbar(ax, xs, [r.get("point") for r in ratios], [r.get("ci95") for r in ratios],
                      label=f"rt3 / {base}")  # fmt: skip
        ax.axhline(1.0, color="black", linewidth=0.8)
        _anchors(ax, points)
        ax.set_xlabel("top-level deadline (ms)")
        ax.set_ylabel(f"rt3's gain in {label} (x)")
        ax.set_title(f"{label}: rt3 over each baseline")
        ax.legend(fontsize=8)
    fig.suptitle("dotted: scaled (BP meets the top level) and dense-top anchors", fontsize=9)
    fig.tight_layout()
    return fig


def accuracy_figure(study: dict[str, Any]) -> Any:
    """Each policy's mean accuracy over the discharge against the top-level deadline."""
    plt = pyplot()
    points = study["points"]
    xs = [p["top_deadline_ms"] for p in points]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    names = list(dict.fromkeys(n for p in points for n in p["policies"]))
    for name in names:
        rows = [p["policies"].get(name, {}) for p in points]
        _errorbar(ax, xs, [r.get("mean_accuracy") for r in rows],
                  [r.get("mean_accuracy_ci95") for r in rows], label=name)  # fmt: skip
    _anchors(ax, points)
    ax.set_xlabel("top-level deadline (ms)")
    ax.set_ylabel("mean accuracy of completed inferences")
    ax.set_title("mean accuracy over the discharge")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def ratio_words(r: dict[str, Any] | None) -> str:
    """A gain as ``1.23x [1.10, 1.31]``, or ``n/a`` when undefined.

    >>> ratio_words({"point": 1.234, "ci95": [1.1, 1.31]})
    '1.23x [1.10, 1.31]'
    >>> ratio_words({"point": None})
    'n/a'
    """
    if not r or r.get("point") is None:
        return "n/a"
    ci = r.get("ci95")
    return f"{r['point']:.2f}x" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def sets_words(point: dict[str, Any]) -> str:
    """The sets rt3 ran at the point, top level first (``pp-1400mhz / bp / pp-800mhz``)."""
    shares = (point.get("policies", {}).get("rt3") or {}).get("table") or {}
    if shares:
        levels = sorted(shares, key=lambda k: -int(k))
        return " / ".join(str(shares[k]) for k in levels)
    sets = point.get("sets") or []
    return " / ".join(str(s.get("name")) for s in sorted(sets, key=lambda s: -s.get("level", 0)))


def map_rows(study: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The map as a table: one row per point, the top-level deadline first."""
    header = ["top deadline (ms)", "anchor", "rt3 accuracy", "static-sparse accuracy"]
    header += [f"hours: rt3 / {b}" for b in GAIN_BASELINES]
    rows = []
    for p in study["points"]:
        pol = p.get("policies", {})
        accs = [(pol.get(n) or {}).get("mean_accuracy") for n in ("rt3", "static-sparse")]
        rows.append(
            [f"{p['top_deadline_ms']:.3g}", p.get("anchor") or ""]
            + ["n/a" if a is None else f"{100 * a:.2f} %" for a in accs]
            + [ratio_words(p.get("gains", {}).get(b, {}).get("hours")) for b in GAIN_BASELINES]
        )
    return header, rows


def read_map(run_dir: Path) -> dict[str, Any] | None:
    """The run's deadline map (``deadlines.json``), or None when it has none; a file that
    is there but is not a study is refused (ValueError naming it)."""
    from contracts.files import read_text
    from contracts.strict_json import loads

    path = Path(run_dir) / MAP_FILE
    if not path.is_file():
        return None
    doc = loads(read_text(path, 64 << 20, ValueError), str(path), ValueError)
    if not isinstance(doc, dict) or not isinstance(doc.get("points"), list):
        raise ValueError(f"{path}: expected a deadline study (rt3lab study deadlines): points")
    if not isinstance(doc.get("summary"), dict):
        raise ValueError(f"{path}: expected a deadline study: summary")
    return doc


def map_sentences(study: dict[str, Any]) -> list[str]:
    """What would change the answer: the study's sentences on where switching buys battery
    life and where only accuracy, over the deadlines it swept, pointing at the map.

    >>> s = {"points": [{"top_deadline_ms": 2.0}, {"top_deadline_ms": 5.0}],
    ...      "summary": {"sentences": ["No top-level deadline ... battery life."]}}
    >>> map_sentences(s)[0][:60]
    'The deadline map (2 top-level deadlines, 2-5 ms; see its sec'
    """
    points = study.get("points") or []
    sentences = list((study.get("summary") or {}).get("sentences") or [])
    if not points or not sentences:
        return []
    ms = [p["top_deadline_ms"] for p in points]
    lead = (
        f"The deadline map ({len(points)} top-level deadlines, {min(ms):.3g}-{max(ms):.3g} ms; "
        "see its section): "
    )
    return [lead + sentences[0], *sentences[1:]]


def deadline_map_block(run: Any) -> Any:
    """The map as a report table (None when the run has no map): a row per point, the
    summary's sentences as its notes."""
    from reports.render import Cell, TableBlock

    study = getattr(run, "deadline_map", None)
    if not study or not study.get("points"):
        return None
    header, texts = map_rows(study)
    rows = [[Cell(t, i != 1) for i, t in enumerate(row)] for row in texts]
    intro = (
        "rt3lab study deadlines: at each top-level deadline the pattern sets were searched "
        "again, re-scored and re-timed on this host, and every policy simulated with 95 % "
        f"intervals ({study.get('accuracy_samples', '')}). Hours: rt3's battery life over "
        "each baseline's."
    )
    notes = list((study.get("summary") or {}).get("sentences") or [])
    notes += [f"Point {i + 1}: rt3 ran {sets_words(p)} (top level first)."
              for i, p in enumerate(study["points"])]  # fmt: skip
    return TableBlock("deadline-map", SECTION, header, rows, intro, notes)


def _provenance(study: dict[str, Any]) -> str:
    return (
        f"measured on {study.get('host', 'this host')} (sets searched, scored and timed at "
        f"each point), simulated on {study.get('profile', 'the profile')}'s power and battery"
    )


def draw_deadline_gains(run: Any) -> Any:
    """The map's gain figure for the report (None without a map)."""
    from reports.plots import Drawn

    study = getattr(run, "deadline_map", None)
    if not study or not study.get("points"):
        return None
    caption = (
        "rt3's battery life (left) and on-time inferences (right) over each baseline, against "
        "the top-level deadline; a bar is the 95 % interval. Above 1: rt3 lasts longer."
    )
    return Drawn("deadline_gains", gain_figure(study), "rt3's gains against the deadline",
                 caption, _provenance(study), SECTION)  # fmt: skip


def draw_deadline_accuracy(run: Any) -> Any:
    """The map's accuracy figure for the report (None without a map)."""
    from reports.plots import Drawn

    study = getattr(run, "deadline_map", None)
    if not study or not study.get("points"):
        return None
    caption = "Each policy's mean accuracy over the discharge against the top-level deadline."
    return Drawn("deadline_accuracy", accuracy_figure(study), "Accuracy against the deadline",
                 caption, _provenance(study), SECTION)  # fmt: skip
