"""The one rule, for every scheme, when no variant meets a governor level's deadline.

Deadlines the user gave (the profile's timing constraints as they are, ``--deadlines
profile``, or milliseconds per level) are a requirement: a level that no variant meets by
the run's estimate is refused in one line naming the level, the fastest variant, its
estimate and the deadline (:class:`CompressionError`, exit 2). Deadlines derived from the
model's own timing (``auto``, ``dense-top``, ``scaled``) rest on measurements that a loaded
host can skew against each other: the level gets the fastest variant, the bundle records
it (``meets_deadline: false`` and a note, the same record for every scheme, in the
scheme's level record and in ``provenance.unmet_deadlines``), ``compress`` prints the note
as a warning, and the simulation counts the misses. RT3 applies the rule to its level
combinations (:mod:`lab.compression.search.feasible`): none left, it searches them all.

>>> strict_deadlines("profile"), strict_deadlines("0.9,0.8,0.7"), strict_deadlines("auto")
(True, True, False)
>>> miss = UnmetDeadline(800000, 0.493, "w0.25", 0.61, "measured")
>>> print(miss.why)
impossible deadline: at 800000 kHz the fastest variant (w0.25) is estimated (measured) at \
0.610 ms, over the 0.493 ms timing constraint
>>> rec = no_variant_meets(miss, strict=False)
>>> rec["meets_deadline"], rec["variant"], rec["note"].endswith("the simulation counts the misses")
(False, 'w0.25', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lab.compression.sparsifier import CompressionError

if TYPE_CHECKING:
    from lab.compression.options import Reporter

DERIVED = ("auto", "dense-top", "scaled")  # --deadlines rules derived from the model's timing
RUNS_ANYWAY = (
    "the level runs it anyway (deadlines derived from the model's own timing); "
    "the simulation counts the misses"
)
HINT = "check the profile's workload.timing_constraints or --deadlines"


def strict_deadlines(spec: str) -> bool:
    """Whether ``--deadlines spec`` are deadlines the user gave (strict: a level no variant
    meets is refused) rather than derived from the model's own timing."""
    return spec not in DERIVED


@dataclass(frozen=True)
class UnmetDeadline:
    """A governor level no variant meets: the fastest variant there and its estimate."""

    freq_khz: int
    deadline_ms: float
    variant: str
    estimate_ms: float
    estimator: str

    @property
    def why(self) -> str:
        """What is missed, naming the level, the variant, its estimate and the deadline."""
        return (
            f"impossible deadline: at {self.freq_khz} kHz the fastest variant ({self.variant}) "
            f"is estimated ({self.estimator}) at {self.estimate_ms:.3f} ms, over the "
            f"{self.deadline_ms:.3f} ms timing constraint"
        )

    def record(self, consequence: str = RUNS_ANYWAY) -> dict[str, Any]:
        """The bundle's record of the level (``provenance.unmet_deadlines``)."""
        return {
            "freq_khz": self.freq_khz,
            "deadline_ms": self.deadline_ms,
            "variant": self.variant,
            "estimate_ms": self.estimate_ms,
            "estimator": self.estimator,
            "meets_deadline": False,
            "note": f"{self.why}; {consequence}",
        }


def no_variant_meets(
    miss: UnmetDeadline,
    strict: bool,
    reporter: Reporter | None = None,
    consequence: str = RUNS_ANYWAY,
    hint: str = HINT,
) -> dict[str, Any]:
    """The rule (see the module): ``CompressionError`` when ``strict``; else the level's
    record, its note shown on ``reporter`` as a warning."""
    if strict:
        raise CompressionError(f"{miss.why} ({hint})")
    rec = miss.record(consequence)
    if reporter is not None:
        reporter.stage(f"warning: {rec['note']}", 1)
        reporter.advance()
    return rec
