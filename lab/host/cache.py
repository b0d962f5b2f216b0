"""What the cache holds and how to empty it: ``rt3lab cache info`` and ``rt3lab cache clear``.

Everything below ``contracts.cache.cache_root()`` can be rebuilt: built corpora, trained
dense models, the demo's artefacts, compiled engines and the zig toolchain's cache. The one
exception is ``profiling/``: a restore journal there is how ``rt3lab profile restore`` puts
a board's frequency settings back after a killed run, so ``clear`` keeps it unless asked.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from contracts.cache import cache_root

# Each part of the cache: its folder (or file glob) below the root, and what it holds.
PARTS: dict[str, tuple[str, str]] = {
    "corpus": ("*-*.json|*-*.npz", "built corpora (token arrays and vocabularies)"),
    "dense": ("dense", "trained dense models (rt3lab compress)"),
    "demo": ("demo", "the demo's bundles, benches and profiles, per code fingerprint"),
    "native": ("native", "compiled C engines and kernels, with their digests"),
    "zig": ("zig", "the zig cross-compiler's cache (rt3lab runner build)"),
    "profiling": ("profiling", "restore journals of interrupted profiling runs"),
}
KEPT_BY_DEFAULT = ("profiling",)


class CacheInputError(ValueError):
    """A cache part that does not exist."""


@dataclass(frozen=True)
class CachePart:
    """One part of the cache: its name, what it holds, its size and file count."""

    name: str
    holds: str
    files: int
    bytes: int


@dataclass(frozen=True)
class CacheInfo:
    """The cache root and its parts (``rt3lab cache info --json``)."""

    root: str
    parts: list[CachePart]

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready form."""
        return {"root": self.root, "parts": [asdict(p) for p in self.parts]}


def _paths(root: Path, part: str) -> list[Path]:
    where, _ = PARTS[part]
    if "*" in where:
        return sorted(p for pattern in where.split("|") for p in root.glob(pattern))
    path = root / where
    return [path] if path.exists() or path.is_symlink() else []


def _size(paths: list[Path]) -> tuple[int, int]:
    files = size = 0
    for path in paths:
        items = [path] if not path.is_dir() or path.is_symlink() else list(path.rglob("*"))
        for item in items:
            if item.is_file() and not item.is_symlink():
                files += 1
                size += item.stat().st_size
    return files, size


def cache_info(root: Path | None = None) -> CacheInfo:
    """Size and file count of each part of the cache at ``root`` (default: the cache root)."""
    root = cache_root() if root is None else root
    parts = [CachePart(name, PARTS[name][1], *_size(_paths(root, name))) for name in PARTS]
    return CacheInfo(str(root), parts)


def clear_cache(
    parts: list[str] | None = None, root: Path | None = None, journals: bool = False
) -> list[str]:
    """Delete the named parts (default: every part but the profiling journals, which go only
    with ``journals``); return what was deleted, as paths. Links are removed, never followed.
    """
    root = cache_root() if root is None else root
    for name in parts or []:
        if name not in PARTS:
            raise CacheInputError(f"cache part {name!r}: expected one of {', '.join(PARTS)}")
    chosen = parts or [p for p in PARTS if journals or p not in KEPT_BY_DEFAULT]
    removed = []
    for name in chosen:
        for path in _paths(root, name):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(str(path))
    return removed
