"""Measurement sanity: odd latencies are re-measured before a profile is written, and what
stays odd is flagged in the profile (``flags``), never silently used.

Three rules, per level, over the busy rows of a run:

- ``sparser-slower``: a sparser set whose whole 95 % interval lies more than ``margin``
  above a denser set's (a sparse set can be slower than dense for real, through overheads
  the FLOP count does not see; then it stays flagged and the report says so);
- ``wide-ci``: a median whose interval half-width is over the stated tolerance (``rel_ci``),
  i.e. the time cap stopped the loop before the timings settled;
- ``outlier``: a set more than ``factor`` times slower than its neighbours in sparsity
  (one run caught by another job on a shared machine; contention never makes one faster).

``settle`` re-measures every suspect (the caller passes how), up to ``tries`` times, and
returns the run with the new rows and the flags of what is still odd. A suspect whose level
can no longer be set (a thermal cap arrived after it was measured) is not re-measured: its
row stays, flagged with why, rather than the whole run being lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from lab.profiling.board.cpufreq import FrequencyError
from lab.profiling.procedure import Measurement, ProfileRun

RULES = ("sparser-slower", "wide-ci", "outlier")


@dataclass(frozen=True)
class Suspect:
    """One odd measurement: where, which rule, and why in words."""

    level_khz: int
    variant: str
    rule: str
    detail: str

    def flag(self, tries: int) -> dict[str, Any]:
        """As a profile ``flags`` entry."""
        return {
            "variant": self.variant,
            "freq_khz": self.level_khz,
            "rule": self.rule,
            "detail": f"{self.detail}; still so after {tries} re-measurement(s)",
        }


def _ok(r: Measurement) -> bool:
    return r.kind == "busy" and r.median_ms is not None and r.median_ms > 0


def suspects(
    run: ProfileRun,
    sparsity: dict[str, float | None],
    rel_ci: float,
    factor: float = 3.0,
    margin: float = 0.05,
) -> list[Suspect]:
    """Every rule broken by the run's busy rows, by level.

    >>> rows = [Measurement(1, n, "busy", 1, 1, True, median_ms=m, ci_low_ms=m * 0.99,
    ...                     ci_high_ms=m * 1.01) for n, m in (("dense", 1.0), ("a", 0.6),
    ...                                                       ("b", 9.0), ("c", 0.4))]
    >>> run = ProfileRun(rows, [], {}, {}, None)
    >>> [(s.variant, s.rule) for s in suspects(run, {"dense": 0, "a": .5, "b": .7, "c": .9}, .02)]
    [('b', 'sparser-slower'), ('b', 'outlier')]
    """
    out: list[Suspect] = []
    for level in sorted({r.level_khz for r in run.rows}):
        rows = [r for r in run.rows if r.level_khz == level and _ok(r)]
        for r in rows:
            lo, hi = r.ci_low_ms, r.ci_high_ms
            if lo is None or hi is None:
                continue
            half = (hi - lo) / 2 / r.median_ms
            if half > rel_ci:
                out.append(
                    Suspect(
                        level, r.variant, "wide-ci",
                        f"95 % interval half-width {100 * half:.1f} % of the median "
                        f"{r.median_ms:.3f} ms, over the {100 * rel_ci:.1f} % tolerance",
                    )
                )  # fmt: skip
        ranked = sorted(
            (r for r in rows if sparsity.get(r.variant) is not None),
            key=lambda r: sparsity[r.variant],
        )
        for j, sparse in enumerate(ranked):
            for dense in ranked[:j]:
                if sparsity[dense.variant] >= sparsity[sparse.variant]:
                    continue
                if (sparse.ci_low_ms or sparse.median_ms) > (1 + margin) * (
                    dense.ci_high_ms or dense.median_ms
                ):
                    out.append(
                        Suspect(
                            level, sparse.variant, "sparser-slower",
                            f"sparsity {sparsity[sparse.variant]:.3f} at "
                            f"{sparse.median_ms:.3f} ms is slower than {dense.variant} "
                            f"(sparsity {sparsity[dense.variant]:.3f}) at "
                            f"{dense.median_ms:.3f} ms",
                        )
                    )  # fmt: skip
                    break
        for j, r in enumerate(ranked):
            near = [ranked[i].median_ms for i in (j - 1, j + 1) if 0 <= i < len(ranked)]
            if not near:
                continue
            if r.median_ms > factor * max(near):  # contention only ever slows a run
                out.append(
                    Suspect(
                        level, r.variant, "outlier",
                        f"{r.median_ms:.3f} ms against its neighbours in sparsity at "
                        + ", ".join(f"{x:.3f}" for x in near) + f" ms (over {factor:g}x apart)",
                    )
                )  # fmt: skip
    return out


def settle(
    run: ProfileRun,
    sparsity: dict[str, float | None],
    rel_ci: float,
    remeasure: Callable[[int, str], Measurement],
    tries: int = 2,
    progress: Callable[[str], None] | None = None,
) -> tuple[ProfileRun, list[dict[str, Any]]]:
    """Re-measure every suspect up to ``tries`` times; the run with the new rows, and a
    flag for each rule still broken (the last measurement is kept either way).

    A ``remeasure`` that raises `FrequencyError` (the level no longer sticks) leaves that
    row as it was, is not retried, and its flags say it could not be re-measured.
    """
    say = progress or (lambda _msg: None)
    rows = list(run.rows)
    found = suspects(replace(run, rows=rows), sparsity, rel_ci)
    done = 0
    unset: dict[tuple[int, str], str] = {}  # (level, variant) -> why it was not re-measured
    measured: dict[tuple[int, str], int] = {}  # re-measurements each (level, variant) had
    while done < tries and any((s.level_khz, s.variant) not in unset for s in found):
        done += 1
        for level, name in dict.fromkeys((s.level_khz, s.variant) for s in found):
            if (level, name) in unset:
                continue
            rules = ", ".join(s.rule for s in found if (s.level_khz, s.variant) == (level, name))
            say(f"{level} kHz {name}: odd ({rules}), re-measuring")
            try:
                fresh = remeasure(level, name)
            except FrequencyError as exc:
                unset[(level, name)] = str(exc)
                say(f"{level} kHz {name}: not re-measured: {exc}")
                continue
            measured[(level, name)] = measured.get((level, name), 0) + 1
            rows = [
                fresh if (r.level_khz, r.variant, r.kind) == (level, name, "busy") else r
                for r in rows
            ]
        found = suspects(replace(run, rows=rows), sparsity, rel_ci)
    flags = []
    for s in found:
        key = (s.level_khz, s.variant)
        flags.append(s.flag(measured.get(key, 0) if key in unset else done))
        if key in unset:
            flags[-1]["detail"] += f" (then not re-measured: {unset[key]})"
    for f in flags:
        say(f"FLAGGED {f['freq_khz']} kHz {f['variant']}: {f['rule']}: {f['detail']}")
    return replace(run, rows=rows), flags
