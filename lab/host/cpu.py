"""What identifies the machine a measurement was taken on."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


# the vector extensions a -march=native build of the engine can use, as /proc/cpuinfo names
# them (x86 "flags", Arm "Features")
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "asimd", "sve", "neon")


def simd_flags() -> list[str]:
    """Which of :data:`SIMD_FLAGS` this CPU has (empty where ``/proc/cpuinfo`` is not
    readable): the same source runs at very different speeds with and without AVX-512."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                have = set(line.split(":", 1)[1].split())
                return [f for f in SIMD_FLAGS if f in have]
    except OSError:
        pass
    return []
