"""Reading a run directory: the simulator's result tables and the artefacts beside them.

Reports read files only (JSON, Parquet, CSV, YAML); they never import the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from contracts.results import SCALAR_COLUMNS, series_stem

REQUIRED_FIELDS: tuple[str, ...] = ("policy", "battery_life_s", "inferences")


class RunDirError(ValueError):
    """A run directory that cannot be reported on; the message names the file and field."""


@dataclass(frozen=True)
class RunData:
    """Everything a report reads from one run directory."""

    path: Path
    records: list[dict[str, Any]]
    timeseries: dict[str, pd.DataFrame] = field(default_factory=dict)
    events: dict[str, pd.DataFrame] = field(default_factory=dict)
    profile: dict[str, Any] | None = None
    evaluate: dict[str, Any] | None = None
    runtime_bench: dict[str, Any] | None = None
    meter_trace: pd.DataFrame | None = None
    meter_windows: list[dict[str, Any]] | None = None
    commands: dict[str, str] = field(default_factory=dict)
    host: dict[str, Any] | None = None
    uncertainty: dict[str, Any] | None = None
    deadline_map: dict[str, Any] | None = None  # rt3lab study deadlines' JSON, where run

    @property
    def results(self) -> pd.DataFrame:
        """One row per simulation result, its scalar columns only (``SCALAR_COLUMNS``)."""
        rows = [{k: r.get(k) for k in SCALAR_COLUMNS} for r in self.records]
        return pd.DataFrame(rows, columns=list(SCALAR_COLUMNS))

    def record(self, policy: str) -> dict[str, Any] | None:
        """The first result of ``policy``, or None."""
        for r in self.records:
            if r.get("policy") == policy:
                return r
        return None


# A run's JSON files (results.json and the records beside it) are KiB to a few MiB.
MAX_JSON_BYTES = 64 << 20


def read_json(path: Path) -> Any:
    """Strict JSON (``contracts.strict_json``) of a regular file of at most
    ``MAX_JSON_BYTES``."""
    from contracts import strict_json

    return strict_json.read(path, MAX_JSON_BYTES, RunDirError)


def _read_optional_json(path: Path, kind: type) -> Any:
    if not path.is_file():
        return None
    data = read_json(path)
    if not isinstance(data, kind):
        raise RunDirError(f"{path}: expected a JSON {kind.__name__}, got {type(data).__name__}")
    return data


def _check_records(path: Path, data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise RunDirError(f"{path}: expected a list of simulation results, got {type(data)}")
    if not data:
        raise RunDirError(f"{path}: holds no results (an empty list)")
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise RunDirError(f"{path}: result [{i}] is a {type(rec).__name__}, not an object")
        for key in REQUIRED_FIELDS:
            if key not in rec:
                raise RunDirError(f"{path}: result [{i}] has no field {key!r}")
        for key in ("battery_life_s", "inferences"):
            if not isinstance(rec[key], int | float) or isinstance(rec[key], bool):
                raise RunDirError(f"{path}: result [{i}].{key} must be a number, got {rec[key]!r}")
    return data


def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path)


def _tables(directory: Path, records: list[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    """A directory's ``<stem>.parquet`` / ``<stem>.csv`` files keyed by the policy whose
    stem it is (``contracts.results.series_stem``: ``dvfs-only_bp`` is ``dvfs-only:bp``; a
    policy's second result ``rt3 (2)``); a file no result names keeps its stem."""
    out: dict[str, pd.DataFrame] = {}
    if not directory.is_dir():
        return out
    names: dict[str, str] = {}
    seen: dict[str, int] = {}
    for r in records:
        policy = str(r.get("policy"))
        seen[policy] = seen.get(policy, 0) + 1
        nth = seen[policy]
        names[series_stem(policy, nth)] = policy if nth == 1 else f"{policy} ({nth})"
    for p in sorted(directory.iterdir()):
        name = names.get(p.stem, p.stem)
        # is_file: a regular file (a named pipe would block the reader)
        if p.suffix in (".parquet", ".csv") and name not in out and p.is_file():
            out[name] = _read_table(p)
    return out


def load_run(path: str | Path) -> RunData:
    """Read a run directory (see DEVELOPERS.md "Simulator results").

    Raises ``RunDirError`` when the directory or its ``results.json`` is missing or bad.
    """
    from contracts.files import file_in_dir

    root = Path(path)
    results_path = file_in_dir(
        root,
        "results.json",
        RunDirError,
        f"{root}: no such run directory",
        f"{root}: no results.json (a run directory holds the simulator's results; "
        "write one with `rt3lab simulate --out DIR` or `rt3lab demo`)",
    )
    records = _check_records(results_path, read_json(results_path))
    profile = None
    profile_path = root / "profile.yaml"
    if profile_path.is_file():
        from contracts.files import read_text

        try:
            profile = yaml.safe_load(read_text(profile_path, MAX_JSON_BYTES, RunDirError))
        except yaml.YAMLError as exc:
            raise RunDirError(f"{profile_path}: not valid YAML: {exc}") from None
        except RecursionError:
            raise RunDirError(f"{profile_path}: not valid YAML: nested too deeply") from None
        if not isinstance(profile, dict):
            raise RunDirError(f"{profile_path}: expected a mapping at the top level")
    meter_trace = None
    trace_path = root / "meter" / "trace.csv"
    if trace_path.is_file():
        meter_trace = pd.read_csv(trace_path)
    windows = _read_optional_json(root / "meter" / "windows.json", list)
    commands = _read_optional_json(root / "commands.json", dict) or {}
    return RunData(
        path=root,
        records=records,
        timeseries=_tables(root / "timeseries", records),
        events=_tables(root / "events", records),
        profile=profile,
        evaluate=_read_optional_json(root / "evaluate.json", dict),
        runtime_bench=_read_optional_json(root / "runtime_bench.json", dict),
        meter_trace=meter_trace,
        meter_windows=windows,
        commands={str(k): str(v) for k, v in commands.items()},
        host=_read_optional_json(root / "host.json", dict),
        # the bootstrap's result: `rt3lab demo` writes it as intervals.json
        uncertainty=_read_optional_json(root / "uncertainty.json", dict)
        or _read_optional_json(root / "intervals.json", dict),
        deadline_map=_deadline_map(root),
    )


def _deadline_map(root: Path) -> dict[str, Any] | None:
    """``deadlines.json`` (the deadline map the demo runs), or None; a bad one refused."""
    from reports.deadline_map import read_map

    try:
        return read_map(root)
    except ValueError as exc:
        raise RunDirError(str(exc)) from None
