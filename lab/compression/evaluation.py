"""``rt3lab evaluate``: a bundle's sets against the dense model and the baselines.

Reads only the bundle (its recorded test-set figures), so it is fast and needs no data.
Each row: the set, its DVFS level, family and whether the runtime can compact it (execute
it faster than dense), sparsity, accuracy, perplexity and the accuracy delta to dense;
then the baselines at equal sparsity: BP vs rBP, and each RL set vs BP+rPP.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lab.compression.pattern_pruning import COMPACTS


@dataclass(frozen=True)
class SetRow:
    """One row of the evaluation table."""

    name: str
    freq_khz: int | None
    family: str
    compacts: bool
    sparsity: float
    accuracy: float | None
    perplexity: float | None
    delta_accuracy: float | None
    nonzero_mults: int
    latency_estimate_ms: float | None = None  # the bundle's latency table, at this host's clock
    latency_measured_ms: float | None = None  # end to end by lab.runtime, same threads


@dataclass(frozen=True)
class Comparison:
    """A method against its baseline at (nearly) equal sparsity."""

    method: str
    baseline: str
    sparsity: float
    baseline_sparsity: float
    accuracy: float
    baseline_accuracy: float

    @property
    def wins(self) -> bool:
        """The method is more accurate than the baseline."""
        return self.accuracy > self.baseline_accuracy


@dataclass(frozen=True)
class Evaluation:
    """Everything ``rt3lab evaluate`` prints."""

    bundle: str
    dense_accuracy: float | None
    dense_perplexity: float | None
    rows: list[SetRow]
    comparisons: list[Comparison]
    checks: dict[str, bool]

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``--json``)."""
        return {
            "bundle": self.bundle,
            "dense": {"accuracy": self.dense_accuracy, "perplexity": self.dense_perplexity},
            "sets": [asdict(r) for r in self.rows],
            "comparisons": [{**asdict(c), "wins": c.wins} for c in self.comparisons],
            "checks": self.checks,
        }


def _delta(acc: float | None, dense: float | None) -> float | None:
    return None if acc is None or dense is None else acc - dense


def _with_latencies(
    b: Any, rows: list[SetRow], pp_rows: list[SetRow]
) -> tuple[list[SetRow], list[SetRow]]:
    """Rows with the latency table's estimate and the runtime's measurement (if a table)."""
    from dataclasses import replace

    from lab.compression.latency_table import bundle_latencies

    lat = bundle_latencies(b)
    if not lat:
        return rows, pp_rows

    def add(r: SetRow) -> SetRow:
        est, meas = lat.get(r.name, (None, None))
        return replace(r, latency_estimate_ms=est, latency_measured_ms=meas)

    return [add(r) for r in rows], [add(r) for r in pp_rows]


def evaluate_bundle(path: str | Path) -> Evaluation:
    """Load and validate the bundle at ``path`` (``BundleError`` if corrupt) and tabulate it."""
    from lab.bundle import Bundle

    b = Bundle.load(path)
    dense = b.reference.get("dense", {})
    bp = b.reference.get("bp", {})
    d_acc = dense.get("accuracy")
    rows = [
        SetRow(
            "dense",
            None,
            "dense",
            False,
            0.0,
            d_acc,
            dense.get("perplexity"),
            0.0 if d_acc is not None else None,
            int(dense.get("nonzero_mults") or 0),
        )
    ]
    pp_rows = []
    for e in b.entries.values():
        row = SetRow(
            e.name,
            e.freq_khz,
            e.family,
            COMPACTS.get(e.family, False),
            e.sparsity,
            e.accuracy,
            e.perplexity,
            _delta(e.accuracy, d_acc),
            e.nonzero_mults,
        )
        rows.append(row)
        if e.name != "bp":
            pp_rows.append(row)
    comparisons = []
    rbp = b.baselines.get("rbp")
    if rbp and bp.get("accuracy") is not None:
        comparisons.append(
            Comparison(
                "BP",
                "rBP",
                float(bp.get("sparsity", rbp.get("bp_sparsity", 0.0))),
                float(rbp["sparsity"]),
                float(bp["accuracy"]),
                float(rbp["accuracy"]),
            )
        )
    rpp = b.baselines.get("bp+rpp", {})
    for base, target in zip(rpp.get("sets", []), rpp.get("compare_to", []), strict=False):
        if target in b.entries and b.entries[target].accuracy is not None:
            e = b.entries[target]
            comparisons.append(
                Comparison(
                    f"RL {target}",
                    f"BP+rPP {base['name']}",
                    e.sparsity,
                    float(base["sparsity"]),
                    float(e.accuracy),
                    float(base["accuracy"]),
                )
            )
    rows, pp_rows = _with_latencies(b, rows, pp_rows)
    ordered = sorted(pp_rows, key=lambda r: r.sparsity)
    by_freq = sorted(pp_rows, key=lambda r: -(r.freq_khz or 0))
    checks: dict[str, bool] = {
        "at_least_3_sets": len(pp_rows) >= 3,
        "sparsity_increases_as_frequency_drops": all(
            a.sparsity < b.sparsity for a, b in itertools.pairwise(by_freq)
        ),
    }
    if ordered and ordered[0].delta_accuracy is not None:
        checks["least_sparse_within_1pt_of_dense"] = ordered[0].delta_accuracy >= -0.01
    bp_cmp = [c for c in comparisons if c.method == "BP"]
    if bp_cmp:
        checks["bp_beats_rbp"] = all(c.wins for c in bp_cmp)
    gaps = sorted(
        abs(r.latency_estimate_ms / r.latency_measured_ms - 1.0)
        for r in pp_rows
        if r.latency_estimate_ms is not None and r.latency_measured_ms
    )
    if gaps:
        median = gaps[len(gaps) // 2] if len(gaps) % 2 else sum(gaps[len(gaps) // 2 - 1 :][:2]) / 2
        checks["latency_estimate_within_10pct_median"] = median <= 0.10
    rl_cmp = [c for c in comparisons if c.method.startswith("RL")]
    if rl_cmp:
        checks["rl_beats_bp_rpp"] = all(c.wins for c in rl_cmp)
    return Evaluation(str(path), d_acc, dense.get("perplexity"), rows, comparisons, checks)
