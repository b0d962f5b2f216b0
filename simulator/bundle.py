"""Variants from a compression bundle's ``bundle.json`` (plain JSON; no torch).

Accuracy, sparsity and non-zero operation counts come from the bundle and are ``measured``
by this lab (``rt3lab compress`` scores every set on the corpus's test split; the record
names the bundle and the split); the latency comes
later from the profile (its measured table for a variant of the same name, else its op-count
model, marked ``modelled``). The bundle's dense reference is added as ``dense`` when the
bundle has no set of that name and knows its operation counts.

The bundle is checked as far as the simulator can without torch, by the manifest's own
checks (``contracts.bundle_manifest``, which ``lab.runtime.bundle`` uses too): format and
version, set names (no ``/``, no leading ``.``) unique, every weight file present with the
SHA-256 recorded in ``checksums`` (a bundle without checksums is accepted with a warning);
and here each set's ``freq_khz`` is a level of the profile when the levels are given.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts import bundle_manifest as M
from simulator.errors import SimulatorInputError

if TYPE_CHECKING:
    from device_profiles.schema import Variant


def _check_files(root: Path, index: Path, data: dict[str, Any]) -> None:
    """Every weight file the manifest names exists and has its recorded SHA-256."""
    with M.errors_as(SimulatorInputError):
        files = list(M.WEIGHT_FILES)
        files += [
            M.set_file(s.get("file"), f"{index}: sets[{i}]") for i, s in enumerate(data["sets"])
        ]
        sums = M.recorded_checksums(data, index)
        for rel in files:
            M.verify_file(root, rel, sums, index)


def _number(path: Path, where: str, value: Any, required: bool) -> float | None:
    if value is None and not required:
        return None
    try:  # a JSON integer past a double's range (10**400) overflows float()
        number = None if isinstance(value, bool) else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        number = None
    if number is None or not isinstance(value, int | float) or not math.isfinite(number):
        shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:40]}..."
        raise SimulatorInputError(f"{path}: {where}: expected a number (finite), got {shown}")
    return number


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


def variants_from_bundle(
    directory: str | Path, levels_khz: list[int] | None = None, profile: str = "the profile"
) -> list[Variant]:
    """The pattern sets of the bundle at ``directory`` as profile variants; with
    ``levels_khz`` each set's ``freq_khz`` must be one of those levels."""
    from pydantic import ValidationError

    from device_profiles.schema import Variant

    path = Path(directory) / M.MANIFEST
    with M.errors_as(SimulatorInputError):
        data = M.read_manifest(Path(directory))
    sets = data["sets"]
    for i, s in enumerate(sets):  # names and their uniqueness: checked by the manifest
        khz = s.get("freq_khz")
        if khz is not None and (isinstance(khz, bool) or not isinstance(khz, int)):
            raise SimulatorInputError(
                f"{path}: sets[{i}].freq_khz: expected an integer kHz or null, got {khz!r}"
            )
        if khz is not None and levels_khz is not None and khz not in levels_khz:
            raise SimulatorInputError(
                f"{path}: sets[{i}].freq_khz: {khz} is not a level of {profile} {list(levels_khz)}"
            )

    prov = bundle_provenance(path, data)
    out: list[Variant] = []
    entries = [(f"sets[{i}]", s) for i, s in enumerate(sets)]
    reference = data.get("reference")
    dense = reference.get("dense") if isinstance(reference, dict) else None
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
        try:
            variant = Variant(
                name=s["name"],
                accuracy=acc,
                sparsity=sparsity,
                nonzero_mults=mults,
                nonzero_adds=adds,
                provenance=prov,
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(x) for x in err["loc"])
            raise SimulatorInputError(
                f"{path}: {where}.{field}: {err['msg']}, got {err.get('input')!r}"
            ) from None
        out.append(variant)
    _check_files(Path(directory), path, data)
    return out
