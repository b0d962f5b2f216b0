"""Bundles: a compressed model with its pattern sets, as one directory.

```
BUNDLE/bundle.json              format "rt3lab-bundle", version 1, scheme (rt3, width,
                                depth or early-exit; none: rt3), model {kind, config},
                                sets [{name, file, family, sparsity, density, nnz,
                                nonzero_mults, nonzero_adds, accuracy, perplexity,
                                freq_khz}], reference {dense: {...}, bp: {...}},
                                baselines {...}, provenance {data, seed, episodes,
                                created, versions}, checksums {file: sha256}
BUNDLE/backbone.safetensors     the shared weights (BP-masked, jointly fine-tuned): a full
                                state_dict of the model
BUNDLE/dense.safetensors        the trained unpruned weights, same keys and shapes
BUNDLE/sets/<name>.safetensors  one PatternSet each; "bp" is the BP mask alone
```

A depth set's row adds ``depth`` and ``decoder``, an early-exit set's ``exits``,
``exit_histogram``, ``exit_latency_ms`` and ``threshold`` (``lab.runtime.exits.ENTRY_FIELDS``;
written only when present, checked against the set file's exits); an early-exit bundle's
thresholds must not rise as ``freq_khz`` drops.

Field meanings in ``sets``: ``density`` is the set's kept fraction over the layers it covers
(``PatternSet.density``), ``sparsity = 1 - density``, ``nnz`` the kept weights over those
layers; ``nonzero_mults``/``nonzero_adds`` are per inference as RT3 counts them (the
``rt3-opcount`` source of ``device_profiles/boards/rt3-paper.yaml``); ``accuracy`` and
``perplexity`` may be null (unknown); ``freq_khz`` is the DVFS level the set was found for,
or null. ``Bundle.add_set`` fills the derived fields from the pattern set itself.

A set's layer ``L`` must name a weight ``L.weight`` of the backbone with the mask's shape.

Loading checks what a hand edit or a damaged copy could break: set names match
``SET_NAME`` (no ``/`` or ``..``) and are unique, there is at least one set, the model's kind
is one rt3lab builds (``MODEL_KINDS``) and its config is valid, an ``rt3-transformer``'s
backbone has exactly the tensors and shapes its config builds, each set's ``freq_khz`` is a
level of the profile when one is given, and every weight file has the SHA-256 that
``Bundle.save`` recorded in ``checksums``. A bundle written before checksums were recorded
loads with a ``BundleWarning`` saying to re-run ``rt3lab compress`` (its files are still
parsed and cross-checked); a checksum that does not match is an error. Reading
``bundle.json`` and checking the checksums is ``contracts.bundle_manifest``'s, shared with the
simulator's torch-free reader.

>>> import torch, tempfile
>>> from lab.runtime.pattern_set import PatternSet
>>> from lab.model import build_model
>>> config = {"vocab_size": 6, "emb": 4, "ff": 4, "heads": 2, "layers": 1}
>>> w = build_model("rt3-transformer", config).state_dict()
>>> b = Bundle.create("rt3-transformer", config, backbone=w, dense=w)
>>> mask = torch.ones(4, 4, dtype=torch.bool); mask[:, :2] = False
>>> _ = b.add_set(PatternSet.from_masks("half", {"layers.0.linear1": mask}, 2, 2), 8, 8)
>>> with tempfile.TemporaryDirectory() as d:
...     _ = b.save(d)
...     again = Bundle.load(d)
>>> again.entries["half"].density, again.sets["half"] == b.sets["half"]
(0.5, True)
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts import bundle_manifest as M
from contracts.bundle_manifest import FORMAT, SET_NAME, VERSION, file_sha256
from contracts.bundle_manifest import BundleWarning as BundleWarning  # re-exported
from contracts.schemes import (
    DEFAULT_SCHEME,
    SchemeError,
    bundle_scheme,
    check_scheme,
    expect_scheme,
)
from lab.model import MODEL_KINDS
from lab.runtime.pattern_set import PatternSet, PatternSetError

if TYPE_CHECKING:
    import torch

REFERENCE_FIELDS = ("accuracy", "perplexity", "nonzero_mults", "nonzero_adds")
PROVENANCE_FIELDS = ("data", "seed", "episodes", "created", "versions")
SET_FAMILIES = ("block-column", "elementwise", "mixed")


class BundleError(ValueError):
    """A bundle directory is malformed; the message names the file and field."""


def check_model(model: object, where: str) -> None:
    """Refuse a ``model`` record rt3lab cannot build: an unknown kind or an invalid config."""
    if not isinstance(model, dict):
        raise BundleError(f"{where}: field model must be {{kind: str, config: object}}")
    kind, config = model.get("kind"), model.get("config")
    if not isinstance(kind, str) or not isinstance(config, dict):
        raise BundleError(f"{where}: field model must be {{kind: str, config: object}}")
    if kind not in MODEL_KINDS:
        raise BundleError(
            f"{where}: field model.kind is {kind!r}, expected one of {list(MODEL_KINDS)}"
        )
    if kind == "rt3-transformer":
        from lab.model.transformer import ModelConfigError, RT3Config

        conf = {k: v for k, v in config.items() if k != "seed"}
        with M.errors_as(BundleError):
            M.check_model_sizes(conf, where)
        try:
            RT3Config.from_dict(conf)
        except (ModelConfigError, TypeError) as exc:
            raise BundleError(f"{where}: field model.config: {exc}") from None
    elif not isinstance(config.get("path"), str) or not config["path"]:
        raise BundleError(f"{where}: field model.config.path must name a checkpoint directory")


@dataclass
class SetEntry:
    """One row of ``bundle.json``'s ``sets``: what a pattern set costs and scores."""

    name: str
    file: str
    family: str
    sparsity: float
    density: float
    nnz: int
    nonzero_mults: int
    nonzero_adds: int
    accuracy: float | None = None
    perplexity: float | None = None
    freq_khz: int | None = None
    # the depth and early-exit schemes' fields (lab.runtime.exits.ENTRY_FIELDS), written
    # flat on the set's row, and only when given
    exit_fields: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """The set's row of ``bundle.json``."""
        out = asdict(self)
        out.update(out.pop("exit_fields"))
        return out


