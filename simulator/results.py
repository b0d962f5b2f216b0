"""The result record of one simulation, and the run-directory writer.

A run directory holds ``results.json`` (a list of result dicts), ``timeseries/<policy>.parquet``
and ``events/<policy>.csv``. When several results share a policy, the later ones are written
as ``<policy>-2``, ``<policy>-3``... in list order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, model_validator

TIMESERIES_COLUMNS = ("time_s", "soc", "voltage_v", "power_w", "freq_khz", "variant")
EVENT_COLUMNS = ("time_s", "kind", "detail")


class SimulationResult(BaseModel):
    """One simulated discharge.

    ``energy_j`` is the energy delivered to the device (the integral of the load's power);
    ``deadline_misses`` counts late completions and dropped requests (``dropped``);
    ``governor_step`` is the rule for the inference in flight at a governor step
    (``finish`` or ``rerun``, see ``simulator.inflight``); ``aborted`` counts inferences
    abandoned by a governor step (``rerun`` only); ``switches`` counts
    pattern-set switches and ``level_changes`` frequency changes. ``mean_accuracy`` is
    weighted by completed inferences, None when a variant run has no accuracy.

    On-time accounting (derived here from the counts, so every driver agrees; see
    ``on_time``): ``on_time_inferences`` completed within their deadline,
    ``missed_inferences`` = ``deadline_misses`` (late completions plus dropped requests),
    ``miss_rate`` = missed / (on time + missed), ``energy_per_on_time_inference_j`` the
    whole discharge's energy over the on-time inferences, ``battery_life_h`` the life in
    hours. Headline ratios use ``on_time_inferences`` only.
    """

    model_config = ConfigDict(extra="forbid")

    profile: str
    policy: str
    battery_model: str
    workload: str
    mode: str
    seed: int
    governor: str
    governor_step: str
    battery_life_s: float
    inferences: int
    deadline_misses: int
    dropped: int
    aborted: int
    mean_accuracy: float | None
    energy_j: float
    energy_per_inference_j: float | None
    switches: int
    level_changes: int
    time_at_level_s: dict[int, float]
    inferences_per_variant: dict[str, int]
    variant_at_level: dict[int, str]
    warnings: list[str]
    provenance: dict[str, str]
    on_time_inferences: int = 0
    missed_inferences: int = 0
    miss_rate: float | None = None
    energy_per_on_time_inference_j: float | None = None
    battery_life_h: float = 0.0
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


def on_time(counts: dict[str, Any]) -> dict[str, Any]:
    """The on-time fields from ``inferences``, ``deadline_misses``, ``dropped``,
    ``energy_j`` and ``battery_life_s`` of a result (dict).

    A late completion is an inference but not an on-time one; a dropped request is a miss
    and no inference.

    >>> f = on_time({"inferences": 10, "deadline_misses": 5, "dropped": 2,
    ...              "energy_j": 14.0, "battery_life_s": 7200.0})
    >>> f["on_time_inferences"], f["missed_inferences"], f["miss_rate"]
    (7, 5, 0.4166666666666667)
    >>> f["energy_per_on_time_inference_j"], f["battery_life_h"]
    (2.0, 2.0)
    """
    n = int(counts["inferences"])
    missed = int(counts["deadline_misses"])
    late = missed - int(counts.get("dropped", 0))
    on = n - late
    energy = counts.get("energy_j")
    life = counts.get("battery_life_s")
    return {
        "on_time_inferences": on,
        "missed_inferences": missed,
        "miss_rate": (missed / (on + missed)) if on + missed else None,
        "energy_per_on_time_inference_j": (energy / on) if on and energy is not None else None,
        "battery_life_h": (life / 3600.0) if life is not None else 0.0,
    }


def frames(rows: list[tuple], events: list[tuple]) -> tuple[Any, Any]:
    """Time-series and event DataFrames from the engine's records."""
    import pandas as pd

    ts = pd.DataFrame(rows, columns=list(TIMESERIES_COLUMNS))
    ev = pd.DataFrame(events, columns=list(EVENT_COLUMNS))
    return ts, ev


def write_run(directory: str | Path, results: list[SimulationResult]) -> Path:
    """Write results.json, timeseries/<policy>.parquet and events/<policy>.csv."""
    out = Path(directory)
    (out / "timeseries").mkdir(parents=True, exist_ok=True)
    (out / "events").mkdir(parents=True, exist_ok=True)
    seen: dict[str, int] = {}
    for r in results:
        seen[r.policy] = seen.get(r.policy, 0) + 1
        stem = r.policy if seen[r.policy] == 1 else f"{r.policy}-{seen[r.policy]}"
        stem = stem.replace("/", "_").replace(":", "_") if ":" in stem or "/" in stem else stem
        if r.timeseries is not None:
            r.timeseries.to_parquet(out / "timeseries" / f"{stem}.parquet", index=False)
        if r.events is not None:
            r.events.to_csv(out / "events" / f"{stem}.csv", index=False)
    data = [r.model_dump(mode="json") for r in results]
    (out / "results.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return out
