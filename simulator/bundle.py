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

An early-exit bundle (top-level ``scheme``: ``early-exit``, ``contracts.schemes``) gives a
set its exits: ``exits`` (the layer index of each exit head, strictly increasing),
``exit_histogram`` (the share of test inputs leaving at each, summing to 1 within 1e-6),
``exit_latency_ms`` (the host-measured latency of an inference leaving there, each > 0)
and ``threshold`` (the set's confidence threshold, a number or null), the three lists
aligned. They become the variant's ``early_exit``: the simulator gives it a latency
distribution at each level (``simulator.device``). A set of another scheme's bundle that
carries any of these fields is refused, and so is a malformed one (one line, exit 2).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts import bundle_manifest as M
from contracts.schemes import SchemeError, bundle_scheme
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


EXIT_FIELDS = ("exits", "exit_histogram", "exit_latency_ms", "threshold")


def _numbers(path: Path, where: str, value: Any, n: int | None) -> list[float]:
    """A JSON list of finite numbers (``n`` of them when given)."""
    if not isinstance(value, list) or not value:
        raise SimulatorInputError(f"{path}: {where}: expected a non-empty list, got {value!r:.40}")
    if n is not None and len(value) != n:
        raise SimulatorInputError(
            f"{path}: {where}: {len(value)} entries, expected one per exit ({n}, as exits)"
        )
    return [_number(path, f"{where}[{i}]", x, True) for i, x in enumerate(value)]


def early_exit_fields(path: Path, where: str, s: dict[str, Any]) -> dict[str, Any] | None:
    """A set's exits as ``EarlyExit``'s fields (None when it carries none), checked."""
    from device_profiles.schema import SHARE_TOLERANCE

    if not any(f in s for f in EXIT_FIELDS):
        return None
    exits = s.get("exits")
    if (
        not isinstance(exits, list)
        or not exits
        or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in exits)
        or any(b <= a for a, b in itertools.pairwise(exits))
    ):
        raise SimulatorInputError(
            f"{path}: {where}.exits: expected the layer index of each exit head, integers "
            f">= 0 strictly increasing, got {exits!r:.60}"
        )
    hist = _numbers(path, f"{where}.exit_histogram", s.get("exit_histogram"), len(exits))
    lats = _numbers(path, f"{where}.exit_latency_ms", s.get("exit_latency_ms"), len(exits))
    for i, h in enumerate(hist):
        if not 0.0 <= h <= 1.0:
            raise SimulatorInputError(
                f"{path}: {where}.exit_histogram[{i}]: expected a share in 0..1, got {h}"
            )
    total = math.fsum(hist)
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise SimulatorInputError(
            f"{path}: {where}.exit_histogram: shares sum to {total:.9g}, expected 1 within "
            f"{SHARE_TOLERANCE:g}"
        )
    for i, ms in enumerate(lats):
        if not ms > 0:
            raise SimulatorInputError(
                f"{path}: {where}.exit_latency_ms[{i}]: expected a latency > 0 ms, got {ms}"
            )
    threshold = _number(path, f"{where}.threshold", s.get("threshold"), False)
    return {"exits": exits, "histogram": hist, "latency_ms": lats, "threshold": threshold}


def _check_scheme(path: Path, data: dict[str, Any]) -> str:
    """The bundle's scheme; sets with early-exit fields need ``early-exit``."""
    try:
        scheme = bundle_scheme(data, str(path))
    except SchemeError as exc:
        raise SimulatorInputError(str(exc)) from None
    if scheme != "early-exit":
        for i, s in enumerate(data["sets"]):
            found = [f for f in EXIT_FIELDS if isinstance(s, dict) and f in s]
            if found:
                raise SimulatorInputError(
                    f"{path}: sets[{i}] carries early-exit fields {found} but the bundle's "
                    f"scheme is {scheme!r}; expected scheme 'early-exit'"
                )
    return scheme


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

    from device_profiles.schema import EarlyExit, Variant

    path = Path(directory) / M.MANIFEST
    with M.errors_as(SimulatorInputError):
        data = M.read_manifest(Path(directory))
    early = _check_scheme(path, data) == "early-exit"
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
        exits = early_exit_fields(path, where, s) if early else None
        try:
            variant = Variant(
                name=s["name"],
                accuracy=acc,
                sparsity=sparsity,
                nonzero_mults=mults,
                nonzero_adds=adds,
                early_exit=None if exits is None else EarlyExit(**exits),
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
