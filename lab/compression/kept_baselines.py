"""The baselines a bundle keeps so that ``evaluate`` can re-score them: rBP (its mask on its
own retrained weights) and BP+rPP (its sets on the backbone fine-tuned jointly for them).

``compress`` writes them under ``BUNDLE/baselines/`` and records where, with each file's
SHA-256, in ``bundle.json``'s ``baselines.kept``::

    {"rbp": {"weights": "baselines/rbp.weights.safetensors",
             "masks": "baselines/rbp.safetensors"},
     "bp+rpp": {"weights": "baselines/bp-rpp.weights.safetensors",
                "sets": {"rpp-1400mhz": "baselines/rpp-1400mhz.safetensors", ...}},
     "no-distill": {"weights": "baselines/no-distill.weights.safetensors",
                    "sets": {"no-distill-pp-1400mhz": "baselines/no-distill-pp-1400mhz...",
                             ..., "no-distill-bp": "..."}},
     "checksums": {"baselines/rbp.safetensors": "<sha256>", ...}}

``no-distill`` (``compress --distill-ablation`` only) is not a baseline of the method but
its ablation: the chosen sets fine-tuned without distillation from the same BP model, and
BP's mask on that backbone. Like the others, each set scores on its section's own weights.

A bundle written before they were kept has no ``kept``: its baseline figures are the ones
``compress`` recorded, and ``evaluate`` leaves those comparisons out of its checks.

>>> kept_path("rpp-1400mhz")
'baselines/rpp-1400mhz.safetensors'
>>> _rel({"weights": "../../etc/passwd"}, "weights", "kept.rbp")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
lab.compression.kept_baselines.KeptBaselineError: kept.rbp.weights: '../../etc/passwd' is not...
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

    from lab.runtime.pattern_set import PatternSet

KEPT_DIR = "baselines"
_REL = re.compile(r"^baselines/[A-Za-z0-9][A-Za-z0-9._-]*\.safetensors$")


class KeptBaselineError(ValueError):
    """A kept baseline that cannot be read; the message names the file or field."""


def kept_path(name: str) -> str:
    """Where a kept file named ``name`` lives, relative to the bundle."""
    return f"{KEPT_DIR}/{name}.safetensors"


@dataclass(frozen=True)
class KeptModel:
    """A baseline's own weights and the masks (by set name) scored on them."""

    weights: dict[str, torch.Tensor]
    masks: dict[str, dict[str, torch.Tensor]]


# The sections holding several sets on their own weights, and their weights' file name.
SET_SECTIONS = {"bp+rpp": "bp-rpp.weights", "no-distill": "no-distill.weights"}


def write_kept(
    root: Path,
    rbp: tuple[dict[str, Any], PatternSet] | None,
    rpp: tuple[dict[str, Any], list[PatternSet]] | None,
    no_distill: tuple[dict[str, Any], list[PatternSet]] | None = None,
) -> dict[str, Any]:
    """Write rBP's (weights, mask), BP+rPP's (weights, sets) and, from a distillation
    ablation, the undistilled (weights, sets) under ``root/baselines/``; the ``kept`` record
    for ``bundle.json``."""
    from safetensors.torch import save_file

    from contracts.bundle_manifest import file_sha256

    (root / KEPT_DIR).mkdir(parents=True, exist_ok=True)
    kept: dict[str, Any] = {}
    files: list[str] = []

    def weights(name: str, state: dict[str, Any]) -> str:
        rel = kept_path(name)
        save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, str(root / rel))
        files.append(rel)
        return rel

    def pattern_set(ps: PatternSet) -> str:
        rel = kept_path(ps.name)
        ps.save(root / rel)
        files.append(rel)
        return rel

    if rbp is not None:
        kept["rbp"] = {"weights": weights("rbp.weights", rbp[0]), "masks": pattern_set(rbp[1])}
    for section, given in (("bp+rpp", rpp), ("no-distill", no_distill)):
        if given is not None:
            kept[section] = {
                "weights": weights(SET_SECTIONS[section], given[0]),
                "sets": {ps.name: pattern_set(ps) for ps in given[1]},
            }
    kept["checksums"] = {rel: file_sha256(root / rel) for rel in files}
    return kept


