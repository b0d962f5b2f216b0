"""The reconfigurable runtime: compact pattern sets, fast switching, host benchmarks.

``ReconfigurableModel`` (``lab.runtime.reconfigurable``) holds a backbone and every pattern
set in executable form (``lab.runtime.kernels``) and switches between them by swapping one
reference; ``lab.runtime.measure`` times it and ``lab.bench.runtime`` is
``rt3lab bench runtime``; ``lab.runtime.synthetic`` makes random-weight models, sets and
bundles. Names are imported lazily so that ``rt3lab --help`` does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "ReconfigurableModel": "lab.runtime.reconfigurable",
    "ReconfigurationError": "lab.runtime.reconfigurable",
    "MemoryReport": "lab.runtime.reconfigurable",
    "module_from_bundle": "lab.runtime.reconfigurable",
    "synthetic_bundle": "lab.runtime.synthetic",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lab.runtime' has no attribute {name!r}")
