"""RT3's scheme: BP, pattern pruning and the search of pattern sets
(:func:`lab.compression.pipeline.compress`, unchanged)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from device_profiles import DeviceProfile
    from lab.compression.options import CompressOptions, Reporter
    from lab.compression.tasks import LMData, Task


def build(
    task: LMData | Task,
    profile: DeviceProfile,
    opts: CompressOptions,
    reporter: Reporter | None = None,
) -> Path:
    """RT3's bundle: :func:`lab.compression.pipeline.compress`."""
    from lab.compression.pipeline import compress

    return compress(task, profile, opts, reporter)