def _versions() -> dict[str, str]:
    import platform

    import torch

    from lab import __version__

    return {"rt3lab": __version__, "torch": torch.__version__, "python": platform.python_version()}


@dataclass(eq=False)
class Bundle:
    """A compressed model: backbone and dense weights, pattern sets and their records."""

    model: dict[str, Any]
    backbone: dict[str, torch.Tensor]
    dense: dict[str, torch.Tensor]
    sets: dict[str, PatternSet] = field(default_factory=dict)
    entries: dict[str, SetEntry] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    baselines: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    scheme: str = DEFAULT_SCHEME  # what the sets are (contracts.schemes.SCHEMES)

    @classmethod
    def create(
        cls,
        kind: str,
        config: dict[str, Any],
        backbone: dict[str, torch.Tensor],
        dense: dict[str, torch.Tensor],
        reference: dict[str, Any] | None = None,
        baselines: dict[str, Any] | None = None,
        provenance: dict[str, Any] | None = None,
        scheme: str = DEFAULT_SCHEME,
    ) -> Bundle:
        """A bundle without sets yet, of ``scheme``; missing reference/provenance fields are
        null."""
        ref = {
            level: {f: (reference or {}).get(level, {}).get(f) for f in REFERENCE_FIELDS}
            for level in ("dense", "bp")
        }
        for level in ("dense", "bp"):
            for f in ("nonzero_mults", "nonzero_adds"):
                if ref[level][f] is None:
                    ref[level][f] = 0
        prov = {f: (provenance or {}).get(f) for f in PROVENANCE_FIELDS}
        prov.update({k: v for k, v in (provenance or {}).items() if k not in prov})
        prov["created"] = prov["created"] or datetime.now(UTC).isoformat(timespec="seconds")
        prov["versions"] = prov["versions"] or _versions()
        return cls(
            {"kind": kind, "config": dict(config)},
            dict(backbone),
            dict(dense),
            reference=ref,
            baselines=dict(baselines or {}),
            provenance=prov,
            scheme=check_scheme(scheme, "Bundle.create: scheme"),
        )

    @property
    def set_names(self) -> list[str]:
        """Set names in file order."""
        return list(self.entries)

    def add_set(
        self,
        pattern_set: PatternSet,
        nonzero_mults: int,
        nonzero_adds: int,
        accuracy: float | None = None,
        perplexity: float | None = None,
        freq_khz: int | None = None,
        exit_fields: dict[str, Any] | None = None,
    ) -> SetEntry:
        """Add (or replace) a set; density, nnz, family and file are derived from it
        (``exit_fields``: a depth or early-exit variant's, ``lab.runtime.exits``)."""
        density = pattern_set.density
        entry = SetEntry(
            name=pattern_set.name,
            file=f"sets/{pattern_set.name}.safetensors",
            family=pattern_set.family,
            sparsity=1.0 - density,
            density=density,
            nnz=pattern_set.nnz,
            nonzero_mults=int(nonzero_mults),
            nonzero_adds=int(nonzero_adds),
            accuracy=None if accuracy is None else float(accuracy),
            perplexity=None if perplexity is None else float(perplexity),
            freq_khz=None if freq_khz is None else int(freq_khz),
            exit_fields=dict(exit_fields or {}),
        )
        self.sets[pattern_set.name] = pattern_set
        self.entries[pattern_set.name] = entry
        self._check_set(entry, pattern_set, "bundle")
        return entry

    def layer_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the backbone's ``*.weight`` tensors, by layer name."""
        return {
            k[: -len(".weight")]: tuple(v.shape)
            for k, v in self.backbone.items()
            if k.endswith(".weight")
        }

    # --- validation -------------------------------------------------------------------

    def _check_set(self, entry: SetEntry, ps: PatternSet, where: str) -> None:
        at = f"{where}: set {entry.name!r}"
        if not SET_NAME.match(entry.name):
            raise BundleError(f"{at}: name must match {SET_NAME.pattern}")
        if ps.name != entry.name:
            raise BundleError(f"{at}: its file {entry.file} holds a set named {ps.name!r}")
        shapes = self.layer_shapes()
        for layer, pat in ps.layers.items():
            if layer not in shapes:
                raise BundleError(
                    f"{at}: layer {layer!r} has no weight {layer + '.weight'!r} in "
                    "backbone.safetensors"
                )
            if shapes[layer] != pat.shape:
                raise BundleError(
                    f"{at}: layer {layer!r} mask shape {pat.shape} does not match the "
                    f"backbone weight shape {shapes[layer]}"
                )
        if entry.nnz != ps.nnz:
            raise BundleError(f"{at}: nnz {entry.nnz} but its pattern set keeps {ps.nnz}")
        if not math.isclose(entry.density, ps.density, abs_tol=1e-6):
            raise BundleError(f"{at}: density {entry.density} but its set has {ps.density}")
        if not math.isclose(entry.sparsity, 1.0 - entry.density, abs_tol=1e-6):
            raise BundleError(f"{at}: sparsity {entry.sparsity} is not 1 - density")
        if entry.family != ps.family:
            raise BundleError(f"{at}: family {entry.family!r} but its set is {ps.family!r}")
        from lab.runtime.exits import check_entry_plan

        check_entry_plan(entry.exit_fields, ps.meta, at, BundleError)

    def validate(self, where: str = "bundle") -> None:
        """Raise ``BundleError`` unless every part agrees with every other."""
        check_model(self.model, where)
        self._check_architecture(where)
        if set(self.backbone) != set(self.dense):
            diff = sorted(set(self.backbone) ^ set(self.dense))[:5]
            raise BundleError(
                f"{where}: backbone.safetensors and dense.safetensors keys differ: {diff}"
            )
        for k, v in self.backbone.items():
            if tuple(v.shape) != tuple(self.dense[k].shape):
                raise BundleError(
                    f"{where}: tensor {k!r} is {tuple(v.shape)} in backbone but "
                    f"{tuple(self.dense[k].shape)} in dense"
                )
        if set(self.sets) != set(self.entries):
            raise BundleError(f"{where}: sets and entries disagree: {sorted(self.sets)}")
        for name, entry in self.entries.items():
            self._check_set(entry, self.sets[name], where)
        from lab.runtime.exits import check_monotone

        check_monotone(
            [(e.name, e.freq_khz, e.exit_fields.get("threshold")) for e in self.entries.values()],
            where,
            BundleError,
        )
        for level in ("dense", "bp"):
            rec = self.reference.get(level)
            if not isinstance(rec, dict):
                raise BundleError(f"{where}: field reference.{level} must be an object")
            for f in REFERENCE_FIELDS:
                if f not in rec:
                    raise BundleError(f"{where}: field reference.{level}.{f} is missing")
                _check_number(rec[f], f"{where}: field reference.{level}.{f}", f)
        for f in PROVENANCE_FIELDS:
            if f not in self.provenance:
                raise BundleError(f"{where}: field provenance.{f} is missing")

    def _check_architecture(self, where: str) -> None:
        """An rt3-transformer's backbone must hold exactly what its config builds."""
        if self.model["kind"] != "rt3-transformer":
            return
        import torch

        from lab.model import build_model

        with torch.device("meta"):
            model = build_model("rt3-transformer", self.model["config"])
        want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        have = {k: tuple(v.shape) for k, v in self.backbone.items()}
        for k in sorted(set(want) | set(have)):
            if want.get(k) != have.get(k):
                raise BundleError(
                    f"{where}: field model.config builds tensor {k!r} as {want.get(k)}, "
                    f"but backbone.safetensors has {have.get(k)}"
                )

    def check_levels(self, levels_khz: list[int], where: str, profile: str = "profile") -> None:
        """Each set's ``freq_khz`` must be null or one of ``levels_khz``."""
        for i, e in enumerate(self.entries.values()):
            if e.freq_khz is not None and e.freq_khz not in levels_khz:
                raise BundleError(
                    f"{where}: sets[{i}].freq_khz {e.freq_khz} is not a level of {profile} "
                    f"{list(levels_khz)}"
                )

    # --- files ------------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write the bundle directory (created if needed); returns its path."""
        from safetensors.torch import save_file

        self.validate()
        root = Path(directory)
        (root / "sets").mkdir(parents=True, exist_ok=True)
        save_file(_unshared(self.backbone), str(root / "backbone.safetensors"))
        save_file(_unshared(self.dense), str(root / "dense.safetensors"))
        for name, ps in self.sets.items():
            ps.save(root / self.entries[name].file)
        files = ["backbone.safetensors", "dense.safetensors"]
        files += [e.file for e in self.entries.values()]
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "scheme": self.scheme,
            "model": self.model,
            "sets": [e.row() for e in self.entries.values()],
            "reference": self.reference,
            "baselines": self.baselines,
            "provenance": self.provenance,
            "checksums": {f: file_sha256(root / f) for f in files},
        }
        (root / "bundle.json").write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
        self.path = root
        return root

    @classmethod
    def load(
        cls,
        directory: str | Path,
        levels_khz: list[int] | None = None,
        profile: str = "the profile",
        scheme: str | None = None,
    ) -> Bundle:
        """Read and validate a bundle directory; ``BundleError`` names file and field.

        With ``levels_khz`` (a profile's levels) each set's ``freq_khz`` must be one of them;
        with ``scheme`` the bundle must be of that scheme (``SchemeError``, one line, before
        any weight is read).
        """
        root = Path(directory)
        index = root / M.MANIFEST
        with M.errors_as(BundleError):
            doc = M.read_manifest(root)
            M.require_sections(doc, index)
            scheme_got = _scheme(doc, str(index))
            if scheme is not None:
                expect_scheme(doc, scheme, str(index))
            check_model(doc["model"], str(index))
            checksums = M.recorded_checksums(doc, index)
            tensors = {}
            for part in ("backbone", "dense"):
                M.verify_file(root, f"{part}.safetensors", checksums, index)
                tensors[part] = _load_tensors(root / f"{part}.safetensors")
            entries: dict[str, SetEntry] = {}
            sets: dict[str, PatternSet] = {}
            for i, raw in enumerate(doc["sets"]):
                entry = _entry(raw, f"{index}: sets[{i}]")
                rel = M.set_file(entry.file, f"{index}: sets[{i}]")
                if (root / rel).is_file():  # a missing one: PatternSet.load names it
                    M.verify_file(root, rel, checksums, index)
                try:
                    sets[entry.name] = PatternSet.load(root / rel)
                except PatternSetError as exc:
                    raise BundleError(f"{index}: sets[{i}] ({entry.name!r}): {exc}") from exc
                entries[entry.name] = entry
        bundle = cls(
            doc["model"],
            tensors["backbone"],
            tensors["dense"],
            sets,
            entries,
            doc["reference"],
            doc["baselines"],
            doc["provenance"],
            root,
            scheme_got,
        )
        bundle.validate(str(root))
        if levels_khz is not None:
            bundle.check_levels(levels_khz, str(index), profile)
        return bundle


