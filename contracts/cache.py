"""Where rt3lab caches what it can rebuild: ``$RT3LAB_CACHE``, else ``~/.cache/rt3lab``.

Every cache (trained dense models, the demo's artefacts, native builds, the zig toolchain's
cache, profiling restore journals) lives in its own folder below this root.

>>> import os
>>> before = os.environ.get("RT3LAB_CACHE")
>>> os.environ["RT3LAB_CACHE"] = "/tmp/rt3"
>>> cache_root().as_posix()
'/tmp/rt3'
>>> _ = os.environ.pop("RT3LAB_CACHE") if before is None else os.environ.update(RT3LAB_CACHE=before)
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "RT3LAB_CACHE"


def cache_root() -> Path:
    """``$RT3LAB_CACHE`` or ``~/.cache/rt3lab``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "rt3lab"