def read_kept(root: Path, baselines: dict[str, Any]) -> dict[str, KeptModel]:
    """The kept baselines (``{}`` for a bundle that keeps none), every file checked against
    its recorded SHA-256; ``KeptBaselineError`` names the field or file that is wrong."""
    kept = baselines.get("kept")
    if kept is None:
        return {}
    where = "baselines.kept"
    if not isinstance(kept, dict) or not isinstance(kept.get("checksums"), dict):
        raise KeptBaselineError(f"{where}: expected an object with a checksums table")
    from contracts.bundle_manifest import SHA256_HEX

    for rel, digest in kept["checksums"].items():
        if not isinstance(digest, str) or not SHA256_HEX.match(digest):
            raise KeptBaselineError(
                f"{where}.checksums[{rel!r}]: {digest!r} is not a SHA-256 (64 hex digits)"
            )
    load = _loader(root, kept["checksums"], where)
    out = {}
    if "rbp" in kept:
        rbp = _section(kept, "rbp", where)
        out["rbp"] = KeptModel(
            load(_rel(rbp, "weights", f"{where}.rbp"), "weights"),
            {"rbp": load(_rel(rbp, "masks", f"{where}.rbp"), "masks")},
        )
    for name in SET_SECTIONS:
        if name not in kept:
            continue
        section = _section(kept, name, where)
        sets = section.get("sets")
        if not isinstance(sets, dict) or not sets:
            raise KeptBaselineError(f"{where}.{name}.sets: expected an object of set files")
        out[name] = KeptModel(
            load(_rel(section, "weights", f"{where}.{name}"), "weights"),
            {n: load(_rel(sets, n, f"{where}.{name}.sets"), "masks") for n in sets},
        )
    return out


def _section(kept: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    section = kept[name]
    if not isinstance(section, dict):
        raise KeptBaselineError(f"{where}.{name}: expected an object")
    return section


def _rel(section: dict[str, Any], key: str, where: str) -> str:
    rel = section.get(key)
    if not isinstance(rel, str) or not _REL.match(rel) or ".." in rel:
        raise KeptBaselineError(
            f"{where}.{key}: {rel!r} is not a file under baselines/ (baselines/NAME.safetensors)"
        )
    return rel


def _loader(root: Path, checksums: dict[str, Any], where: str) -> Callable[[str, str], Any]:
    """Reads a kept file (``weights``: its tensors; ``masks``: a pattern set's masks)."""
    import contracts.bundle_manifest as M

    def load(rel: str, what: str) -> Any:
        from safetensors.torch import load_file

        from lab.runtime.pattern_set import PatternSet, PatternSetError

        try:
            M.verify_file(root, rel, checksums, root / M.MANIFEST)
        except M.ManifestError as exc:
            raise KeptBaselineError(f"{where}: {exc}") from None
        try:
            if what == "weights":
                return load_file(str(root / rel))
            return PatternSet.load(root / rel).masks()
        except PatternSetError as exc:
            raise KeptBaselineError(f"{where}: {exc}") from None
        except Exception as exc:  # safetensors raises its own errors on a bad file
            raise KeptBaselineError(
                f"{root / rel}: not a readable safetensors file ({exc})"
            ) from None

    return load


def score_kept(
    model: nn.Module,
    kept: dict[str, KeptModel],
    score: Callable[[nn.Module], tuple[float, float | None]],
) -> dict[str, tuple[float, float | None]]:
    """Each kept mask scored on its baseline's own weights (``score(model)``), by set name;
    ``model`` is left holding the last baseline's weights."""
    from lab.compression.finetune import applied_masks

    modules = dict(model.named_modules())
    out = {}
    for base, km in kept.items():
        try:
            model.load_state_dict(km.weights)
        except RuntimeError as exc:
            raise KeptBaselineError(
                f"baselines.kept.{base}.weights: not this model's weights ({exc})"
            ) from None
        for name, masks in km.masks.items():
            for layer, m in masks.items():
                mod = modules.get(layer)
                if mod is None or tuple(getattr(mod, "weight", m).shape) != tuple(m.shape):
                    raise KeptBaselineError(
                        f"baselines.kept.{base}: set {name!r} masks layer {layer!r}, which "
                        "the model has not (or not in that shape)"
                    )
            with applied_masks(model, masks):
                out[name] = score(model)
    return out
