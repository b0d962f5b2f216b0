"""Operation counts as RT3 counts them, and pluggable latency estimators.

RT3's count (source ``rt3-opcount`` of ``device_profiles/boards/rt3-paper.yaml``): the
non-zero weights of every prunable layer (embedding, decoder, in_proj, out_proj, linear1,
linear2), each one multiply and one add, plus the attention products ``2 x seq_len x emb``
per encoder layer. Dense RT3 (vocabulary 28,782): 51,923,200 multiplies.

Estimators turn counts into milliseconds at a DVFS level:

- :class:`OpCountEstimator`: RT3's analytical model, the profile's ``latency_model``;
- :class:`TableEstimator` (``--estimator profile``): the profile's variants with latencies,
  interpolated per level by a least-squares line in ``nonzero_mults`` (through the origin
  when only one variant is measured at that level);
- ``--estimator measured`` (the default of ``compress``): a latency table measured on this
  host through the runtime, per layer and kept-column bucket
  (:mod:`lab.compression.latency.table`); it needs the masks, not counts, so the pipeline
  calls it directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from lab.compression.sparsifier import CompressionError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from device_profiles import DeviceProfile


@dataclass(frozen=True)
class OpCounts:
    """Non-zero multiplies and adds of one inference."""

    mults: int
    adds: int


def attention_ops(model: nn.Module, seq_len: int) -> int:
    """RT3's attention term: ``2 x seq_len x emb`` per encoder layer (0 if not an RT3 LM)."""
    config = getattr(model, "config", None)
    emb, layers = getattr(config, "emb", None), getattr(config, "layers", None)
    if isinstance(emb, int) and isinstance(layers, int):
        return 2 * seq_len * emb * layers
    return 0


def op_counts(
    model: nn.Module,
    masks: Mapping[str, torch.Tensor],
    layers: list[str],
    seq_len: int = 35,
) -> OpCounts:
    """RT3's per-inference counts for ``model`` with ``masks`` (unmasked layers count dense).

    >>> from torch import nn
    >>> import torch
    >>> m = nn.Sequential(nn.Linear(4, 2))
    >>> op_counts(m, {"0": torch.tensor([[1, 0, 0, 1], [1, 1, 1, 1]]).bool()}, ["0"])
    OpCounts(mults=6, adds=6)
    """
    modules = dict(model.named_modules())
    total = 0
    for name in layers:
        if name in masks:
            total += int(masks[name].sum())
        else:
            total += modules[name].weight.numel()
    total += attention_ops(model, seq_len)
    return OpCounts(total, total)


class LatencyEstimator(Protocol):
    """Latency (ms) of one inference with these counts at a DVFS level."""

    def latency_ms(self, counts: OpCounts, freq_khz: int) -> float:
        """Milliseconds per inference."""
        ...


@dataclass(frozen=True)
class OpCountEstimator:
    """RT3's analytical model: ``(mults/1e4 a + adds/1e4 b) x ref_ghz / f_ghz``.

    >>> from device_profiles import load_profile
    >>> est = OpCountEstimator.from_profile(load_profile("rt3-paper"))
    >>> round(est.latency_ms(OpCounts(18604048, 18604048), 1400000), 1)
    115.4
    """

    ms_per_1e4_mults: float
    ms_per_1e4_adds: float
    reference_ghz: float

    @classmethod
    def from_profile(cls, profile: DeviceProfile) -> OpCountEstimator:
        """The profile's ``latency_model``; ``CompressionError`` if it has none."""
        lm = profile.latency_model
        if lm is None:
            raise CompressionError(
                f"profile {profile.name!r}: field latency_model is missing; the op-count "
                "estimator needs ms_per_1e4_mults/ms_per_1e4_adds/reference_ghz"
            )
        return cls(lm.ms_per_1e4_mults, lm.ms_per_1e4_adds, lm.reference_ghz)

    def latency_ms(self, counts: OpCounts, freq_khz: int) -> float:
        """Milliseconds per inference at ``freq_khz``."""
        base = counts.mults / 1e4 * self.ms_per_1e4_mults + counts.adds / 1e4 * self.ms_per_1e4_adds
        return base * self.reference_ghz / (freq_khz / 1e6)


@dataclass(frozen=True)
class TableEstimator:
    """A measured latency table: per level, ``latency = slope x mults + intercept``.

    Built from the profile variants that carry both ``nonzero_mults`` and a latency at the
    level; with one variant the line goes through the origin.
    """

    lines: dict[int, tuple[float, float]]

    @classmethod
    def from_profile(cls, profile: DeviceProfile) -> TableEstimator:
        """Fit the lines; ``CompressionError`` if a level has no measured variant."""
        import numpy as np

        lines = {}
        for khz in profile.levels_khz:
            pts = [
                (v.nonzero_mults, v.latency_at(khz))
                for v in profile.variants
                if v.nonzero_mults is not None and v.latency_at(khz) is not None
            ]
            if not pts:
                continue
            x = np.array([p[0] for p in pts], dtype=float)
            y = np.array([p[1] for p in pts], dtype=float)
            if len(set(x.tolist())) < 2:
                lines[khz] = (float(y.mean() / x.mean()) if x.mean() else 0.0, 0.0)
            else:
                slope, intercept = np.polyfit(x, y, 1)
                lines[khz] = (float(slope), float(intercept))
        if not lines:
            raise CompressionError(
                f"profile {profile.name!r}: no variant has nonzero_mults and a latency table; "
                "the measured estimator needs at least one"
            )
        return cls(lines)

    def latency_ms(self, counts: OpCounts, freq_khz: int) -> float:
        """Milliseconds per inference at ``freq_khz`` (must be a measured level)."""
        if freq_khz not in self.lines:
            raise CompressionError(
                f"measured latency table: no variant measured at {freq_khz} kHz; "
                f"measured levels {sorted(self.lines)}"
            )
        slope, intercept = self.lines[freq_khz]
        return max(slope * counts.mults + intercept, 0.0)


ESTIMATORS = ("measured", "op-count", "profile")


def estimator_for(profile: DeviceProfile, kind: str = "op-count") -> LatencyEstimator:
    """The count-based estimator ``kind`` (``op-count`` or ``profile``) built from ``profile``
    (``measured`` is :class:`lab.compression.latency.table.LatencyTable`)."""
    if kind == "op-count":
        return OpCountEstimator.from_profile(profile)
    if kind == "profile":
        return TableEstimator.from_profile(profile)
    raise CompressionError(f"latency estimator {kind!r}: expected one of {ESTIMATORS}")
