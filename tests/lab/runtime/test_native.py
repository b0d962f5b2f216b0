"""The native block-column kernel: built with the host's compiler, guarded against bad
arguments, and optional (the runtime works without it). Its per-layer forms are a bench
anchor: tests/lab/bench/test_anchors.py."""

import copy
import math
import os

import pytest
import torch
from torch import nn

from lab.runtime import native
from lab.runtime.pattern_set import LayerPattern, PatternSet
from lab.runtime.reconfigurable import ReconfigurableModel

TOL = {"atol": 1e-4, "rtol": 1e-4}

needs_kernel = pytest.mark.skipif(
    native.kernel() is None, reason=f"native kernel unavailable: {native.status()}"
)


def block_column_mask(rows, cols, density, g, block_rows=32):
    per = torch.rand(math.ceil(rows / block_rows), cols, generator=g) < density
    return per.repeat_interleave(block_rows, dim=0)[:rows]


@needs_kernel
def test_bad_arguments_raise_instead_of_reaching_the_c_code():
    from lab.runtime.native import NativeKernelError, Packed

    kern = native.kernel()
    w = torch.randn(4, 32)
    start, end = torch.tensor([0, 2]), torch.tensor([2, 4])
    cols = torch.tensor([0, 1, 2, 3], dtype=torch.int32)
    packed = Packed(start, end, cols, w, None)
    with pytest.raises(NativeKernelError, match="4 wide"):
        kern.forward(torch.randn(3, 3), packed, torch.empty(3, 64))  # cols reach column 3
    with pytest.raises(NativeKernelError, match="64 wide"):
        kern.forward(torch.randn(3, 4), packed, torch.empty(3, 32))
    with pytest.raises(NativeKernelError, match="float32"):
        kern.forward(torch.randn(3, 4, dtype=torch.float64), packed, torch.empty(3, 64))
    with pytest.raises(NativeKernelError, match="contiguous"):
        kern.forward(torch.randn(4, 3).t(), packed, torch.empty(3, 64))
    with pytest.raises(NativeKernelError, match="inconsistent packing"):
        Packed(start, torch.tensor([2, 5]), cols, w, None)  # beyond w
    with pytest.raises(NativeKernelError, match="inconsistent packing"):
        Packed(start, end, cols.long(), w, None)  # int64 columns
    with pytest.raises(NativeKernelError, match="inconsistent packing"):
        Packed(start, end, cols, torch.randn(4, 16), None)  # not 32 wide
    y = torch.empty(3, 64)
    kern.forward(torch.ones(3, 4), packed, y)
    assert torch.allclose(y[:, :32], w[:2].sum(0).expand(3, 32))


def test_without_the_kernel_the_runtime_runs_its_torch_forms(monkeypatch):
    """RT3LAB_NATIVE=0 (or no compiler) leaves the kernel out and says why; auto still runs."""
    native._load.cache_clear()
    try:
        monkeypatch.setenv("RT3LAB_NATIVE", "0")
        assert native.kernel() is None
        assert native.status() == "disabled by RT3LAB_NATIVE=0"
        layer = nn.Linear(24, 64)
        mask = block_column_mask(64, 24, 0.4, torch.Generator().manual_seed(0))
        ps = PatternSet("s", {"fc": LayerPattern.from_mask("fc", mask, 32, 4)})

        def model():
            m = nn.Sequential()
            m.add_module("fc", copy.deepcopy(layer))
            return m

        want = torch.nn.functional.linear(torch.ones(2, 24), layer.weight * mask, layer.bias)
        rm = ReconfigurableModel(model(), [ps], executor="auto", active="s")
        assert torch.allclose(rm(torch.ones(2, 24)), want, **TOL)
        native._load.cache_clear()
        monkeypatch.setenv("RT3LAB_NATIVE", "1")
        monkeypatch.setenv("CC", "/nonexistent/cc")
        assert native.kernel() is None
        assert "no C compiler" in native.status()
    finally:
        native._load.cache_clear()


def test_the_build_is_cached_by_source_compiler_and_flags(tmp_path, monkeypatch):
    """A second load reuses the built library; a changed source builds a new one."""
    if native._compiler() is None:
        pytest.skip("no C compiler")
    monkeypatch.setenv("RT3LAB_CACHE", str(tmp_path))
    cc = native._compiler()
    first = native._build(cc, openmp=False)
    assert first.parent == tmp_path / "native" and first.is_file()
    stamp = first.stat().st_mtime_ns
    assert native._build(cc, openmp=False) == first and first.stat().st_mtime_ns == stamp
    changed = tmp_path / "block_column.c"
    changed.write_text(native.SOURCE.read_text() + "\n/* changed */\n")
    monkeypatch.setattr(native, "SOURCE", changed)
    assert native._build(cc, openmp=False) != first


def test_the_kernel_builds_wherever_there_is_a_compiler():
    """The tests above skip without the kernel; where a compiler exists (CI), a kernel that
    does not build is a failure, not a skip."""
    if native._compiler() is None or os.environ.get("RT3LAB_NATIVE") == "0":
        pytest.skip(native.status())
    assert native.kernel() is not None, native.status()
    assert native.kernel().path.is_file()
