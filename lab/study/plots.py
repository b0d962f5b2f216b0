"""The deadline study's two figures (matplotlib, imported here only): rt3's gains against the
top-level deadline, and each policy's mean accuracy against it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

GAIN_BASELINES = ("static-sparse", "dvfs-only:bp", "dense-max")
GAIN_FILE = "deadline-gains.png"
ACCURACY_FILE = "deadline-accuracy.png"


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


def gain_figure(study: dict[str, Any], path: Path) -> Path:
    """rt3's gain in hours and in on-time inferences over static-sparse, dvfs-only:bp and
    dense-max against the top-level deadline (ms), with 95 % intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def accuracy_figure(study: dict[str, Any], path: Path) -> Path:
    """Each policy's mean accuracy over the discharge against the top-level deadline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_figures(study: dict[str, Any], out: Path) -> list[Path]:
    """Both figures in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    return [gain_figure(study, out / GAIN_FILE), accuracy_figure(study, out / ACCURACY_FILE)]
