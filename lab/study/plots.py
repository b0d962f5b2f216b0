"""The deadline study's two figures, saved for ``study deadlines --out``: drawn by
``reports.deadline_map`` (the report draws the same ones from ``deadlines.json``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

GAIN_FILE = "deadline-gains.png"
ACCURACY_FILE = "deadline-accuracy.png"


def _save(fig: Any, path: Path) -> Path:
    from reports.axes import pyplot

    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path


def write_figures(study: dict[str, Any], out: Path) -> list[Path]:
    """Both figures in ``out``: rt3's gains, and each policy's mean accuracy, against the
    top-level deadline."""
    from reports.deadline_map import accuracy_figure, gain_figure

    out.mkdir(parents=True, exist_ok=True)
    return [
        _save(gain_figure(study), out / GAIN_FILE),
        _save(accuracy_figure(study), out / ACCURACY_FILE),
    ]
