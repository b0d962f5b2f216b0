"""The on-disk cache of built corpora: JSON header + ``.npz`` token arrays, never pickle.

An entry is ``<name>-<key>.json`` (build parameters, vocabulary, metadata and a SHA-256 of
the arrays) beside ``<name>-<key>.npz`` (int32 ``train``/``valid``/``test``), where ``key``
hashes the parameters. Anything that fails to load or verify is treated as a miss and
rebuilt; writes are atomic (temporary file + rename), and a read-only cache directory only
costs a rebuild next time.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contracts.cache import cache_root
from lab.model.data.corpus import CorpusError, LMCorpus, Vocab

SPLITS = ("train", "valid", "test")
Built = tuple[dict[str, Any], Vocab, dict[str, Any]]


def cache_key(params: dict[str, Any]) -> str:
    """A short hash of JSON-serialisable build parameters.

    >>> cache_key({"a": 1}) == cache_key({"a": 1}) != cache_key({"a": 2})
    True
    """
    blob = json.dumps(params, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def digest(arrays: dict[str, Any]) -> str:
    """SHA-256 over the three splits' bytes."""
    h = hashlib.sha256()
    for name in SPLITS:
        h.update(name.encode())
        h.update(arrays[name].tobytes())
    return h.hexdigest()


def _corpus(arrays: dict[str, Any], vocab: Vocab, name: str, meta: dict[str, Any]) -> LMCorpus:
    import numpy as np
    import torch

    tensors = {s: torch.from_numpy(arrays[s].astype(np.int64)) for s in SPLITS}
    return LMCorpus(**tensors, vocab=vocab, name=name, meta=meta)


def read_cached(
    json_path: Path, npz_path: Path, params: dict[str, Any], name: str
) -> LMCorpus | None:
    """The cached corpus, or None when missing, of other parameters, corrupt or inconsistent."""
    import numpy as np

    try:
        header = json.loads(json_path.read_text(encoding="utf-8"))
        if header.get("params") != params:
            return None
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {s: npz[s] for s in SPLITS}
        if header.get("sha256") != digest(arrays):
            return None
        vocab = Vocab(tuple(header["vocab"]))
        if any(a.size and (a.min() < 0 or a.max() >= len(vocab)) for a in arrays.values()):
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, CorpusError):
        return None
    meta = dict(header.get("meta", {}), cache=str(npz_path), cached=True)
    return _corpus(arrays, vocab, name, meta)


def _save_npz(path: Path, arrays: dict[str, Any]) -> None:
    import numpy as np

    # A file object, not a name: np.savez would append ".npz" to the temporary name.
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _write_atomic(path: Path, write: Callable[[Path], Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def entry_paths(name: str, params: dict[str, Any], cache: Path | str | None) -> tuple[Path, Path]:
    """The (JSON, npz) paths of the entry for ``name`` built with ``params``."""
    directory = Path(cache) if cache is not None else cache_root()
    stem = f"{name}-{cache_key(params)}"
    return directory / f"{stem}.json", directory / f"{stem}.npz"


def cached_corpus(
    name: str,
    params: dict[str, Any],
    build: Callable[[], Built],
    cache: Path | str | None = None,
    use_cache: bool = True,
) -> LMCorpus:
    """Load the entry for ``params``, or ``build()`` it, store it and return it."""
    json_path, npz_path = entry_paths(name, params, cache)
    if use_cache:
        hit = read_cached(json_path, npz_path, params, name)
        if hit is not None:
            return hit
    arrays, vocab, meta = build()
    if use_cache:
        try:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(npz_path, lambda p: _save_npz(p, arrays))
            header = {"params": params, "vocab": list(vocab.itos), "meta": meta}
            header["sha256"] = digest(arrays)
            _write_atomic(json_path, lambda p: p.write_text(json.dumps(header), encoding="utf-8"))
        except OSError:
            pass  # a read-only cache must not stop the lab; the corpus is rebuilt next time
    return _corpus(arrays, vocab, name, dict(meta, cached=False))
