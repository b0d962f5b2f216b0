"""The engine's export: a bundle's weights and every set's index tables as flat arrays.

```
DIR/header.json   {"format": "rt3lab-export", "version": 1, "data": "arrays.bin",
                   "model": {kind, vocab_size, emb, ff, layers, heads},
                   "sets": [{"name", "layers": {layer: block_rows}}],
                   "arrays": [{"name", "dtype": "float32"|"int32", "shape", "offset",
                               "nbytes", "sha256"}]}
DIR/arrays.bin    the arrays, little-endian, each at a 64-byte aligned offset
```

The engine writes ``DIR/arrays.bin.verified`` (``VERIFIED``) once it has checked the data
file's checksums, so that later opens of the same, unchanged file skip the hashing (see
``engine.c``'s header); it is no part of the export (not copied with it).

Arrays: ``embedding.weight`` ``(vocab, emb)``; per Linear ``L`` (``layers.{i}.self_attn.
in_proj``, ``...out_proj``, ``...linear1``, ``...linear2``, ``decoder``) ``L.pool``
``(block-rows, in, B)`` (block-row ``b``, input column ``c``: the weights of output rows
``bB .. bB+B-1``, zero past the last row) and ``L.bias`` ``(block-rows * B)``;
``layers.{i}.norm{1,2}.{weight,bias}``; per set ``S`` and layer it prunes
``sets.S.L.offsets`` (int32, block-rows + 1) and ``sets.S.L.cols`` (int32, kept columns of
each block-row). The weights are stored once; a set is its index tables only.

:func:`read_export` checks every field, size, offset and checksum before it returns an
array, and names the array or header field that is wrong (``ExportError``). The C engine
(``engine.c``) makes the same checks.

>>> import tempfile, torch
>>> from lab.runtime.synthetic import synthetic_bundle
>>> from lab.runtime.bundle import Bundle
>>> with tempfile.TemporaryDirectory() as d:
...     b = Bundle.load(synthetic_bundle(d + "/b", {"vocab_size": 40, "emb": 8, "ff": 8,
...                                                 "layers": 1, "heads": 2}))
...     _ = export_bundle(b, d + "/x")
...     ex = read_export(d + "/x")
>>> ex.set_names == list(b.sets), ex.arrays["decoder.pool"].shape
(True, (2, 8, 32))
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from lab.runtime.bundle import Bundle
    from lab.runtime.pattern_set import PatternSet

FORMAT = "rt3lab-export"
VERSION = 1
DATA = "arrays.bin"
VERIFIED = "arrays.bin.verified"  # written by the engine beside DATA: not copied
ALIGN = 64
DTYPES = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4")}
LINEARS = ("self_attn.in_proj", "self_attn.out_proj", "linear1", "linear2")
MODEL_FIELDS = ("vocab_size", "emb", "ff", "layers", "heads")
DEFAULT_BLOCK = 32  # the pool's block height for layers no set prunes
# The engine loader's bounds (engine.c), which read_export applies too.
MAX_HEADER = 16 << 20
MAX_DEPTH = 32
MAX_DATA = 1 << 40
MAX_MODEL_SIZE = 1 << 24
MAX_ELEMENTS = 1 << 40
MAX_OFFSET = 1 << 50
MAX_SETS = 4096
SET_NAME_CHARS = re.compile(r"^[A-Za-z0-9._-]{1,99}$")


class ExportError(ValueError):
    """An export cannot be written or read; the message names the array or header field."""


@dataclass
class Export:
    """A read export: its header and its arrays (read-only numpy views, checked)."""

    header: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def set_names(self) -> list[str]:
        """The sets, in the header's order."""
        return [s["name"] for s in self.header["sets"]]


def linear_names(layers: int) -> list[str]:
    """The model's Linear layers in the engine's order.

    >>> linear_names(1)[-1], len(linear_names(2))
    ('decoder', 9)
    """
    names = [f"layers.{i}.{n}" for i in range(layers) for n in LINEARS]
    return [*names, "decoder"]


def _pool(weight: np.ndarray, bias: np.ndarray | None, block: int) -> tuple[np.ndarray, ...]:
    out, inp = weight.shape
    nbr = math.ceil(out / block)
    padded = np.zeros((nbr * block, inp), dtype=np.float32)
    padded[:out] = weight
    pool = np.ascontiguousarray(padded.reshape(nbr, block, inp).transpose(0, 2, 1))
    b = np.zeros(nbr * block, dtype=np.float32)
    if bias is not None:
        b[:out] = bias
    return pool, b


