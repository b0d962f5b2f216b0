"""Variants from a compression bundle's ``bundle.json`` (plain JSON; no torch).

Accuracy, sparsity and non-zero operation counts come from the bundle and are ``measured``
by this lab (``rt3lab compress`` scores every set on the corpus's test split; the record
names the bundle and the split); the latency comes
later from the profile (its measured table for a variant of the same name, else its op-count
model, marked ``modelled``). The bundle's dense reference is added as ``dense`` when the
bundle has no set of that name and knows its operation counts.

The bundle is checked as far as the simulator can without torch: set names match the
runtime's pattern (no ``/``, no leading ``.``) and are unique, every weight file exists and
has the SHA-256 recorded in ``checksums`` (a bundle without checksums is accepted with a
warning, as ``lab.runtime.bundle`` does), and each set's ``freq_khz`` is a level of the profile
when the levels are given.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator.errors import SimulatorInputError

if TYPE_CHECKING:
    from device_profiles.schema import Variant


SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # as lab.runtime.bundle.SET_NAME


class BundleChecksumWarning(UserWarning):
    """A bundle without checksums: its weight files cannot be verified."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_files(root: Path, path: Path, data: dict[str, Any], sets: list[Any]) -> None:
    files = ["backbone.safetensors", "dense.safetensors"]
    for i, s in enumerate(sets):
        rel = s.get("file") if isinstance(s, dict) else None
        if (
            not isinstance(rel, str)
            or not rel
            or Path(rel).is_absolute()
            or ".." in Path(rel).parts
        ):
            raise SimulatorInputError(
                f"{path}: sets[{i}].file: expected a path inside the bundle, got {rel!r}"
            )
        files.append(rel)
    sums = data.get("checksums")
    if sums is not None and not isinstance(sums, dict):
        raise SimulatorInputError(f"{path}: checksums: expected an object of SHA-256 digests")
    if sums is None:
        warnings.warn(
            f"{path}: no checksums (written before rt3lab recorded them); its weight files "
            "cannot be verified: re-run `rt3lab compress` to rebuild it",
            BundleChecksumWarning,
            stacklevel=3,
        )
    for rel in files:
        f = root / rel
        if not f.is_file():
            raise SimulatorInputError(f"{f}: not found (named by {path.name})")
        if sums is None:
            continue
        if rel not in sums:
            raise SimulatorInputError(f"{path}: checksums: no entry for {rel}")
        if _sha256(f) != sums[rel]:
            raise SimulatorInputError(
                f"{f}: SHA-256 does not match the one recorded in {path.name}: the file was "
                "changed or damaged after the bundle was written"
            )


def _number(path: Path, where: str, value: Any, required: bool) -> float | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SimulatorInputError(f"{path}: {where}: expected a number (finite), got {value!r}")
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


def variants_from_bundle(
    directory: str | Path, levels_khz: list[int] | None = None, profile: str = "the profile"
) -> list[Variant]:
    """The pattern sets of the bundle at ``directory`` as profile variants; with
    ``levels_khz`` each set's ``freq_khz`` must be one of those levels."""
    from pydantic import ValidationError

    from device_profiles.schema import Variant

    path = Path(directory) / "bundle.json"
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise SimulatorInputError(f"{path}: no such file (is {directory} a bundle?)") from None
    except IsADirectoryError:
        raise SimulatorInputError(f"{path}: is a directory, expected a JSON file") from None
    except UnicodeDecodeError as exc:
        raise SimulatorInputError(
            f"{path}: not UTF-8 JSON (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        ) from None
    except json.JSONDecodeError as exc:
        raise SimulatorInputError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}"
        ) from None
    except RecursionError:
        raise SimulatorInputError(f"{path}: not valid JSON: nested too deeply") from None
    if not isinstance(data, dict) or data.get("format") != "rt3lab-bundle":
        raise SimulatorInputError(f"{path}: format: expected 'rt3lab-bundle'")
    if data.get("version") != 1:
        raise SimulatorInputError(f"{path}: version: expected 1, got {data.get('version')!r}")
    sets = data.get("sets")
    if not isinstance(sets, list) or not sets:
        raise SimulatorInputError(f"{path}: sets: expected a non-empty list")
    seen: set[str] = set()
    for i, s in enumerate(sets):
        name = s.get("name") if isinstance(s, dict) else None
        if not isinstance(name, str) or not SET_NAME.match(name):
            raise SimulatorInputError(
                f"{path}: sets[{i}].name: {name!r} must match {SET_NAME.pattern} "
                "(no '/' and no leading '.')"
            )
        if name in seen:
            raise SimulatorInputError(f"{path}: sets[{i}].name: {name!r} appears twice")
        seen.add(name)
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
    _check_files(Path(directory), path, data, sets)
    return out
