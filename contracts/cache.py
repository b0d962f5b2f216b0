"""Where rt3lab caches what it can rebuild: ``$RT3LAB_CACHE``, else ``~/.cache/rt3lab``.

Every cache (trained dense models, the demo's artefacts, native builds, the zig toolchain's
cache, profiling restore journals) lives in its own folder below this root.

>>> import os
>>> os.environ["RT3LAB_CACHE"] = "/tmp/rt3"
>>> cache_root().as_posix()
'/tmp/rt3'
>>> del os.environ["RT3LAB_CACHE"]
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "RT3LAB_CACHE"


def cache_root() -> Path:
    """``$RT3LAB_CACHE`` or ``~/.cache/rt3lab``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "rt3lab"
