"""Two calibrations that adapt RT3's constants to a model of another size, both recorded in
the bundle and both switchable to RT3's raw values.

Deadlines (``--deadlines``): ``scaled`` multiplies the profile's timing constraints so that
the BP model exactly meets the highest level's (RT3's 115 ms *is* its BP latency at
1.4 GHz); ``dense-top`` so that the dense model does; ``profile`` keeps them raw; ``auto``
is ``dense-top`` under measured latency and ``scaled`` otherwise.

The reward (``--reward-norm auto``) normalises accuracy against the dense model
(``acc_hi`` = dense, ``acc_lo`` = dense - ``acc_span``, 2 points) and runs against BP
(``runs_lo`` = BP's runs, ``runs_hi`` = ``runs_lo`` x 4.5 / 2.3, RT3's ratio), with ``N``
capped at 1 (see :mod:`lab.compression.search.reward` for why) and a broken deadline scored
as if accuracy were zero. RT3's ``A = -1`` sits above the ``A`` of most feasible children
once accuracy is normalised this tightly, so a child that missed its deadlines would
outrank one that met them. With the full ``N`` range worth 2 points of weighted accuracy,
the search meets the deadlines at the least accuracy cost, rather than buying runs with
accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lab.compression.search.reward import LevelSpec, RewardConfig, normalised_config
from lab.compression.sparsifier import CompressionError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from lab.compression.compressor import Compressor

DEADLINE_RULES = {
    "dense-top": "the profile's timing constraints times one factor, chosen so that the "
    "unpruned (dense) model's estimated latency at the highest level equals that level's "
    "constraint: the application's deadline is what the dense model meets at full clock, "
    "and RT3's ratios between the levels' constraints are kept",
    "scaled": "the profile's timing constraints times one factor, chosen so that BP's "
    "estimated latency at the highest level equals that level's constraint (RT3's 115 ms is "
    "its BP latency at 1.4 GHz)",
    "profile": "the profile's timing constraints as they are",
    "explicit": "given per governor level with --deadlines (ms, highest frequency first)",
}


def deadline_rule(spec: str, estimator: str) -> str:
    """The rule ``--deadlines auto`` stands for: ``dense-top`` with the measured estimator,
    ``scaled`` (RT3's anchor, for RT3's own model) otherwise; any other value as it is.

    Under measured latency RT3's BP anchor asks the low levels for speedups over BP
    (1.55x at 1.0 GHz, 2.14x at 0.8 GHz, RT3's 1/f model and constraints) that a runtime
    whose attention and norms do not shrink gives only at 91-99 % sparsity, where the
    quick model's accuracy collapses (see the compression README); the dense anchor keeps
    RT3's ratios between levels and makes ``dense-max`` a baseline that meets the top
    level's deadline.

    >>> deadline_rule("auto", "measured"), deadline_rule("auto", "op-count")
    ('dense-top', 'scaled')
    """
    if spec == "auto":
        return "dense-top" if estimator == "measured" else "scaled"
    return spec


def parse_deadlines(spec: str, n_levels: int) -> tuple[float, ...] | None:
    """``--deadlines``: a named rule (None) or one positive ms value per level.

    >>> parse_deadlines("scaled", 3) is None
    True
    >>> parse_deadlines("0.9,0.8,0.7", 3)
    (0.9, 0.8, 0.7)
    """
    if spec in ("auto", "scaled", "dense-top", "profile"):
        return None
    try:
        values = tuple(float(x) for x in spec.split(","))
    except ValueError:
        values = ()
    if len(values) != n_levels or any(not v > 0 for v in values):
        raise CompressionError(
            f"--deadlines {spec!r}: expected auto, dense-top, scaled, profile or {n_levels} "
            "positive "
            "milliseconds, comma-separated, highest frequency first"
        )
    return values


@dataclass(frozen=True)
class Deadlines:
    """The deadline rule applied (a :data:`DEADLINE_RULES` key), its factor (None when
    the deadlines were given explicitly), the profile's constraints it scaled (ms per
    governor level, highest first) and the estimate it anchored on: the anchor model's
    (``dense`` or ``bp``; None for ``profile`` and explicit deadlines) estimated latency at
    the highest level (``anchor_ms``, by the run's estimator: under ``measured`` the
    latency table's, so a rerun that measures another table gets other deadlines)."""

    mode: str
    scale: float | None
    constraints_ms: tuple[float, ...] = ()
    anchor: str | None = None
    anchor_ms: float | None = None

    def record(self, asked: str, deadline_ms: dict[str, float]) -> dict[str, Any]:
        """The bundle's ``provenance.deadlines`` (``deadline_ms``: per governor level, kHz
        as text).

        >>> r = Deadlines("dense-top", 0.01, (115.0,), "dense", 1.15).record("auto", {"1": 1.15})
        >>> r["anchor"], r["constraint_ms"], r["deadline_ms"]
        ({'model': 'dense', 'estimate_ms': 1.15}, [115.0], {'1': 1.15})
        """
        return {
            "mode": self.mode,
            "asked": asked,
            "rule": DEADLINE_RULES[self.mode],
            "scale": self.scale,
            "constraint_ms": list(self.constraints_ms),
            "anchor": None
            if self.anchor is None
            else {"model": self.anchor, "estimate_ms": self.anchor_ms},
            "deadline_ms": deadline_ms,
        }


def calibrate_deadlines(
    c: Compressor, model: nn.Module, bp_masks: dict[str, torch.Tensor]
) -> Deadlines:
    """Set ``c.levels_spec``'s deadlines by the options' rule (or to the explicit ones):
    the factor anchors BP (``scaled``) or the dense model (``dense-top``) on the highest
    level's constraint, by the run's latency estimate."""
    import torch

    opts = c.opts
    top = c.levels_spec[0]
    constraints = tuple(lv.deadline_ms for lv in c.levels_spec)
    rule = deadline_rule(opts.deadlines, opts.estimator)
    if c.explicit_deadlines is not None:
        c.levels_spec = [
            replace(lv, deadline_ms=d)
            for lv, d in zip(c.levels_spec, c.explicit_deadlines, strict=True)
        ]
        return Deadlines("explicit", None, constraints)
    # the model whose estimate at the top level the rule anchors on (none: raw constraints)
    anchor = {"scaled": "bp", "dense-top": "dense"}.get(rule)
    if anchor is None:
        return Deadlines(rule, 1.0, constraints)
    masks = bp_masks if anchor == "bp" else {n: torch.ones_like(m) for n, m in bp_masks.items()}
    anchor_ms = c.latency_ms(model, masks, top.freq_khz)
    c.levels_spec, scale = anchored(c.levels_spec, anchor_ms)
    return Deadlines(rule, scale, constraints, anchor, anchor_ms)


def anchored(levels: list[LevelSpec], anchor_ms: float) -> tuple[list[LevelSpec], float]:
    """``levels`` (highest frequency first) scaled by one factor so that the highest level's
    deadline is ``anchor_ms``, and the factor. The highest is set to ``anchor_ms`` itself:
    ``c * (a / c)`` lands one ulp above ``a`` for about one ``a`` in 27, and the anchor model
    would then miss the deadline it defines by that ulp.

    >>> lv = [LevelSpec(1400000, 1.0, 1.0, 115.0), LevelSpec(800000, 1.0, 1.0, 230.0)]
    >>> out, scale = anchored(lv, 0.2862)
    >>> [x.deadline_ms for x in out], round(scale, 6)
    ([0.2862, 0.5724], 0.002489)
    """
    scale = anchor_ms / levels[0].deadline_ms
    out = [replace(levels[0], deadline_ms=anchor_ms)]
    out += [replace(lv, deadline_ms=lv.deadline_ms * scale) for lv in levels[1:]]
    return out, scale


def reward_config(
    c: Compressor, model: nn.Module, bp_masks: dict[str, torch.Tensor], dense_accuracy: float
) -> RewardConfig:
    """The reward's constants: ``auto``, normalised against the dense model's validation
    ``dense_accuracy`` and BP's runs at the calibrated levels; ``rt3``, RT3's own."""
    if c.opts.reward_norm != "auto":
        return RewardConfig(acc_weights=c.loss_weights)
    bp_lats = [c.latency_ms(model, bp_masks, lv.freq_khz) for lv in c.levels_spec]
    return normalised_config(
        c.loss_weights, dense_accuracy, c.opts.acc_span, c.levels_spec, bp_lats
    )
