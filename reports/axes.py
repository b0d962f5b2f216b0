"""Figure helpers: matplotlib on Agg, plain tick labels, labels that do not collide.

matplotlib is imported inside the functions, so importing this module is cheap.

>>> plain(2.0), plain(1400.0), plain(477429949.0), plain(0.25), plain(0.0)
('2', '1400', '477,429,949', '0.25', '0')
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from typing import Any

DPI = 90


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def render(fig: Any) -> bytes:
    """The figure as PNG bytes (tight layout, ``DPI``); the figure is closed."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def plain(value: float, _pos: Any = None) -> str:
    """A tick value as a plain number: no exponent, no offset, thousands separated from
    10,000 up (a count; a level of 1400 MHz reads better without)."""
    if value == 0:
        return "0"
    if abs(value) >= 10000:
        return f"{value:,.0f}"
    return f"{value:.6g}"


def _minor(value: float, _pos: Any = None) -> str:
    """A log axis's minor tick labelled at 2, 3 and 5 times a power of ten only."""
    if value <= 0:
        return ""
    mantissa = round(value / 10 ** math.floor(math.log10(value) + 1e-9), 6)
    return plain(value) if mantissa in (2.0, 3.0, 5.0) else ""


def plain_ticks(ax: Any, which: str = "both", most: int | None = None) -> None:
    """Plain number labels on ``ax``'s x and/or y axis, linear or log: ``2`` not
    ``2x10^0``, ``3,000,000`` not ``3`` under a ``1e6`` offset; ``most`` caps the number of
    ticks of a linear axis (long labels). A log axis spanning under two decades also
    labels its minor ticks at 2, 3 and 5 (else it would show one label)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

    for name in ("x", "y") if which == "both" else (which,):
        axis = getattr(ax, f"{name}axis")
        if most is not None and axis.get_scale() == "linear":
            axis.set_major_locator(MaxNLocator(nbins=most))
        axis.set_major_formatter(FuncFormatter(plain))
        if axis.get_scale() == "log":
            lo, hi = sorted(abs(v) for v in getattr(ax, f"get_{name}lim")())
            few = lo > 0 and math.log10(hi / lo) < 2
            axis.set_minor_formatter(FuncFormatter(_minor) if few else NullFormatter())


def _overlaps(box: Any, placed: list[Any]) -> bool:
    return any(box.overlaps(other) for other in placed)


def place_labels(ax: Any, labels: Iterable[tuple[str, float, float]], fontsize: float = 7) -> list:
    """Annotate each ``(text, x, y)`` point of ``ax`` beside it, moving a label up or down
    (then to the point's left) until it overlaps no label placed before it, the axes' tick
    labels or the axes' edge; returns the annotations."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    fixed = [t.get_window_extent(renderer) for t in _tick_labels(ax) if t.get_text()]
    frame = ax.get_window_extent(renderer)
    placed: list[Any] = []
    out = []
    for text, x, y in labels:
        ann = ax.annotate(text, (x, y), xytext=(5, 4), textcoords="offset points",
                          fontsize=fontsize, zorder=6)  # fmt: skip
        for dx, ha in ((5, "left"), (-5, "right")):
            ann.set_horizontalalignment(ha)
            if _settle(ann, renderer, dx, placed + fixed, frame):
                break
        placed.append(ann.get_window_extent(renderer))
        out.append(ann)
    return out


def _settle(ann: Any, renderer: Any, dx: float, avoid: list[Any], frame: Any) -> bool:
    """Try offsets 4, -12, 16, -24... points above and below the point; True when one
    leaves the label clear of ``avoid`` and inside ``frame``."""
    for step in range(12):
        dy = 4 + 10 * ((step + 1) // 2) * (1 if step % 2 == 0 else -1.6)
        ann.set_position((dx, dy))
        box = ann.get_window_extent(renderer)
        inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0
        if inside and box.y1 <= frame.y1 and not _overlaps(box, avoid):
            return True
    return False


def _tick_labels(ax: Any) -> list:
    return [*ax.get_xticklabels(), *ax.get_yticklabels()]


def text_boxes(fig: Any) -> list[tuple[str, str, Any]]:
    """Every visible, non-empty text of ``fig``'s axes as ``(kind, text, box)``: kind is
    ``annotation``, ``xtick`` or ``ytick`` (with the axes' index), for collision tests."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    out = []
    for i, ax in enumerate(fig.axes):
        groups = (("annotation", ax.texts), ("xtick", ax.get_xticklabels()),
                  ("ytick", ax.get_yticklabels()))  # fmt: skip
        for kind, texts in groups:
            for t in texts:
                if t.get_visible() and t.get_text().strip():
                    out.append((f"{kind}{i}", t.get_text(), t.get_window_extent(renderer)))
    return out
