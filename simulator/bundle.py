"""Variants from a compression bundle's ``bundle.json`` (plain JSON; no torch).

Accuracy, sparsity and non-zero operation counts come from the bundle and are ``measured``
by this lab (``rt3lab compress`` scores every set on the corpus's test split; the record
names the bundle and the split); the latency comes
later from the profile (its measured table for a variant of the same name, else its op-count
model, marked ``modelled``). The bundle's dense reference is added as ``dense`` when the
bundle has no set of that name and knows its operation counts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator.errors import SimulatorInputError

if TYPE_CHECKING:
    from device_profiles.schema import Variant


def _number(path: Path, where: str, value: Any, required: bool) -> float | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SimulatorInputError(f"{path}: {where}: expected a number, got {value!r}")
    return float(value)


def bundle_provenance(path: Path, data: dict[str, Any]) -> Any:
    """``measured`` provenance of a bundle's accuracies: the bundle, its split and data."""
    from device_profiles.schema import Measured

    meta = data.get("provenance") if isinstance(data.get("provenance"), dict) else {}
    split = meta.get("split") or "test"  # rt3lab compress scores the sets on the test split
    created = meta.get("created")
    corpus = meta.get("data")
    note = f"bundle {path.parent}, split {split}" + (f", data {corpus}" if corpus else "")
    return Measured(
        kind="measured",
        meter=f"next-token accuracy on the {split} split",
        date=str(created) if created else "unknown (not in the bundle)",
        tool="rt3lab compress / rt3lab evaluate",
        note=note,
    )


def variants_from_bundle(directory: str | Path) -> list[Variant]:
    """The pattern sets of the bundle at ``directory`` as profile variants."""
    from device_profiles.schema import Variant

    path = Path(directory) / "bundle.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SimulatorInputError(f"{path}: no such file (is {directory} a bundle?)") from None
    except json.JSONDecodeError as exc:
        raise SimulatorInputError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}"
        ) from None
    if not isinstance(data, dict) or data.get("format") != "rt3lab-bundle":
        raise SimulatorInputError(f"{path}: format: expected 'rt3lab-bundle'")
    if data.get("version") != 1:
        raise SimulatorInputError(f"{path}: version: expected 1, got {data.get('version')!r}")
    sets = data.get("sets")
    if not isinstance(sets, list) or not sets:
        raise SimulatorInputError(f"{path}: sets: expected a non-empty list")
    prov = bundle_provenance(path, data)
    out: list[Variant] = []
    entries = [(f"sets[{i}]", s) for i, s in enumerate(sets)]
    dense = (data.get("reference") or {}).get("dense")
    has_ops = isinstance(dense, dict) and all(
        isinstance(dense.get(f), int | float) and dense.get(f) > 0
        for f in ("nonzero_mults", "nonzero_adds")
    )  # the bundle writes 0 when it does not know the dense counts
    if has_ops and not any(isinstance(s, dict) and s.get("name") == "dense" for s in sets):
        entries.append(("reference.dense", {"name": "dense", "sparsity": 0.0, **dense}))
    for where, s in entries:
        if not isinstance(s, dict) or not isinstance(s.get("name"), str) or not s["name"]:
            raise SimulatorInputError(f"{path}: {where}.name: expected a non-empty string")
        acc = _number(path, f"{where}.accuracy", s.get("accuracy"), False)
        if acc is not None and not 0.0 <= acc <= 1.0:
            raise SimulatorInputError(f"{path}: {where}.accuracy: expected 0..1, got {acc}")
        sparsity = _number(path, f"{where}.sparsity", s.get("sparsity"), False)
        if sparsity is not None and not 0.0 <= sparsity < 1.0:
            raise SimulatorInputError(f"{path}: {where}.sparsity: expected 0..1, got {sparsity}")
        mults = _number(path, f"{where}.nonzero_mults", s.get("nonzero_mults"), True)
        adds = _number(path, f"{where}.nonzero_adds", s.get("nonzero_adds"), True)
        if mults < 0 or adds < 0:
            raise SimulatorInputError(f"{path}: {where}: operation counts must be >= 0")
        out.append(
            Variant(
                name=s["name"],
                accuracy=acc,
                sparsity=sparsity,
                nonzero_mults=mults,
                nonzero_adds=adds,
                provenance=prov,
            )
        )
    return out
