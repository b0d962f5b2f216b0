"""Energy accounting: the energy each policy drew from the battery against the battery's
nominal energy (capacity x nominal voltage), and why a battery model gives more or less.

An ideal battery delivers its nominal energy exactly. A Thevenin cell delivers its charge
at its terminal voltage, which follows the open-circuit voltage (OCV) table: where the OCV
averages above the nominal voltage over the charge, the cell gives more than nominal (less
what its internal resistance takes and what is left below the cutoff). A Peukert battery
drawn below its rated current (capacity / rated hours) gives more charge than rated, and
less above it. A KiBaM cell leaves bound charge behind when its available well empties.

>>> mean_ocv({"soc": [0.0, 1.0], "ocv_v": [3.0, 4.0]})
3.5
"""

from __future__ import annotations

from typing import Any

from reports.render import Cell, TableBlock, fmt
from reports.run import RunData


def mean_ocv(ocv: dict[str, Any]) -> float | None:
    """The OCV table's mean over the state of charge (trapezoids), or None."""
    soc, volts = ocv.get("soc") or [], ocv.get("ocv_v") or []
    if len(soc) < 2 or len(soc) != len(volts) or soc[-1] == soc[0]:
        return None
    area = sum((soc[i + 1] - soc[i]) * (volts[i + 1] + volts[i]) / 2 for i in range(len(soc) - 1))
    return area / (soc[-1] - soc[0])


def _battery(run: RunData) -> dict[str, Any]:
    return (run.profile or {}).get("battery") or {}


def why(run: RunData, r: dict[str, Any]) -> str:
    """Why this result's delivered energy differs from nominal, in a few words."""
    bat, model = _battery(run), str(r.get("battery_model"))
    volts = bat.get("nominal_voltage_v")
    if model == "ideal":
        return "an ideal battery delivers its nominal energy"
    if model == "thevenin" and volts:
        ocv = mean_ocv((bat.get("thevenin") or {}).get("ocv") or {})
        if ocv is not None:
            side = "above" if ocv > volts else "below"
            return f"OCV averages {ocv:.3f} V over the charge, {side} the {volts:g} V nominal"
    peukert = bat.get("peukert") or {}
    nominal, life = r.get("nominal_energy_j"), r.get("battery_life_s")
    if model == "peukert" and volts and nominal and life:
        rated_a = nominal / volts / (3600.0 * float(peukert.get("rated_hours", 20.0)))
        mean_a = float(r.get("energy_j") or 0.0) / volts / life
        side = "below" if mean_a < rated_a else "above"
        return f"mean current {1e3 * mean_a:,.1f} mA, {side} the rated {1e3 * rated_a:,.1f} mA"
    if model == "kibam":
        return "bound charge is left when the available charge runs out"
    return ""


NOTES = {
    "ideal": "An ideal battery delivers exactly its nominal energy (to float rounding).",
    "thevenin": (
        "Thevenin: the cell delivers its charge at its terminal voltage, which follows the "
        "open-circuit voltage (OCV) table; where the OCV averages above the nominal voltage "
        "the same charge carries more energy than capacity x nominal voltage, less what the "
        "internal resistance (R0 and the RC pairs) takes and what is left below the cutoff."
    ),
    "peukert": (
        "Peukert: charge is drawn at the effective rate I (I / I_rated)^(k - 1), with "
        "I_rated = capacity / rated hours; below the rated current the cell gives more "
        "charge than its capacity, above it less."
    ),
    "kibam": (
        "KiBaM: part of the charge is bound and flows to the available well at a finite "
        "rate; the cell stops when the available well is empty, with bound charge left."
    ),
}


def energy_block(run: RunData) -> TableBlock:
    """Energy delivered against nominal, per policy, with why they differ (said once in
    the introduction when it is the same for every row)."""
    reasons = [why(run, r) for r in run.records]
    column = len(set(reasons)) > 1
    rows = []
    for r, reason in zip(run.records, reasons, strict=True):
        nominal = r.get("nominal_energy_j")
        delivered = r.get("energy_j")
        share = delivered / nominal if nominal and delivered is not None else None
        rows.append(
            [
                Cell(str(r.get("policy"))),
                Cell(str(r.get("battery_model") or "")),
                fmt(delivered, 1),
                fmt(nominal, 1),
                Cell("n/a", True) if share is None else Cell(f"{100 * share:.2f} %", True),
                *([Cell(reason)] if column else []),
            ]
        )
    models = list(dict.fromkeys(str(r.get("battery_model")) for r in run.records))
    notes = [NOTES[m] for m in models if m in NOTES]
    if any(r.get("nominal_energy_j") is None for r in run.records):
        notes.append("n/a: a result written before results carried nominal_energy_j.")
    intro = (
        "The energy drawn from the battery over the whole discharge, against its nominal "
        "energy: capacity x nominal voltage."
    )
    if not column and reasons and reasons[0]:
        intro += f" Every row: {reasons[0]}."
    header = ["policy", "battery model", "delivered (J)", "nominal (J)", "delivered / nominal"]
    return TableBlock(
        "energy",
        "Energy delivered against the battery's nominal energy",
        header + (["why they differ"] if column else []),
        rows,
        intro,
        notes,
    )
