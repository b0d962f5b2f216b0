"""The anchors of ``rt3lab bench runtime``: each runs the same sets another way and equals
masked dense; the registry takes a new anchor from outside; the per-layer C kernel's forms
(the ``native-per-layer`` anchor) are exact and name what they cannot run."""

import copy
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lab.bench import anchors as A
from lab.bench import layer_forms as L
from lab.runtime import native
from lab.runtime.measure import make_inputs
from lab.runtime.pattern_set import LayerPattern
from lab.runtime.reconfigurable import ReconfigurableModel
from lab.runtime.synthetic import nested_block_column_sets

TOL = {"atol": 1e-4, "rtol": 1e-4}

needs_kernel = pytest.mark.skipif(
    native.kernel() is None, reason=f"native kernel unavailable: {native.status()}"
)


def block_column_mask(rows, cols, density, g, block_rows=32):
    per = torch.rand(math.ceil(rows / block_rows), cols, generator=g) < density
    return per.repeat_interleave(block_rows, dim=0)[:rows]


class Net(nn.Module):
    """An embedding, two Linear layers (one a multiple of the block, one not), a decoder."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(40, 32)
        self.up = nn.Linear(32, 64)
        self.down = nn.Linear(64, 32)
        self.decoder = nn.Linear(32, 40)

    def forward(self, tokens):
        h = self.emb(tokens)
        return self.decoder(h + self.down(torch.relu(self.up(h))))


def masked(model, ps):
    ref = copy.deepcopy(model).eval()
    mods = dict(ref.named_modules())
    with torch.no_grad():
        for layer, pat in ps.layers.items():
            mods[layer].weight.mul_(pat.mask())
    return ref


@pytest.fixture
def subject():
    torch.manual_seed(0)
    base = Net().eval()
    layers = {n: dict(base.named_modules())[n] for n in ("up", "down", "decoder")}
    sets = nested_block_column_sets(layers, {"bp": 0.7, "p30": 0.3}, 32, 8, seed=1)
    inputs = make_inputs(base, 2, 9)
    rm = ReconfigurableModel(copy.deepcopy(base), sets)
    return A.Subject(base, sets, inputs, rm, threads=1)


def _logits(call):
    with torch.no_grad():
        return call()


@pytest.mark.parametrize("name", ["mask-per-call", "bsr", "premasked"])
def test_set_anchors_run_the_set_exactly(subject, name):
    tokens = subject.inputs["args"][0]
    for ps in subject.sets:
        got = _logits(A.ANCHORS[name].per_set(subject, ps))
        assert torch.allclose(got, masked(subject.base, ps)(tokens), **TOL), (name, ps.name)
    assert torch.count_nonzero(subject.base.up.weight) == 64 * 32  # the base is untouched


def test_model_anchors_run_dense_and_every_set_exactly():
    """On RT3's LM, whose runtime is the engine where it builds: the torch reference and the
    per-layer C kernel (where it builds) run dense and every set as masked dense does."""
    from lab.model.transformer import RT3TransformerLM
    from lab.runtime.synthetic import prunable

    torch.manual_seed(0)
    base = RT3TransformerLM(vocab_size=70, emb=32, ff=40, layers=1, heads=2).eval()
    sets = nested_block_column_sets(prunable(base, "rt3"), {"bp": 0.7, "p30": 0.3}, 32, 8)
    inputs = make_inputs(base, 1, 9)
    subject = A.Subject(base, sets, inputs, ReconfigurableModel(copy.deepcopy(base), sets), 1)
    tokens = inputs["args"][0]
    want = {ps.name: masked(base, ps)(tokens) for ps in sets}
    names = [n for n in ("torch", "native-per-layer") if n != "torch" or subject.runtime.engine]
    if native.kernel() is None:
        names.remove("native-per-layer")
    for name in names:
        runs = A.ANCHORS[name].model(subject)
        assert set(runs.sets) == set(want)
        for set_name, (setup, call) in runs.sets.items():
            setup()
            assert torch.allclose(_logits(call), want[set_name], **TOL), (name, set_name)
        setup, call = runs.dense
        setup()
        assert torch.allclose(_logits(call), base(tokens), **TOL), name


def test_anchors_that_cannot_run_say_why(subject):
    with pytest.raises(A.AnchorSkipped, match="the runtime runs the torch reference"):
        A.ANCHORS["torch"].model(subject)  # Net is no RT3 LM: the runtime is the reference
    with pytest.raises(A.AnchorSkipped, match="not asked for"):
        A.ANCHORS["executorch"].model(subject)


def test_a_new_anchor_is_one_function_and_one_registration(subject, monkeypatch):
    """What lab/runtime/README.md's "How to add an anchor" describes, from outside."""
    monkeypatch.setattr(A, "ANCHORS", dict(A.ANCHORS))

    def doubled(subj, ps):  # a toy: the set through the torch reference, twice per call
        rm = subj.torch_reference()
        return lambda: (rm.switch(ps.name), rm(*subj.inputs["args"]), rm(*subj.inputs["args"]))

    A.register(A.Anchor("twice", "the set run twice", per_set=doubled))
    assert "twice" in A.ANCHORS
    with pytest.raises(ValueError, match="registered already"):
        A.register(A.Anchor("twice", "again", per_set=doubled))
    with pytest.raises(ValueError, match="exactly one of model and per_set"):
        A.register(A.Anchor("neither", "nothing"))


