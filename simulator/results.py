"""The result record of one simulation, and the run-directory writer.

A run directory holds ``results.json`` (a list of result dicts), ``timeseries/<policy>.parquet``
and ``events/<policy>.csv``. When several results share a policy, the later ones are written
as ``<policy>-2``, ``<policy>-3``... in list order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, PrivateAttr, create_model, model_validator

from contracts.results import RESULT_COLUMNS, on_time, series_stem

TIMESERIES_COLUMNS = ("time_s", "soc", "voltage_v", "power_w", "freq_khz", "variant")
EVENT_COLUMNS = ("time_s", "kind", "detail")

# The record's fields, in order, from the one list of result columns.
ResultFields = create_model(
    "ResultFields",
    __config__=ConfigDict(extra="forbid"),
    __module__=__name__,
    **{c.name: (c.type, Field(c.default, description=c.doc)) for c in RESULT_COLUMNS},
)


class SimulationResult(ResultFields):
    """One simulated discharge; its fields are ``contracts.results.RESULT_COLUMNS``.

    ``energy_j`` is the energy delivered to the device (the integral of the load's power),
    ``nominal_energy_j`` the battery's capacity x nominal voltage;
    ``deadline_misses`` counts late completions and dropped requests (``dropped``);
    ``governor_step`` is the rule for the inference in flight at a governor step
    (``finish`` or ``rerun``, see ``simulator.inflight``); ``aborted`` counts inferences
    abandoned by a governor step (``rerun`` only); ``switches`` counts
    pattern-set switches and ``level_changes`` frequency changes. ``mean_accuracy`` is
    weighted by completed inferences, None when a variant run has no accuracy.

    On-time accounting (derived here from the counts, so every driver agrees; see
    ``contracts.results.on_time``): ``on_time_inferences`` completed within their deadline,
    ``missed_inferences`` = ``deadline_misses`` (late completions plus dropped requests),
    ``miss_rate`` = missed / (on time + missed), ``energy_per_on_time_inference_j`` the
    whole discharge's energy over the on-time inferences, ``battery_life_h`` the life in
    hours. Headline ratios use ``on_time_inferences`` only.
    """

    _timeseries: Any = PrivateAttr(default=None)
    _events: Any = PrivateAttr(default=None)
    # the engine's records, turned into DataFrames on first access (a sweep never reads
    # them, and building two DataFrames was about 40% of a small cell's time)
    _records: Any = PrivateAttr(default=None)

    def _frames(self) -> None:
        if self._records is not None:
            self._timeseries, self._events = frames(*self._records)
            self._records = None

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        if isinstance(data, dict) and "inferences" in data:
            data = {**data, **on_time(data)}
        return data

    @property
    def timeseries(self) -> Any:
        """DataFrame: time_s, soc, voltage_v, power_w, freq_khz, variant.

        One row at the start, at every state change and on a ``sample_s`` grid (at the
        first request boundary past each grid point); ``power_w`` is the mean power since
        the previous row and ``voltage_v`` the terminal voltage under it.
        """
        self._frames()
        return self._timeseries

    @property
    def events(self) -> Any:
        """DataFrame: time_s, kind, detail."""
        self._frames()
        return self._events


def frames(rows: list[tuple], events: list[tuple]) -> tuple[Any, Any]:
    """Time-series and event DataFrames from the engine's records."""
    import pandas as pd

    ts = pd.DataFrame(rows, columns=list(TIMESERIES_COLUMNS))
    ev = pd.DataFrame(events, columns=list(EVENT_COLUMNS))
    return ts, ev


def check_run_dir(directory: str | Path, overwrite: bool = False, create: bool = False) -> Path:
    """``directory`` as a run directory to write (created with ``create``): a directory or
    nothing yet, without ``results.json`` unless ``overwrite`` (a result on disk is never
    replaced unasked)."""
    from contracts.files import output_dir, refuse_existing
    from simulator.errors import SimulatorInputError

    out = output_dir(directory, SimulatorInputError, create=create)
    refuse_existing([out / "results.json"], overwrite, SimulatorInputError)
    return out


def write_run(
    directory: str | Path, results: list[SimulationResult], overwrite: bool = False
) -> Path:
    """Write results.json, timeseries/<policy>.parquet and events/<policy>.csv.

    An existing ``results.json`` is refused unless ``overwrite`` (then the tables of the
    earlier run that this one does not write again are removed). Each file is written whole
    and renamed into place, so a symbolic link there is replaced, never followed; a
    ``timeseries`` or ``events`` that is a link is refused.
    """
    from contracts import strict_json
    from contracts.files import replacing, sub_dir, write_file
    from simulator.errors import SimulatorInputError

    out = check_run_dir(directory, overwrite, create=True)
    ts_dir = sub_dir(out, "timeseries", SimulatorInputError)
    ev_dir = sub_dir(out, "events", SimulatorInputError)
    seen: dict[str, int] = {}
    written: set[Path] = set()
    for r in results:
        seen[r.policy] = seen.get(r.policy, 0) + 1
        stem = series_stem(r.policy, seen[r.policy])
        if r.timeseries is not None:
            with replacing(ts_dir / f"{stem}.parquet") as tmp:
                r.timeseries.to_parquet(tmp, index=False)
            written.add(ts_dir / f"{stem}.parquet")
        if r.events is not None:
            with replacing(ev_dir / f"{stem}.csv") as tmp:
                r.events.to_csv(tmp, index=False)
            written.add(ev_dir / f"{stem}.csv")
    for stale in [*ts_dir.glob("*.parquet"), *ev_dir.glob("*.csv")]:
        if stale not in written:  # an earlier run's policy: not part of this result
            stale.unlink()
    data = [r.model_dump(mode="json") for r in results]
    write_file(out / "results.json", strict_json.dumps(data, indent=2) + "\n")
    return out