def write_export(
    out: str | Path,
    config: dict[str, Any],
    state: dict[str, torch.Tensor],
    sets: list[PatternSet],
) -> Path:
    """Write the export of an RT3 Transformer LM (``config``, a state dict) with ``sets``.

    ``out`` must not exist or be empty (nothing recorded is overwritten). Raises
    ExportError for a set the engine cannot run (elementwise, block heights that differ
    between sets in one layer, a layer the model does not have).
    """
    import torch

    from contracts.files import new_path

    out = Path(out)
    if out.is_symlink() or not out.is_dir():
        new_path(out, ExportError)  # nothing there, no link, its parent a directory
    elif any(out.iterdir()):
        raise ExportError(f"{out}: exists and is not an empty directory; choose a new --out")
    model = {"kind": "rt3-transformer", **{f: int(config[f]) for f in MODEL_FIELDS}}
    names = linear_names(model["layers"])
    blocks: dict[str, int] = {}
    for ps in sets:
        for layer, pat in ps.layers.items():
            if layer != "embedding" and layer not in names:
                raise ExportError(f"set {ps.name!r}: layer {layer!r} is not in the model")
            if pat.family != "block-column":
                raise ExportError(
                    f"set {ps.name!r}: layer {layer!r} is {pat.family}; the engine runs "
                    "block-column sets only"
                )
            b = int(pat.block_rows)
            if layer != "embedding" and blocks.setdefault(layer, b) != b:
                raise ExportError(
                    f"set {ps.name!r}: layer {layer!r} has block_rows {b}, another set "
                    f"{blocks[layer]}; the engine needs one block height per layer"
                )

    def arr(key: str) -> np.ndarray:
        if key not in state:
            raise ExportError(f"weights: missing {key!r}")
        return state[key].detach().to(torch.float32).contiguous().numpy()

    arrays: list[tuple[str, np.ndarray]] = [("embedding.weight", arr("embedding.weight"))]
    for name in names:
        bias = arr(f"{name}.bias") if f"{name}.bias" in state else None
        pool, b = _pool(arr(f"{name}.weight"), bias, blocks.get(name, DEFAULT_BLOCK))
        arrays += [(f"{name}.pool", pool), (f"{name}.bias", b)]
    for i in range(model["layers"]):
        for k in ("norm1", "norm2"):
            for p in ("weight", "bias"):
                arrays.append((f"layers.{i}.{k}.{p}", arr(f"layers.{i}.{k}.{p}")))
    set_rows = []
    for ps in sets:
        layers = {}
        for layer, pat in sorted(ps.layers.items()):
            layers[layer] = int(pat.block_rows)
            offsets = pat.offsets.numpy()
            if offsets[-1] >= 2**31:
                raise ExportError(f"set {ps.name!r}: layer {layer!r} keeps too many columns")
            arrays.append((f"sets.{ps.name}.{layer}.offsets", offsets.astype(np.int32)))
            arrays.append((f"sets.{ps.name}.{layer}.cols", pat.indices.numpy().astype(np.int32)))
        set_rows.append({"name": ps.name, "layers": layers})
    out.mkdir(parents=True, exist_ok=True)
    entries, pos = [], 0
    tmp = out / (DATA + ".part")
    with open(tmp, "wb") as f:
        for name, a in arrays:
            dt = "int32" if a.dtype.kind == "i" else "float32"
            data = np.ascontiguousarray(a, dtype=DTYPES[dt]).tobytes()
            pad = (-pos) % ALIGN
            f.write(b"\0" * pad)
            pos += pad
            f.write(data)
            entries.append(
                {
                    "name": name,
                    "dtype": dt,
                    "shape": list(a.shape),
                    "offset": pos,
                    "nbytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
            pos += len(data)
    os.replace(tmp, out / DATA)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "data": DATA,
        "model": model,
        "sets": set_rows,
        "arrays": entries,
    }
    (out / "header.json").write_text(json.dumps(header, indent=1) + "\n")
    return out


def export_bundle(bundle: Bundle, out: str | Path) -> Path:
    """Write ``bundle``'s backbone and every set as an export in ``out`` (a scheme whose
    variants are pattern sets, ``lab.runtime.bundle.SET_SCHEMES``)."""
    from lab.runtime.bundle import runs_as_sets

    runs_as_sets(bundle, "rt3lab export")
    if bundle.model.get("kind") != "rt3-transformer":
        raise ExportError(
            f"bundle model kind {bundle.model.get('kind')!r}: the engine runs rt3-transformer"
        )
    return write_export(out, bundle.model["config"], bundle.backbone, list(bundle.sets.values()))


@dataclass
class ExportResult:
    """What ``rt3lab export`` wrote (checked by reading it back); ``as_dict()`` is its
    ``--json``."""

    out: Path
    sets: list[str]
    arrays: int
    bytes: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"out": str(self.out), "sets": self.sets, "arrays": self.arrays, "bytes": self.bytes}


