"""The native block-column kernel (``block_column.c``): built on first use, loaded by ctypes.

It is compiled with the host's C compiler (``$CC``, else ``cc``) at ``-O3 -march=native``,
with OpenMP where the compiler has it, into ``$RT3LAB_CACHE/native/`` under a name that
hashes the source, the compiler's version, the flags and the CPU (model and instruction
sets), so a changed kernel, compiler or machine rebuilds; the cache directory is 0700 and the
library is checked against the SHA-256 recorded at build time before it is loaded
(``lab.runtime.native_cache``). Without a compiler (or with
``RT3LAB_NATIVE=0``) ``kernel()`` returns None and says why in ``status()``. The runtime
runs the whole model on the engine (``lab.runtime.engine``); this per-layer kernel is the
``native-per-layer`` anchor of ``rt3lab bench runtime`` (``lab.bench.layer_forms``), and its
compiler look-up and build cache are shared with the engine and the runner.

The C side trusts its arguments, so ``forward`` checks every shape, dtype and layout first.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lab.runtime import native_cache

SOURCE = Path(__file__).with_name("block_column.c")
BLOCK_ROWS = 32  # the kernel's block height (RT3's)
BASE_FLAGS = ("-O3", "-march=native", "-ffp-contract=fast", "-shared", "-fPIC")
ABI = 1


class NativeKernelError(RuntimeError):
    """The native kernel was called with arguments it cannot take (names which)."""


@dataclass(frozen=True)
class Packed:
    """What one pattern set runs on: block-row ``b`` multiplies ``w[start[b]:end[b]]``
    (``(m, 32)`` float32, shareable between sets) with input columns ``cols[start[b]:end[b]]``
    (int32, the set's own); ``bias`` has 32 floats per block-row or is None. Checked once
    here, so that a call only checks its input and output."""

    start: torch.Tensor
    end: torch.Tensor
    cols: torch.Tensor
    w: torch.Tensor
    bias: torch.Tensor | None
    min_width: int = field(init=False)  # the input width cols need (max(cols) + 1)

    def __post_init__(self) -> None:
        n = self.start.numel()
        ok = (
            self.start.dtype == self.end.dtype == torch.int64
            and self.end.numel() == n
            and self.cols.dtype == torch.int32
            and self.w.dtype == torch.float32
            and self.w.dim() == 2
            and self.w.shape[1] == BLOCK_ROWS
            and all(t.is_contiguous() for t in (self.start, self.end, self.cols, self.w))
            and (
                self.bias is None
                or (
                    self.bias.dtype == torch.float32
                    and self.bias.is_contiguous()
                    and self.bias.numel() >= BLOCK_ROWS * n
                )
            )
        )
        if ok and n:
            ok = bool((self.start >= 0).all() and (self.end >= self.start).all())
            ok = ok and int(self.end.max()) <= min(self.w.shape[0], self.cols.numel())
            ok = ok and (self.cols.numel() == 0 or int(self.cols.min()) >= 0)
        if not ok:
            raise NativeKernelError(
                "native block-column kernel: inconsistent packing (int64 start/end within an "
                "int32 cols and a float32 (m, 32) w, float32 bias of 32 per block-row)"
            )
        width = int(self.cols.max()) + 1 if self.cols.numel() else 0
        object.__setattr__(self, "min_width", width)

    @property
    def n_block_rows(self) -> int:
        return self.start.numel()


@dataclass(frozen=True)
class NativeKernel:
    """The loaded library and how it was built."""

    path: Path
    openmp: bool
    _fn: ctypes._CFuncPtr  # type: ignore[name-defined]

    def forward(self, x: torch.Tensor, packed: Packed, out: torch.Tensor) -> None:
        """``out[t, 32 b + i] = bias[32 b + i] + sum_j x[t, cols[j]] w[j, i]`` over ``j`` in
        ``start[b]:end[b]``; ``x`` ``(T, >= max(cols) + 1)`` and ``out`` ``(T, >= 32 n)``,
        both float32 and contiguous."""
        n = packed.n_block_rows
        if not (
            x.dtype == out.dtype == torch.float32
            and x.dim() == out.dim() == 2
            and x.is_contiguous()
            and out.is_contiguous()
            and out.shape[0] == x.shape[0]
            and out.shape[1] >= BLOCK_ROWS * n
            and x.shape[1] >= packed.min_width
        ):
            raise NativeKernelError(
                f"native block-column kernel: x {tuple(x.shape)} {x.dtype} and out "
                f"{tuple(out.shape)} {out.dtype} must be contiguous float32, x at least "
                f"{packed.min_width} wide, out at least {BLOCK_ROWS * n} wide, same rows"
            )
        if x.shape[0] == 0 or n == 0:
            return
        self._fn(
            x.data_ptr(),
            x.shape[0],
            x.shape[1],
            packed.start.data_ptr(),
            packed.end.data_ptr(),
            packed.cols.data_ptr(),
            packed.w.data_ptr(),
            None if packed.bias is None else packed.bias.data_ptr(),
            out.data_ptr(),
            out.shape[1],
            n,
            torch.get_num_threads() if self.openmp else 1,
        )


def _compiler() -> str | None:
    cc = os.environ.get("CC") or "cc"
    return shutil.which(cc)


def _flags(openmp: bool) -> list[str]:
    return [*BASE_FLAGS, *(["-fopenmp"] if openmp else [])]


def _build(cc: str, openmp: bool) -> Path:
    """The cached library for this compiler and OpenMP choice, built unless a verified one
    is there (see `lab.runtime.native_cache`)."""
    return native_cache.build(SOURCE, "block_column", cc, _flags(openmp))[0]


def kernel() -> NativeKernel | None:
    """The native kernel, built and loaded once per process; None when unavailable."""
    return _load()[0]


def status() -> str:
    """Whether the native kernel is in use, and if not why."""
    return _load()[1]


@functools.cache
def _load() -> tuple[NativeKernel | None, str]:
    if os.environ.get("RT3LAB_NATIVE", "1") == "0":
        return None, "disabled by RT3LAB_NATIVE=0"
    cc = _compiler()
    if cc is None:
        return None, "no C compiler (set CC or install cc)"
    errors = []
    for openmp in (True, False):
        try:
            lib, path, note = native_cache.load(SOURCE, "block_column", cc, _flags(openmp))
        except (OSError, subprocess.SubprocessError) as exc:
            errors.append(f"{'with' if openmp else 'without'} OpenMP: {exc}")
            continue
        if lib.rt3lab_block_column_abi() != ABI:
            errors.append(f"{path.name}: ABI mismatch")
            continue
        fn = lib.rt3lab_block_column_forward
        fn.restype = None
        i64, ptr = ctypes.c_int64, ctypes.c_void_p
        fn.argtypes = [ptr, i64, i64, ptr, ptr, ptr, ptr, ptr, ptr, i64, i64, i64]
        done = f"built with {Path(cc).name}{' and OpenMP' if openmp else ''}: {path}"
        if note:  # a library that could not be trusted was rebuilt: say so, once
            print(f"rt3lab: native kernel: {note}", file=sys.stderr)
            done += f" ({note})"
        return NativeKernel(path, openmp, fn), done
    return None, "build failed: " + "; ".join(errors)
