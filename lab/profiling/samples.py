"""A profile's per-run latencies, as ``simulator.bootstrap`` resamples them.

A profile's latency of a set at a level is one figure: in board mode the median of the
runs timed at that level; in host mode (``--power none``) the median of the runs timed at
the host's clock, projected to each of the board's levels by ``a + b/f``
(`lab.profiling.calibrate.fit_latency`, with ``a`` the ``--memory-fraction`` of the
latency, 0 by default). The runs themselves are written beside the profile
(``PROFILE.runs.csv``: board, level_khz, variant, run, latency_ms, as timed).

`latency_samples` (from a `ProfileResult`) and `read_latency_samples` (from the files
beside a profile) give ``{variant: {level_khz: [ms, ...]}}`` on the profile's levels:
board mode, the runs as timed; host mode, each run projected by the same fit with the
run's latency in place of the median. The projection is a positive scale, so the median
of the projected runs is the profile's figure: the same float for an odd number of runs,
within rounding (1e-15, relative) for an even one. After ``--rounds R`` the profile holds
the median of the rounds' medians and the runs are every round's, so the two can differ
(``simulator.bootstrap`` then warns and uses the runs' median).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.profiling.output import RUNS_FIELDS

if TYPE_CHECKING:
    from lab.profiling.session import ProfileResult

LatencySamples = dict[str, dict[int, list[float]]]


class ProfileSamplesError(ValueError):
    """A profile's runs file that is missing or malformed; the message names the file,
    the line and the field."""


def latency_samples(result: ProfileResult) -> LatencySamples:
    """Every timed run of ``result``, by variant and level of its profile (see the
    module's docstring)."""
    raw: LatencySamples = {}
    for r in result.run.rows:
        if r.kind == "busy" and r.samples_ms:
            raw.setdefault(r.variant, {})[r.level_khz] = [float(x) for x in r.samples_ms]
    return project_samples(raw, result.summary(), result.profile.levels_khz)


def read_latency_samples(profile_path: str | Path) -> LatencySamples:
    """Every timed run of the profile at ``profile_path``, read from the runs CSV and the
    calibration JSON beside it, by variant and level of the profile."""
    from device_profiles import load_profile
    from lab.profiling.session import calibration_path, runs_csv_path

    profile_path = Path(profile_path)
    cal_path = calibration_path(profile_path)
    runs_path = runs_csv_path(profile_path)
    for path in (runs_path, cal_path):
        if not path.is_file():
            raise ProfileSamplesError(
                f"{path}: no such file beside the profile {profile_path} (written by "
                "`rt3lab profile` since it records every timed run): profile again"
            )
    try:
        calibration = json.loads(cal_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProfileSamplesError(f"{cal_path}: not the calibration JSON: {exc}") from None
    if not isinstance(calibration, dict):
        raise ProfileSamplesError(f"{cal_path}: expected a JSON object")
    levels = load_profile(profile_path).levels_khz
    return project_samples(read_runs_csv(runs_path), calibration, levels)


def read_runs_csv(path: str | Path) -> LatencySamples:
    """``PROFILE.runs.csv`` as timed: ``{variant: {level_khz: [ms, ...]}}`` in run order."""
    path = Path(path)
    out: LatencySamples = {}
    with path.open(newline="", encoding="utf-8") as fh:
        rows = csv.reader(fh)
        header = next(rows, None)
        if header is None or tuple(header) != RUNS_FIELDS:
            raise ProfileSamplesError(
                f"{path}: line 1: expected the header {','.join(RUNS_FIELDS)}, got {header}"
            )
        for line, row in enumerate(rows, 2):
            level, variant, ms = _run_row(path, line, row)
            out.setdefault(variant, {}).setdefault(level, []).append(ms)
    return out


def _run_row(path: Path, line: int, row: Sequence[str]) -> tuple[int, str, float]:
    if len(row) != len(RUNS_FIELDS):
        raise ProfileSamplesError(
            f"{path}: line {line}: expected {len(RUNS_FIELDS)} fields, got {len(row)}"
        )
    _, level, variant, _, ms = row
    try:
        khz = int(level)
    except ValueError:
        khz = 0
    if khz <= 0:
        raise ProfileSamplesError(f"{path}: line {line}: level_khz {level!r}: expected kHz > 0")
    try:
        value = float(ms)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ProfileSamplesError(
            f"{path}: line {line}: latency_ms {ms!r}: expected a finite number of ms > 0"
        )
    return khz, variant, value


def project_samples(
    raw: Mapping[str, Mapping[int, Sequence[float]]],
    calibration: Mapping[str, Any],
    levels_khz: Sequence[int],
) -> LatencySamples:
    """Runs as timed, onto the profile's levels: as they are in board mode; in host mode
    (the calibration has ``host_khz``) each run projected from the host's clock to every
    level of ``levels_khz`` by the fit the profile used (``memory_fraction`` from the
    calibration).

    >>> project_samples({"bp": {2000000: [10.0, 12.0]}}, {"host_khz": 2000000},
    ...                 [1000000, 1400000])
    {'bp': {1000000: [20.0, 24.0], 1400000: [14.285714285714286, 17.142857142857142]}}
    """
    from lab.profiling.calibrate import fit_latency

    host = calibration.get("host_khz")
    if host is None:
        return {n: {int(k): list(v) for k, v in by.items()} for n, by in raw.items()}
    fraction = calibration.get("memory_fraction")
    out: LatencySamples = {}
    for name, by_level in raw.items():
        runs = by_level.get(int(host))
        if not runs:
            continue
        fits = [fit_latency([int(host)], [x], name, fraction) for x in runs]
        out[name] = {int(k): [f.latency_ms(k) for f in fits] for k in levels_khz}
    return out