def export(bundle_dir: str | Path, out: str | Path) -> ExportResult:
    """``rt3lab export`` as a function: load the bundle at ``bundle_dir``, write its export
    to ``out`` and read it back through every check."""
    from lab.runtime.bundle import Bundle

    path = export_bundle(Bundle.load(bundle_dir), out)
    ex = read_export(path)
    return ExportResult(path, ex.set_names, len(ex.arrays), (path / DATA).stat().st_size)


def _field(where: str, ok: bool, expected: str) -> None:
    if not ok:
        raise ExportError(f"header field {where!r}: expected {expected}")


def whole(value: object, lo: int, hi: int) -> int | None:
    """``value`` as an int when it is a JSON number with a whole value in ``lo..hi`` (the
    engine's ``jint``: ``8`` and ``8.0`` alike, never ``true``), else None.

    >>> whole(8, 1, 256), whole(8.0, 1, 256), whole(True, 0, 1), whole(300, 1, 256)
    (8, 8, None, None)
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != math.floor(value) or not lo <= value <= hi:
        return None
    return int(value)


def _header(hpath: Path) -> dict[str, Any]:
    """``header.json`` read and parsed by the engine loader's rules (``read_export``)."""
    from contracts import strict_json

    header = strict_json.read(hpath, MAX_HEADER, ExportError, max_depth=MAX_DEPTH)
    if not isinstance(header, dict):
        raise ExportError(f"{hpath}: not a JSON object")
    _field("format", header.get("format") == FORMAT, repr(FORMAT))
    _field("version", whole(header.get("version"), 0, 1 << 30) == VERSION, str(VERSION))
    _field("data", header.get("data") == DATA, repr(DATA))
    model = header.get("model")
    _field("model.kind", isinstance(model, dict) and model.get("kind") == "rt3-transformer",
           "'rt3-transformer'")  # fmt: skip
    for f in MODEL_FIELDS:
        v = whole(model.get(f), 1, MAX_MODEL_SIZE)
        _field(f"model.{f}", v is not None, f"a positive integer up to {MAX_MODEL_SIZE}")
        model[f] = v
    _field("model.heads", model["emb"] % model["heads"] == 0, "a divisor of emb")
    return header


def _array(e: object, blob: bytes, seen: dict[str, np.ndarray]) -> tuple[str, np.ndarray]:
    """One entry of ``arrays`` checked against the data file, and its array."""
    name = e.get("name") if isinstance(e, dict) else None
    _field("arrays", isinstance(name, str) and len(name.encode()) < 128,
           "entries with a name (under 128 bytes)")  # fmt: skip
    where = f"array {name!r}"
    if name in seen:
        raise ExportError(f"{where}: listed twice")
    dt, shape = e.get("dtype"), e.get("shape")
    if dt not in DTYPES:
        raise ExportError(f"{where}: dtype {dt!r}, expected float32 or int32")
    sizes = [whole(s, 0, MAX_ELEMENTS) for s in shape] if isinstance(shape, list) else []
    if not 1 <= len(sizes) <= 4 or None in sizes:
        raise ExportError(f"{where}: shape {shape!r}, expected 1 to 4 sizes")
    if math.prod(sizes) > MAX_ELEMENTS:
        raise ExportError(f"{where}: shape {shape!r} is too large")
    off, nbytes = (whole(e.get(k), 0, MAX_OFFSET) for k in ("offset", "nbytes"))
    if off is None or nbytes is None:
        raise ExportError(f"{where}: offset and nbytes must be sizes")
    if nbytes != 4 * math.prod(sizes):
        raise ExportError(f"{where}: nbytes {nbytes} does not match shape {shape}")
    if off % 4 or off + nbytes > len(blob):
        raise ExportError(
            f"{where}: bytes {off}..{off + nbytes} lie outside {DATA} "
            f"({len(blob)} bytes; truncated?)"
        )
    data = blob[off : off + nbytes]
    if hashlib.sha256(data).hexdigest() != e.get("sha256"):
        raise ExportError(f"{where}: sha256 does not match its bytes (tampered?)")
    return name, np.frombuffer(data, dtype=DTYPES[dt]).reshape(sizes)


