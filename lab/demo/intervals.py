"""The demo's intervals: ``lab.study.intervals`` (moved there so that ``rt3lab study
schemes`` gives every scheme's intervals the same way; ``study`` comes before ``demo``)."""

from lab.study.intervals import (
    WITHIN_POINTS,
    accuracy_samples,
    demo_intervals,
    evaluation_sequences,
)

__all__ = ["WITHIN_POINTS", "accuracy_samples", "demo_intervals", "evaluation_sequences"]
