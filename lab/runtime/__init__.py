"""The runtime: the native engine, its torch reference, pattern sets, bundles and exports.

``ReconfigurableModel`` (``lab.runtime.reconfigurable``) holds a backbone and every pattern
set ready to run and switches between them by swapping one reference: the whole model on
the native engine (``lab.runtime.engine``), or, where the engine cannot run the model, the
torch reference's per-layer forms (``lab.runtime.kernels``). ``lab.runtime.measure`` holds
the timing primitives the benches use (``lab.bench.runtime`` is ``rt3lab bench runtime``,
with its anchors in ``lab.bench.anchors``); ``lab.runtime.synthetic`` makes random-weight
models, sets and bundles. Names are imported lazily so that ``rt3lab --help`` does not
import torch. See ``lab/runtime/README.md``.
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
