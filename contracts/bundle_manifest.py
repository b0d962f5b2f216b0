"""The bundle manifest, ``BUNDLE/bundle.json``: read, shape-checked and verified once.

Two readers use it: ``lab.runtime.bundle`` (with torch: it then loads the weights and
cross-checks them) and ``simulator.bundle`` (torch-free: the sets' records only). This
module holds what both need: the format name and version, the rule for set names, the
reading of ``bundle.json`` with an error naming the byte, line or field that is wrong, and
the SHA-256 checks of the weight files ``checksums`` records. Each reader turns
``ManifestError`` into its own error type.

```
{"format": "rt3lab-bundle", "version": 1, "model": {...},
 "sets": [{"name", "file", ...}], "reference": {...}, "baselines": {...},
 "provenance": {...}, "checksums": {file: sha256}}
```

>>> import json, tempfile
>>> from pathlib import Path
>>> doc = {"format": FORMAT, "version": VERSION, "sets": [{"name": "bp"}], "checksums": {}}
>>> with tempfile.TemporaryDirectory() as d:
...     _ = (Path(d) / MANIFEST).write_text(json.dumps(doc))
...     [s["name"] for s in read_manifest(Path(d))["sets"]]
['bp']
>>> bool(SET_NAME.match("pp-1400mhz")), bool(SET_NAME.match("../evil"))
(True, False)
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from contracts import strict_json

FORMAT = "rt3lab-bundle"
VERSION = 1
MANIFEST = "bundle.json"
WEIGHT_FILES = ("backbone.safetensors", "dense.safetensors")
# a set's name is also its file's name: no "/", no leading "."
SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# the sections lab's reader needs beside ``sets`` (the simulator reads only ``sets``)
SECTIONS = ("model", "reference", "baselines", "provenance")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# The largest rt3-transformer config a bundle may name, checked before any layer is built
# (``"layers": 1000000`` would otherwise build a million layers, over 11 GB, before the
# weights are compared): far above RT3's model (vocab 33,278, emb 800, ff 200, 2 layers,
# 4 heads); the engine's loader allows each up to 2**24.
MODEL_SIZE_BOUNDS = {"vocab_size": 1 << 24, "emb": 1 << 16, "ff": 1 << 18, "layers": 256,
                     "heads": 1 << 10}  # fmt: skip
# a manifest is a few KiB; anything past this is not one (and /dev/zero never ends)
MAX_MANIFEST_BYTES = 16 << 20


class ManifestError(ValueError):
    """``bundle.json`` or a file it names is wrong; the message names the file and field."""


class BundleWarning(UserWarning):
    """A bundle that loads but lacks something rt3lab now records (its checksums)."""


@contextmanager
def errors_as(error: type[Exception]) -> Iterator[None]:
    """Raise a ``ManifestError`` from the block as the reader's own ``error`` (same text).

    >>> try:
    ...     with errors_as(KeyError):
    ...         raise ManifestError("bundle.json: field version is 2, expected 1")
    ... except KeyError as exc:
    ...     print(exc.args[0])
    bundle.json: field version is 2, expected 1
    """
    try:
        yield
    except ManifestError as exc:
        raise error(str(exc)) from None


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(root: Path) -> dict[str, Any]:
    """``root/bundle.json`` parsed and checked for shape (no weights read): format,
    version, ``sets`` a non-empty list whose names match ``SET_NAME`` and are unique, and
    ``checksums`` (when present) a table of SHA-256 hex digests."""
    index = root / MANIFEST
    doc = _parse(index, root)
    if not isinstance(doc, dict):
        raise ManifestError(f"{index}: top level must be an object")
    if doc.get("format") != FORMAT:
        raise ManifestError(f"{index}: field format is {doc.get('format')!r}, expected {FORMAT!r}")
    if doc.get("version") != VERSION:
        raise ManifestError(f"{index}: field version is {doc.get('version')!r}, expected {VERSION}")
    if not isinstance(doc.get("sets"), list):
        raise ManifestError(f"{index}: field sets must be a JSON list")
    if not doc["sets"]:
        raise ManifestError(f"{index}: field sets is empty: a bundle holds at least one set")
    seen: set[str] = set()
    for i, raw in enumerate(doc["sets"]):
        name = raw.get("name") if isinstance(raw, dict) else None
        if not isinstance(name, str) or not SET_NAME.match(name):
            raise ManifestError(
                f"{index}: sets[{i}].name {name!r} must match {SET_NAME.pattern} "
                "(letters, digits, '.', '_', '-'; no '/' and no leading '.')"
            )
        if name in seen:
            raise ManifestError(f"{index}: sets[{i}].name {name!r} appears twice")
        seen.add(name)
    sums = doc.get("checksums")
    if sums is not None and not (
        isinstance(sums, dict)
        and all(isinstance(k, str) and isinstance(v, str) and SHA256_HEX.match(v)
                for k, v in sums.items())
    ):  # fmt: skip
        raise ManifestError(f"{index}: field checksums must map file names to SHA-256 hex digests")
    return doc


def _parse(index: Path, root: Path) -> Any:
    """The JSON of ``index`` (strict: ``contracts.strict_json``; a regular file of at most
    ``MAX_MANIFEST_BYTES``), or a ``ManifestError`` naming the byte, line or field at fault."""
    if not index.exists():
        raise ManifestError(f"{index}: not found (is {root} a bundle directory?)")
    return strict_json.read(index, MAX_MANIFEST_BYTES, ManifestError)


def check_model_sizes(config: dict[str, Any], where: str) -> None:
    """Each size of a model ``config`` within ``MODEL_SIZE_BOUNDS`` (other checks are the
    model's own).

    >>> try:
    ...     check_model_sizes({"vocab_size": 50, "layers": 10**6}, "bundle.json")
    ... except ManifestError as exc:
    ...     print(exc)
    bundle.json: field model.config.layers is 1000000; rt3lab builds at most 256
    """
    for key, bound in MODEL_SIZE_BOUNDS.items():
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > bound:
            raise ManifestError(
                f"{where}: field model.config.{key} is {value}; rt3lab builds at most {bound}"
            )


def require_sections(doc: dict[str, Any], index: Path) -> None:
    """Every section of ``SECTIONS`` is a JSON object (what lab's reader needs), and each
    baseline in ``baselines`` (rbp, bp+rpp) is one too."""
    for key in SECTIONS:
        if not isinstance(doc.get(key), dict):
            raise ManifestError(f"{index}: field {key} must be a JSON dict")
    for name, baseline in doc["baselines"].items():
        if not isinstance(baseline, dict):
            raise ManifestError(f"{index}: field baselines.{name} must be a JSON dict")


NAME_MAX = 255  # bytes in one file name (Linux, macOS and Windows file systems)
PATH_MAX = 4096  # bytes in a whole path (Linux)


def set_file(rel: object, where: str) -> str:
    """A set's ``file``: a non-empty relative path that stays inside the bundle, with no
    name longer than a file system takes (opening one would fail with ``ENAMETOOLONG``
    instead of naming the field).

    >>> set_file("sets/bp.safetensors", "b.json: sets[0]")
    'sets/bp.safetensors'
    >>> try:
    ...     set_file("x" * 300, "b: sets[0]")
    ... except ManifestError as e:
    ...     print(e)
    b: sets[0].file: a file name of 300 bytes, expected at most 255
    """
    if not isinstance(rel, str) or not rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
        raise ManifestError(f"{where}.file {rel!r} must be a path inside the bundle")
    longest = max(len(os.fsencode(part)) for part in Path(rel).parts)
    if longest > NAME_MAX:
        raise ManifestError(
            f"{where}.file: a file name of {longest} bytes, expected at most {NAME_MAX}"
        )
    if len(os.fsencode(rel)) > PATH_MAX:
        raise ManifestError(
            f"{where}.file: a path of {len(os.fsencode(rel))} bytes, expected at most {PATH_MAX}"
        )
    return rel


def recorded_checksums(doc: dict[str, Any], index: Path) -> dict[str, str] | None:
    """``checksums``; None, with a ``BundleWarning``, for a bundle written before them."""
    sums = doc.get("checksums")
    if sums is None:
        warnings.warn(
            f"{index}: no checksums (written before rt3lab recorded them); its weight "
            "files cannot be verified: re-run `rt3lab compress` to rebuild it",
            BundleWarning,
            stacklevel=3,
        )
    return sums


def verify_file(root: Path, rel: str, checksums: dict[str, str] | None, index: Path) -> None:
    """The file ``rel`` exists and (with ``checksums``) has the SHA-256 recorded for it."""
    if not (root / rel).is_file():
        raise ManifestError(f"{root / rel}: not found (named by {index.name})")
    if checksums is None:
        return
    want = checksums.get(rel)
    if want is None:
        raise ManifestError(f"{index}: field checksums has no entry for {rel}")
    got = file_sha256(root / rel)
    if got != want:
        raise ManifestError(
            f"{root / rel}: SHA-256 {got[:16]}... does not match {want[:16]}... recorded in "
            f"{index.name}: the file was changed or damaged after the bundle was written"
        )