def read_export(directory: str | Path) -> Export:
    """Read and check an export by the rules of the engine's loader (``engine.c``), so
    what one accepts the other does: ``header.json`` a regular file of at most 16 MiB,
    strict JSON (no byte-order mark, no NaN, nesting at most 32 deep; a key given twice
    is refused here, where the engine would read the first), then the header's fields,
    every array's dtype, shape, size, offset (inside the data file, a regular file) and
    sha256, then the index tables' ranges."""
    from contracts.files import read_bytes

    directory = Path(directory)
    header = _header(directory / "header.json")
    blob = read_bytes(directory / DATA, MAX_DATA, ExportError)
    entries = header.get("arrays")
    _field("arrays", isinstance(entries, list), "a list")
    arrays: dict[str, np.ndarray] = {}
    for e in entries:
        name, a = _array(e, blob, arrays)
        arrays[name] = a
    _check_model(header, arrays)
    return Export(header, arrays)


def _need(arrays: dict[str, np.ndarray], name: str, dtype: str, shape: tuple[int, ...]) -> None:
    a = arrays.get(name)
    if a is None:
        raise ExportError(f"array {name!r}: missing from the export")
    if (
        a.dtype != DTYPES[dtype]
        or any(w >= 0 and w != s for w, s in zip(shape, a.shape, strict=False))
        or (a.ndim != len(shape))
    ):
        raise ExportError(f"array {name!r}: {a.dtype} {a.shape}, expected {dtype} {shape}")


def _check_model(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    m = header["model"]
    V, E, F, L = m["vocab_size"], m["emb"], m["ff"], m["layers"]
    _need(arrays, "embedding.weight", "float32", (V, E))
    dims = {}
    for name in linear_names(L):
        kind = name.rsplit(".", 1)[-1]
        inp = F if kind == "linear2" else E
        out = {"in_proj": 3 * E, "linear1": F, "decoder": V}.get(kind, E)
        pool = arrays.get(f"{name}.pool")
        if pool is None or pool.ndim != 3 or not 1 <= pool.shape[2] <= 256:
            raise ExportError(f"array '{name}.pool': missing or not (block-rows, in, block)")
        B = pool.shape[2]
        _need(arrays, f"{name}.pool", "float32", (math.ceil(out / B), inp, B))
        _need(arrays, f"{name}.bias", "float32", (math.ceil(out / B) * B,))
        dims[name] = (out, inp, B)
    dims["embedding"] = (V, E, 0)
    for i in range(L):
        for k in ("norm1", "norm2"):
            for p in ("weight", "bias"):
                _need(arrays, f"layers.{i}.{k}.{p}", "float32", (E,))
    sets = header.get("sets")
    _field(
        "sets", isinstance(sets, list) and len(sets) <= MAX_SETS, f"a list of {MAX_SETS} at most"
    )
    seen: set[str] = set()
    for s in sets:
        name = s.get("name") if isinstance(s, dict) else None
        _field("sets", isinstance(name, str) and name != "dense" and name not in seen,
               "sets with distinct names (not 'dense')")  # fmt: skip
        _field("sets", bool(SET_NAME_CHARS.match(name)),
               f"set names of 1 to 99 characters in [A-Za-z0-9._-], not {name!r}")  # fmt: skip
        seen.add(name)
        layers = s.get("layers")
        _field(f"sets.{name}.layers", isinstance(layers, dict), "an object")
        for layer, raw_b in layers.items():
            where = f"sets.{name}.layers.{layer}"
            _field(where, layer in dims, "a layer of the model")
            out, inp, pool_b = dims[layer]
            B = whole(raw_b, 1, 256)
            _field(where, B is not None and pool_b in (0, B), "the layer's block_rows")
            nbr = math.ceil(out / B)
            prefix = f"sets.{name}.{layer}"
            _need(arrays, f"{prefix}.offsets", "int32", (nbr + 1,))
            _need(arrays, f"{prefix}.cols", "int32", (-1,))
            off, cols = arrays[f"{prefix}.offsets"], arrays[f"{prefix}.cols"]
            steps = np.diff(off.astype(np.int64))
            if off[0] != 0 or off[-1] != cols.size or (steps < 0).any() or (steps > inp).any():
                raise ExportError(f"array '{prefix}.offsets': must rise from 0 to len(cols)")
            if cols.size and (cols.min() < 0 or cols.max() >= inp):
                raise ExportError(f"array '{prefix}.cols': a column index is out of range")
