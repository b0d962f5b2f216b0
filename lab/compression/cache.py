"""The trained-dense-model cache: safetensors keyed by data, model config, budget, seed and
the training code.

Lives in ``$RT3LAB_CACHE`` (default ``~/.cache/rt3lab``) under ``dense/``; a second
``rt3lab compress`` on the same data and settings skips dense training.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts.cache import cache_root

if TYPE_CHECKING:
    import torch


def tokens_fingerprint(*streams: torch.Tensor) -> str:
    """SHA-256 of the token streams' bytes (identifies the corpus split exactly)."""
    h = hashlib.sha256()
    for s in streams:
        h.update(str(tuple(s.shape)).encode())
        h.update(s.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def source_fingerprint(paths: list[Path]) -> str:
    """A hash of source files (``.py``, ``.yaml``, ``.c``) by name and content: the files themselves
    and, for directories, every such file under them. Cached artefacts carry it in their
    key so that changed code never reuses what old code made.

    >>> import lab.model.training
    >>> len(source_fingerprint([Path(lab.model.training.__file__)]))
    16
    """
    h = hashlib.sha256()
    for path in paths:
        if path.is_dir():
            files = sorted(
                f for f in path.rglob("*") if f.suffix in (".py", ".yaml", ".c") and f.is_file()
            )
        else:
            files = [path]
        for f in files:
            name = f.relative_to(path).as_posix() if path.is_dir() else ""
            h.update(f"{path.name}/{name}\0".encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def dense_training_sources() -> list[Path]:
    """The code a trained dense model depends on (its data and settings are keyed apart)."""
    import lab.compression.tasks
    import lab.model
    import lab.model.training

    return [
        Path(lab.model.training.__file__),
        Path(lab.compression.tasks.__file__),
        Path(lab.model.__file__).parent,
    ]


def cache_key(spec: dict[str, Any]) -> str:
    """Stable key of a JSON-able spec.

    >>> cache_key({"a": 1, "b": [2]}) == cache_key({"b": [2], "a": 1})
    True
    """
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]


def load_dense(key: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The cached state dict and its record, or None (a damaged entry counts as a miss)."""
    from safetensors.torch import load_file

    base = cache_root() / "dense"
    weights, record = base / f"{key}.safetensors", base / f"{key}.json"
    if not (weights.is_file() and record.is_file()):
        return None
    try:
        return load_file(str(weights)), json.loads(record.read_text())
    except Exception:
        return None


def save_dense(key: str, state: dict[str, torch.Tensor], record: dict[str, Any]) -> Path:
    """Store a trained state dict (written to a temporary name, then renamed)."""
    from safetensors.torch import save_file

    base = cache_root() / "dense"
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f"{key}.safetensors.tmp"
    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(tmp))
    os.replace(tmp, base / f"{key}.safetensors")
    (base / f"{key}.json").write_text(json.dumps(record, indent=2))
    return base / f"{key}.safetensors"
