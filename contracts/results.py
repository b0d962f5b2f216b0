"""The columns of a simulation result, each with its type, written once.

The simulator's result record (``simulator.SimulationResult``: its fields, in this order,
which is the order of ``results.json``), a sweep's Parquet schema (the columns with an
Arrow type) and the reports' result table (the scalar columns) are all built from
``RESULT_COLUMNS``. A new result field is one line here and the code that computes it.

>>> [c.name for c in RESULT_COLUMNS][:4]
['profile', 'policy', 'battery_model', 'workload']
>>> SWEEP_COLUMNS["switches"], "warnings" in SWEEP_COLUMNS, "warnings" in SCALAR_COLUMNS
('int64', False, False)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_origin


@dataclass(frozen=True)
class ResultColumn:
    """One field of a simulation result.

    ``type`` is the Python annotation of the record's field; ``default`` is ``...`` for a
    field every result sets, else its value when derived fields are left out (an older
    ``results.json``); ``arrow`` is the Arrow type a sweep keeps the column as (None: a
    sweep does not keep it).
    """

    name: str
    type: Any
    doc: str
    arrow: str | None = None
    default: Any = ...

    @property
    def scalar(self) -> bool:
        """Whether the value is one string or number (not a dict or list).

        >>> RESULT_COLUMNS[0].scalar, COLUMN["time_at_level_s"].scalar
        (True, False)
        """
        return get_origin(self.type) not in (dict, list)


RESULT_COLUMNS: tuple[ResultColumn, ...] = (
    ResultColumn("profile", str, "the device profile's name"),
    ResultColumn("policy", str, "the switching policy, e.g. rt3 or dvfs-only:bp"),
    ResultColumn("battery_model", str, "the battery model simulated"),
    ResultColumn("workload", str, "the workload spec, e.g. periodic:30"),
    ResultColumn("mode", str, "fast, exact or mean"),
    ResultColumn("seed", int, "the seed of random arrivals"),
    ResultColumn("governor", str, "the governor the run followed"),
    ResultColumn(
        "governor_step",
        str,
        "finish or rerun: what a governor step does to the inference in flight",
    ),
    ResultColumn("battery_life_s", float, "seconds until the battery is empty", "float64"),
    ResultColumn("inferences", int, "inferences completed (late ones too)", "int64"),
    ResultColumn("deadline_misses", int, "late completions plus dropped requests", "int64"),
    ResultColumn("dropped", int, "requests dropped while the core was busy"),
    ResultColumn("aborted", int, "inferences abandoned by a governor step"),
    ResultColumn(
        "mean_accuracy", float | None, "accuracy weighted by completed inferences", "float64"
    ),
    ResultColumn("energy_j", float, "energy delivered to the device", "float64"),
    ResultColumn(
        "nominal_energy_j",
        float | None,
        "the battery's nominal energy: capacity x nominal voltage (None: an older result)",
        default=None,
    ),
    ResultColumn(
        "energy_per_inference_j", float | None, "energy over completed inferences", "float64"
    ),
    ResultColumn("switches", int, "pattern-set switches", "int64"),
    ResultColumn("level_changes", int, "frequency level changes"),
    ResultColumn("time_at_level_s", dict[int, float], "seconds at each level (kHz)"),
    ResultColumn("inferences_per_variant", dict[str, int], "completed inferences per variant"),
    ResultColumn("variant_at_level", dict[int, str], "the policy's level -> variant table"),
    ResultColumn("warnings", list[str], "what the run warns about"),
    ResultColumn("provenance", dict[str, str], "measured, published or modelled, per input"),
    ResultColumn("on_time_inferences", int, "completed within their deadline", "int64", 0),
    ResultColumn("missed_inferences", int, "= deadline_misses", "int64", 0),
    ResultColumn("miss_rate", float | None, "missed / (on time + missed)", "float64", None),
    ResultColumn(
        "energy_per_on_time_inference_j",
        float | None,
        "the discharge's energy over on-time inferences",
        "float64",
        None,
    ),
    ResultColumn("battery_life_h", float, "battery_life_s in hours", "float64", 0.0),
    ResultColumn(
        "max_accuracy_loss",
        float | None,
        "the accuracy bound the table was chosen within, points under dense (None: none)",
        default=None,
    ),
    ResultColumn(
        "table_choice", str | None, "why this table, under an accuracy bound", default=None
    ),
)
# Each column by name.
COLUMN: dict[str, ResultColumn] = {c.name: c for c in RESULT_COLUMNS}
# The columns a sweep keeps, with their Arrow types (fixed, so every file agrees).
SWEEP_COLUMNS: dict[str, str] = {c.name: c.arrow for c in RESULT_COLUMNS if c.arrow}
# The scalar columns, in order: one row per result in the reports' result table.
SCALAR_COLUMNS: tuple[str, ...] = tuple(c.name for c in RESULT_COLUMNS if c.scalar)


def on_time(counts: dict[str, Any]) -> dict[str, Any]:
    """The on-time fields from ``inferences``, ``deadline_misses``, ``dropped``,
    ``energy_j`` and ``battery_life_s`` of a result (dict; a missing or None count of
    misses or drops is 0).

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
    missed = int(counts.get("deadline_misses") or 0)
    late = missed - int(counts.get("dropped") or 0)
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


def series_stem(policy: str, nth: int = 1) -> str:
    """The file stem of a result's time series and events in a run directory: the policy,
    ``-N`` for its N-th result when several share it, ``:`` and ``/`` as ``_``.

    >>> series_stem("dvfs-only:bp"), series_stem("rt3", 2)
    ('dvfs-only_bp', 'rt3-2')
    """
    stem = policy if nth == 1 else f"{policy}-{nth}"
    return stem.replace("/", "_").replace(":", "_")