def _scheme(doc: dict[str, Any], where: str) -> str:
    """``bundle.json``'s scheme (``rt3`` when it records none), as a ``BundleError``."""
    try:
        return bundle_scheme(doc, where)
    except SchemeError as exc:
        raise BundleError(str(exc)) from None


# The schemes whose variants are pattern sets on one backbone (masks, and for depth and
# early exit the exits a set runs: lab.runtime.exits; a switch selects them): the
# commands that run a bundle (evaluate, bench runtime, profile, export, study) run these as
# they are; a scheme whose variants are something else must be handled by each of them.
SET_SCHEMES: tuple[str, ...] = ("rt3", "width", "depth", "early-exit")


def runs_as_sets(bundle: Bundle, command: str) -> Bundle:
    """``bundle`` if its scheme's variants are pattern sets (:data:`SET_SCHEMES`), which
    ``command`` runs with their exits; else ``SchemeError`` saying that ``command`` does not
    run that scheme yet (one line, exit 2)."""
    if bundle.scheme not in SET_SCHEMES:
        where = str((bundle.path or Path("bundle")) / M.MANIFEST)
        raise SchemeError(
            f"{where}: bundle of scheme {bundle.scheme!r}: {command} does not run it yet"
        )
    return bundle


def expect_bundle_scheme(bundle: Bundle, wanted: str) -> Bundle:
    """``bundle``, refused in one line (``SchemeError``) unless it is of scheme ``wanted``."""
    where = str((bundle.path or Path("bundle")) / M.MANIFEST)
    expect_scheme({"scheme": bundle.scheme}, wanted, where)
    return bundle


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A weight file's tensors; ``BundleError`` when it is not a safetensors file."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:
        raise BundleError(f"{path}: not a readable safetensors file ({exc})") from exc


