"""The native block-column kernel: built with the host's compiler, exact against masked dense,
guarded against bad arguments, and optional (the runtime works without it)."""

import copy
import math
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lab.runtime import kernels as K
from lab.runtime import native
from lab.runtime.pattern_set import LayerPattern, PatternSet
from lab.runtime.reconfigurable import ReconfigurableModel, ReconfigurationError
from lab.runtime.synthetic import nested_block_column_sets

TOL = {"atol": 1e-4, "rtol": 1e-4}

needs_kernel = pytest.mark.skipif(
    native.kernel() is None, reason=f"native kernel unavailable: {native.status()}"
)


def block_column_mask(rows, cols, density, g, block_rows=32):
    per = torch.rand(math.ceil(rows / block_rows), cols, generator=g) < density
    return per.repeat_interleave(block_rows, dim=0)[:rows]


@needs_kernel
@settings(max_examples=60, deadline=None)
@given(
    out=st.integers(1, 100),
    inp=st.integers(1, 40),
    densities=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=3),
    tokens=st.integers(1, 15),
    bias=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_native_forms_equal_masked_dense(out, inp, densities, tokens, bias, seed):
    """Any shapes (outputs not a multiple of 32, every tile height of the token loop), empty
    block-rows, sets not nested in each other sharing one packed weight: every set equals
    F.linear with its mask, for 2-D and 3-D inputs."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out, inp, generator=g)
    b = torch.randn(out, generator=g) if bias else None
    pats = {
        f"s{i}": LayerPattern.from_mask("l", block_column_mask(out, inp, d, g), 32, 4)
        for i, d in enumerate(densities)
    }
    pool = K.NativeBlockColumnPool(w, b, pats)
    for name, pat in pats.items():
        form = pool.form(name)
        assert form.macs_per_row >= pat.nnz
        for x in (torch.randn(tokens, inp, generator=g), torch.randn(2, tokens, inp, generator=g)):
            got = form(x)
            assert got.is_contiguous()
            assert torch.allclose(got, torch.nn.functional.linear(x, w * pat.mask(), b), **TOL)


@needs_kernel
def test_nested_sets_share_the_packed_weights_and_pay_only_their_indices():
    g = torch.Generator().manual_seed(1)
    layer = nn.Linear(64, 96)
    sets = nested_block_column_sets({"fc": layer}, {"bp": 0.6, "p30": 0.3}, 32, 8, seed=2)
    pool = K.NativeBlockColumnPool(layer.weight, layer.bias, {s.name: s.layers["fc"] for s in sets})
    forms = {s.name: pool.form(s.name) for s in sets}
    assert all(pool.serves(f) for f in forms.values())
    assert pool.w.shape[0] == int(sets[0].layers["fc"].kept_counts().sum())  # BP's union
    for s in sets:  # nested: every set's columns are a prefix, nothing read is zero
        assert not forms[s.name].zero_column
        assert forms[s.name].macs_per_row == s.layers["fc"].nnz
        assert forms[s.name].nbytes < pool.nbytes / 4
    x = torch.randn(5, 64, generator=g)
    want = torch.nn.functional.linear(x, layer.weight * sets[1].layers["fc"].mask(), layer.bias)
    assert torch.allclose(forms["p30"](x), want, **TOL)


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


@needs_kernel
def test_native_executor_runs_every_set_exactly_and_switches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 64), nn.ReLU(), nn.Linear(64, 32)).eval()
    layers = {"0": model[0], "2": model[2]}
    sets = nested_block_column_sets(layers, {"bp": 0.7, "p40": 0.4, "p10": 0.1}, 32, 8, seed=3)
    refs = {}
    for s in sets:
        refs[s.name] = copy.deepcopy(model)
        with torch.no_grad():
            for name, pat in s.layers.items():
                dict(refs[s.name].named_modules())[name].weight.mul_(pat.mask())
    rm = ReconfigurableModel(model, sets, executor="native")
    assert {k for forms in rm.executors().values() for k in forms.values()} == {"native"}
    mem = rm.memory()
    assert mem.sets_total_bytes < mem.pruned_dense_bytes
    x = torch.randn(4, 40)
    for s in [*sets, sets[0]]:
        rm.switch(s.name)
        assert torch.allclose(rm(x), refs[s.name](x), **TOL)


@needs_kernel
def test_native_executor_names_a_block_height_it_cannot_run():
    layer = nn.Linear(16, 32)
    mask = block_column_mask(32, 16, 0.5, torch.Generator().manual_seed(0), block_rows=16)
    ps = PatternSet("s", {"fc": LayerPattern.from_mask("fc", mask, 16, 4)})
    model = nn.Sequential()
    model.add_module("fc", layer)
    with pytest.raises(ReconfigurationError, match="blocks of 32 rows, not 16"):
        ReconfigurableModel(model, [ps], executor="native")


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
        assert "native" not in rm.executors()["s"].values()
        assert torch.allclose(rm(torch.ones(2, 24)), want, **TOL)
        with pytest.raises(ReconfigurationError, match="RT3LAB_NATIVE=0"):
            ReconfigurableModel(model(), [ps], executor="native")
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


@needs_kernel
def test_float64_weights_are_refused_by_name():
    layer = nn.Linear(8, 32).double()
    mask = block_column_mask(32, 8, 0.5, torch.Generator().manual_seed(0))
    ps = PatternSet("s", {"fc": LayerPattern.from_mask("fc", mask, 32, 4)})
    model = nn.Sequential()
    model.add_module("fc", layer)
    with pytest.raises(ReconfigurationError, match=r"float32 weights, not torch\.float64"):
        ReconfigurableModel(model, [ps], executor="native")


@needs_kernel
def test_a_native_form_names_a_wrong_input_width_and_keeps_few_workspaces():
    g = torch.Generator().manual_seed(5)
    w = torch.randn(64, 20, generator=g)
    pats = {
        n: LayerPattern.from_mask("l", block_column_mask(64, 20, d, g), 32, 4)
        for n, d in (("a", 0.7), ("b", 0.4))
    }
    form = next(
        f for f in (K.NativeBlockColumnPool(w, None, pats).form(n) for n in pats) if f.zero_column
    )
    with pytest.raises(ValueError, match="input has 21 features, expected 20"):
        form(torch.randn(3, 21))
    for tokens in range(1, 20):  # many token counts: workspaces stay bounded
        x = torch.randn(tokens, 20, generator=g)
        assert form(x).shape == (tokens, 64)
    assert len(form._staging) <= 8