def test_switch_anchors_really_rewrite_the_weights():
    torch.manual_seed(0)
    lin = torch.nn.Sequential(torch.nn.Linear(64, 64))
    sets = nested_block_column_sets({"0": lin[0]}, {"a": 0.5, "b": 0.25}, 16, 16)
    got = A.switch_anchors(lin, sets, reps=3)
    assert set(got) == {"mask-reapply", "load_state_dict"}
    assert all(t.median_ms > 0 for t in got.values())
    assert torch.count_nonzero(lin[0].weight) == 64 * 64  # the original is untouched


def test_instant_forms_answer_zeros_of_the_right_shape():
    forms = L.instant_forms({"fc": nn.Linear(5, 7)})
    y = forms["fc"](torch.randn(2, 3, 5))
    assert y.shape == (2, 3, 7) and not y.any()


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
    pool = L.NativeBlockColumnPool(w, b, pats)
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
    pool = L.NativeBlockColumnPool(layer.weight, layer.bias, {s.name: s.layers["fc"] for s in sets})
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
def test_the_native_pool_names_what_it_cannot_run():
    g = torch.Generator().manual_seed(0)
    mask = block_column_mask(32, 8, 0.5, g)
    pats = {"s": LayerPattern.from_mask("fc", mask, 32, 4)}
    with pytest.raises(ValueError, match=r"float32 weights, not torch\.float64"):
        L.NativeBlockColumnPool(torch.randn(32, 8, dtype=torch.float64), None, pats)
    short = {"s": LayerPattern.from_mask("fc", block_column_mask(32, 8, 0.5, g, 16), 16, 4)}
    with pytest.raises(ValueError, match="blocks of 32 rows, not 16"):
        L.NativeBlockColumnPool(torch.randn(32, 8), None, short)


@needs_kernel
def test_a_native_form_names_a_wrong_input_width_and_keeps_few_workspaces():
    g = torch.Generator().manual_seed(5)
    w = torch.randn(64, 20, generator=g)
    pats = {
        n: LayerPattern.from_mask("l", block_column_mask(64, 20, d, g), 32, 4)
        for n, d in (("a", 0.7), ("b", 0.4))
    }
    form = next(
        f for f in (L.NativeBlockColumnPool(w, None, pats).form(n) for n in pats) if f.zero_column
    )
    with pytest.raises(ValueError, match="input has 21 features, expected 20"):
        form(torch.randn(3, 21))
    for tokens in range(1, 20):  # many token counts: workspaces stay bounded
        x = torch.randn(tokens, 20, generator=g)
        assert form(x).shape == (tokens, 64)
    assert len(form._staging) <= 8