def _check_number(value: object, where: str, name: str) -> None:
    integral = name in ("nonzero_mults", "nonzero_adds", "nnz", "freq_khz")
    nullable = name in ("accuracy", "perplexity", "freq_khz")
    if value is None and nullable:
        return
    ok = isinstance(value, int) if integral else isinstance(value, int | float)
    if isinstance(value, bool) or not ok or not 0 <= value < math.inf:  # type: ignore[operator]
        kind = "a non-negative integer" if integral else "a non-negative finite number"
        raise BundleError(f"{where} is {value!r}, expected {kind}{' or null' * nullable}")


def _entry(raw: object, where: str) -> SetEntry:
    if not isinstance(raw, dict):
        raise BundleError(f"{where} must be an object")
    from lab.runtime.exits import check_entry_fields

    names = [f.name for f in SetEntry.__dataclass_fields__.values() if f.name != "exit_fields"]
    missing = [n for n in names if n not in raw]
    if missing:
        raise BundleError(f"{where}: missing fields {missing}")
    for n in ("name", "file"):
        if not isinstance(raw[n], str) or not raw[n]:
            raise BundleError(f"{where}.{n} must be a non-empty string")
    if raw["family"] not in SET_FAMILIES:
        raise BundleError(f"{where}.family is {raw['family']!r}, expected one of {SET_FAMILIES}")
    for n in names[3:]:
        _check_number(raw[n], f"{where}.{n}", n)
    if raw["density"] > 1 or raw["sparsity"] > 1:
        raise BundleError(f"{where}: density and sparsity must lie in [0, 1]")
    return SetEntry(**{n: raw[n] for n in names}, exit_fields=check_entry_fields(raw, where))


def _unshared(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous tensors, cloning any that share storage (safetensors refuses aliases)."""
    seen: set[int] = set()
    out = {}
    for k, v in state.items():
        v = v.detach().cpu().contiguous()
        ptr = v.untyped_storage().data_ptr()
        out[k] = v.clone() if ptr in seen else v
        seen.add(ptr)
    return out
