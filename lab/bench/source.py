"""What a bench measures: a bundle (``--bundle DIR``), or a random-weight model with random
nested block-column sets (``--synthetic KIND --densities 0.5,0.2 --seed N``).

>>> densities("0.5,0.05")
{'p50': 0.5, 'p05': 0.05}
>>> SourceOptions(synthetic="small").check()
'small'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class BenchInputError(ValueError):
    """Bad command-line input for a bench (names the option)."""


def densities(text: str) -> dict[str, float]:
    """``--densities`` parsed (``0.5,0.2``): synthetic sets named ``p50``, ``p20``."""
    out = {}
    for part in text.split(","):
        try:
            d = float(part)
        except ValueError:
            raise BenchInputError(f"--densities: {part!r} is not a number") from None
        if not 0 < d <= 1:
            raise BenchInputError(f"--densities: {d} is not in (0, 1]")
        out[f"p{round(d * 100):02d}"] = d
    return out


@dataclass
class SourceOptions:
    """The model and sets a bench measures: ``bundle``, or ``synthetic`` with sets of
    ``densities`` (weights, sets and inputs seeded by ``seed``)."""

    bundle: Path | None = None
    synthetic: str | None = None
    densities: str = "0.5,0.3,0.2"
    seed: int = 0

    def check(self) -> str | None:
        """The synthetic kind (None for a bundle); exactly one of the two must be given."""
        if (self.bundle is None) == (self.synthetic is None):
            raise BenchInputError("give exactly one of --bundle DIR or --synthetic KIND")
        return self.synthetic
