"""Every set's output equals the dense model with that set's masks applied."""

import copy
import itertools
import math
import threading

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lab.runtime import kernels as K
from lab.runtime.bundle import Bundle, BundleError
from lab.runtime.kernels import BlockColumnLinear, BlockColumnPool
from lab.runtime.pattern_set import LayerPattern, PatternSet
from lab.runtime.reconfigurable import ReconfigurableModel, ReconfigurationError
from lab.runtime.synthetic import nested_block_column_sets, synthetic_bundle

TOL = {"atol": 1e-4, "rtol": 1e-4}


def masked_reference(module, ps):
    """A deep copy of ``module`` with the set's masks multiplied into the weights."""
    ref = copy.deepcopy(module).eval()
    mods = dict(ref.named_modules())
    with torch.no_grad():
        for layer, pat in ps.layers.items():
            mods[layer].weight.mul_(pat.mask())
    return ref


def block_column_mask(rows, cols, block_rows, density, g):
    per = torch.rand(math.ceil(rows / block_rows), cols, generator=g) < density
    return per.repeat_interleave(block_rows, dim=0)[:rows]


@settings(max_examples=40, deadline=None)
@given(
    out=st.integers(1, 70),
    inp=st.integers(1, 50),
    block_rows=st.sampled_from([1, 3, 8, 16, 32]),
    densities=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=3),
    tokens=st.integers(1, 9),
    bias=st.booleans(),
    seed=st.integers(0, 10_000),
    layout=st.sampled_from(["segments", "views"]),
)
def test_pooled_linear_equals_masked_dense(
    out, inp, block_rows, densities, tokens, bias, seed, layout
):
    """Any shapes (non-multiples of the block too), ragged and empty block-rows, non-nested
    sets sharing one pool: every set equals F.linear with its mask."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out, inp, generator=g)
    b = torch.randn(out, generator=g) if bias else None
    pats = {
        f"s{i}": LayerPattern.from_mask(
            "l", block_column_mask(out, inp, block_rows, d, g), block_rows, 4
        )
        for i, d in enumerate(densities)
    }
    pool = BlockColumnPool(w, b, pats, layout)
    x = torch.randn(2, tokens, inp, generator=g)
    for name, pat in pats.items():
        want = torch.nn.functional.linear(x, w * pat.mask(), b)
        got = pool.form(name)(x)
        assert got.is_contiguous()  # as nn.Linear's: models .view() their outputs
        assert torch.allclose(got, want, **TOL)


@pytest.mark.parametrize(("out", "tokens"), [(8, 1), (8, 5), (40, 1), (40, 6), (300, 3)])
def test_outputs_survive_later_calls(out, tokens):
    """Forms reuse workspaces per token count: a returned output must not alias them."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(out, 20, generator=g)
    mask = block_column_mask(out, 20, 8, 0.5, g)
    form = BlockColumnLinear.build(w, None, LayerPattern.from_mask("l", mask, 8, 8))
    x1, x2 = torch.randn(tokens, 20, generator=g), torch.randn(tokens, 20, generator=g)
    y1 = form(x1)
    keep = y1.clone()
    y2 = form(x2)
    assert torch.equal(y1, keep)
    assert torch.allclose(y2, x2 @ (w * mask).t(), **TOL)


@pytest.mark.parametrize("layout", ["segments", "views"])
@pytest.mark.parametrize("bias", [True, False])
def test_row_gathered_large_layers_equal_masked_dense(layout, bias):
    """Large layers at many tokens gather rows of the transposed input; empty and ragged
    block-rows, non-nested sets and a short last block-row must stay exact on both paths."""
    g = torch.Generator().manual_seed(5)
    out, inp, B = 610, 48, 32
    w = torch.randn(out, inp, generator=g)
    b = torch.randn(out, generator=g) if bias else None
    masks = {f"d{d}": block_column_mask(out, inp, B, d, g) for d in (0.9, 0.6, 0.3)}
    masks["empty_rows"] = masks["d0.6"].clone()
    masks["empty_rows"][: 3 * B] = False  # three block-rows keep nothing: bias only
    pats = {n: LayerPattern.from_mask("l", m, B, 8) for n, m in masks.items()}
    pool = BlockColumnPool(w, b, pats, layout)
    forms = {name: pool.form(name) for name in pats}
    forms["alone"] = BlockColumnLinear.build(w, b, pats["empty_rows"])
    pats["alone"] = pats["empty_rows"]
    assert forms["alone"].empty_rows.tolist() == [0, 1, 2]
    for name, form in forms.items():
        assert form.row_gather_from is not None  # the path under test
        pat = pats[name]
        for tokens in (1, 15, 16, 40):
            x = torch.randn(tokens, inp, generator=g)
            want = torch.nn.functional.linear(x, w * pat.mask(), b)
            assert torch.allclose(form(x), want, **TOL), (name, tokens)


def test_standalone_form_and_nested_prefix_sharing():
    g = torch.Generator().manual_seed(1)
    lin = nn.Linear(100, 70)
    sets = nested_block_column_sets({"l": lin}, {"a": 0.6, "b": 0.3, "c": 0.05}, 16, 16)
    pool = BlockColumnPool(
        lin.weight.detach(), lin.bias.detach(), {s.name: s.layers["l"] for s in sets}
    )
    x = torch.randn(5, 100, generator=g)
    for s in sets:
        form = pool.form(s.name)
        assert not form.zero_column  # nested sets are prefixes of the shared layout
        shared = {seg.data_ptr() for _, _, segs, _ in pool.buckets for seg in segs}
        for _, segs, _ in form.parts:
            assert all(w.data_ptr() in shared for _, w in segs)  # no copy of its own
        want = torch.nn.functional.linear(x, lin.weight * s.layers["l"].mask(), lin.bias)
        assert torch.allclose(form(x), want, **TOL)
        alone = BlockColumnLinear.build(lin.weight.detach(), lin.bias.detach(), s.layers["l"])
        assert torch.allclose(alone(x), want, **TOL)


def _run_cost(widths, runs, block_rows):
    return sum(
        (b - a) * max(widths[a:b]) * block_rows + K.BUCKET_OVERHEAD_ELEMENTS for a, b in runs
    )


@settings(max_examples=60, deadline=None)
@given(
    widths=st.lists(st.integers(0, 300), min_size=1, max_size=8),
    block_rows=st.sampled_from([1, 8, 32]),
)
def test_runs_partition_in_order_at_least_cost(widths, block_rows):
    """``_runs`` cuts block-rows into contiguous runs no dearer than any other cutting."""
    runs = K._runs(widths, block_rows)
    assert [a for a, _ in runs] == [0, *(b for _, b in runs[:-1])]
    assert runs[-1][1] == len(widths)
    n = len(widths)
    best = math.inf
    for cuts in range(2 ** (n - 1)):  # every way to cut n rows into contiguous runs
        bounds = [0, *(i + 1 for i in range(n - 1) if cuts >> i & 1), n]
        best = min(best, _run_cost(widths, list(itertools.pairwise(bounds)), block_rows))
    assert _run_cost(widths, runs, block_rows) == best


def test_views_layout_cuts_ragged_buckets_for_each_set():
    """A sparse set nested in a wide one pays for its own widths, not the bucket's widest."""
    g = torch.Generator().manual_seed(4)
    out, inp, B = 32 * 40, 256, 32
    lin = nn.Linear(inp, out)
    keep_wide = torch.ones(out // B, inp, dtype=torch.bool)  # the union: every column
    keep_thin = torch.zeros(out // B, inp, dtype=torch.bool)
    widths = [8] * 20 + [120] * 20  # ragged inside one bucket of the union
    for r, k in enumerate(widths):
        keep_thin[r, torch.randperm(inp, generator=g)[:k]] = True
    masks = {"wide": keep_wide, "thin": keep_thin}
    pats = {
        n: LayerPattern.from_mask("l", m.repeat_interleave(B, dim=0), B, 32)
        for n, m in masks.items()
    }
    pool = BlockColumnPool(lin.weight.detach(), lin.bias.detach(), pats, "views")
    thin = pool.form("thin")
    assert len(pool.buckets) == 1 and len(thin.parts) == 2
    assert thin.macs_per_row == pats["thin"].nnz  # no padding: each run is exact
    x = torch.randn(35, inp, generator=g)
    want = torch.nn.functional.linear(x, lin.weight * pats["thin"].mask(), lin.bias)
    with torch.no_grad():
        assert torch.allclose(thin(x), want, **TOL)


class Mixed(nn.Module):
    """Embedding, Linear of several shapes (non-multiples of the block), a tied decoder."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 24)
        self.up = nn.Linear(24, 70)
        self.down = nn.Linear(70, 24, bias=False)
        self.decoder = nn.Linear(24, 50)

    def forward(self, tokens):
        h = self.emb(tokens)
        h = h + self.down(torch.relu(self.up(h)))
        return self.decoder(h)


def mixed_sets(model):
    g = torch.Generator().manual_seed(3)
    sets = nested_block_column_sets(
        prunable_all(model), {"bp": 0.7, "p40": 0.4, "p10": 0.1}, 16, 8, seed=2
    )
    # an elementwise set on one layer: executed as masked dense
    free = torch.rand(70, 24, generator=g) < 0.5
    sets.append(PatternSet("free", {"up": LayerPattern.from_mask("up", free, 16, 8)}))
    return sets


def prunable_all(model):
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Embedding)}


@pytest.mark.parametrize(
    ("executor", "layout"), [("auto", "segments"), ("torch", "segments"), ("torch", "views")]
)
def test_every_set_equals_masked_dense_for_every_layer_type(executor, layout):
    """The torch reference (what auto runs for a model the engine does not run)."""
    torch.manual_seed(0)
    model = Mixed().eval()
    sets = mixed_sets(model)
    refs = {s.name: masked_reference(model, s) for s in sets}
    dense = copy.deepcopy(model)
    rm = ReconfigurableModel(model, sets, executor=executor, layout=layout)
    tokens = torch.randint(0, 50, (3, 11))
    with torch.no_grad():
        assert torch.allclose(rm(tokens), dense(tokens), **TOL)  # active None: the backbone
        for s in sets:
            rm.switch(s.name)
            assert rm.active == s.name
            assert torch.allclose(rm(tokens), refs[s.name](tokens), **TOL)
    assert rm.executor == "torch" and rm.form_kinds()["free"]["up"] == "dense"


def test_switching_mid_stream_between_inferences():
    torch.manual_seed(0)
    model = Mixed().eval()
    sets = mixed_sets(model)
    refs = {s.name: masked_reference(model, s) for s in sets}
    rm = ReconfigurableModel(model, sets, active="bp")
    stream = [torch.randint(0, 50, (1, 7)) for _ in range(12)]
    order = ["bp", "p10", "p40", "p10", "free", "bp", "p40", "p40", "p10", "bp", "free", "p10"]
    gen = rm.generation
    with torch.no_grad():
        for tokens, name in zip(stream, order, strict=True):
            took = rm.switch(name)
            assert took >= 0
            assert torch.allclose(rm(tokens), refs[name](tokens), **TOL)
    assert rm.generation == gen + len(order)


def test_switch_touches_no_weight_data():
    torch.manual_seed(0)
    model = Mixed().eval()
    rm = ReconfigurableModel(model, mixed_sets(model))
    before = {k: v.clone() for k, v in rm.module.state_dict().items()}
    pools = {
        k: [w.clone() for _, _, segs, _ in p.buckets for w in segs] for k, p in rm.pools.items()
    }
    for name in rm.set_names * 3:
        rm.switch(name)
    for k, v in rm.module.state_dict().items():
        assert torch.equal(v, before[k])
    for k, p in rm.pools.items():
        now = [w for _, _, segs, _ in p.buckets for w in segs]
        assert all(torch.equal(a, w) for a, w in zip(pools[k], now, strict=True))


def test_switch_during_a_forward_waits_for_it():
    """A switch requested from another thread mid-inference takes effect after it."""
    torch.manual_seed(0)
    model = Mixed().eval()
    sets = mixed_sets(model)
    refs = {s.name: masked_reference(model, s) for s in sets}
    started, release = threading.Event(), threading.Event()

    class Gate(nn.Module):
        def forward(self, h):
            started.set()
            assert release.wait(5)
            return h

    model.gate = Gate()
    orig_forward = Mixed.forward

    def gated(self, tokens):
        return orig_forward(self, self.gate(tokens))

    model.forward = gated.__get__(model)
    rm = ReconfigurableModel(model, sets, active="p10")
    tokens = torch.randint(0, 50, (1, 5))
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("y", rm(tokens)))
    t.start()
    assert started.wait(5)
    switcher = threading.Thread(target=lambda: rm.switch("bp"))
    switcher.start()
    switcher.join(0.2)
    assert switcher.is_alive() and rm.active == "p10"  # waiting for the inference
    release.set()
    t.join(5)
    switcher.join(5)
    assert rm.active == "bp"
    with torch.no_grad():
        assert torch.allclose(out["y"], refs["p10"](tokens), **TOL)


def test_unknown_set_and_bad_layers_are_named():
    model = Mixed()
    rm = ReconfigurableModel(model, mixed_sets(model))
    with pytest.raises(ReconfigurationError, match="no pattern set 'nope'"):
        rm.switch("nope")
    ghost = PatternSet(
        "g",
        {"nowhere": LayerPattern.from_mask("nowhere", torch.ones(4, 4, dtype=torch.bool), 2, 2)},
    )
    with pytest.raises(ReconfigurationError, match="layer 'nowhere' is not in the model"):
        ReconfigurableModel(Mixed(), [ghost])
    wrong = PatternSet(
        "w", {"up": LayerPattern.from_mask("up", torch.ones(24, 70, dtype=torch.bool), 2, 2)}
    )
    with pytest.raises(ReconfigurationError, match=r"weight \(70, 24\) but mask \(24, 70\)"):
        ReconfigurableModel(Mixed(), [wrong])


def test_memory_sets_cost_less_than_one_dense_copy():
    torch.manual_seed(0)
    model = Mixed()
    rm = ReconfigurableModel(model, [s for s in mixed_sets(model) if s.name != "free"])
    mem = rm.memory()
    dense_bytes = sum(p.numel() * 4 for p in model.parameters())
    assert mem.backbone_bytes == dense_bytes
    assert 0 < mem.sets_total_bytes < mem.pruned_dense_bytes
    assert set(mem.set_bytes) == {"bp", "p40", "p10"}


@pytest.mark.parametrize("executor", ["auto", "torch"])
def test_from_bundle_rt3_transformer(tmp_path, executor):
    """The RT3 Transformer from a saved bundle, on the runtime (the engine, where it builds)
    and on the torch reference: every set matches its masked dense model."""
    root = synthetic_bundle(
        tmp_path / "b", config={"vocab_size": 97, "emb": 40, "ff": 24, "layers": 2, "heads": 4}
    )
    bundle = Bundle.load(root)
    from lab.model.transformer import RT3TransformerLM

    module = RT3TransformerLM(**bundle.model["config"]).eval()
    module.load_state_dict(bundle.backbone)
    refs = {n: masked_reference(module, ps) for n, ps in bundle.sets.items()}
    rm = ReconfigurableModel(module, bundle.sets.values(), executor=executor)
    assert rm.set_names == ["bp", "p50", "p30", "p20"]
    assert "decoder" in rm.layer_names and "embedding" in rm.layer_names
    tokens = torch.randint(0, 97, (2, 35))
    with torch.no_grad():
        for name in ["p20", "bp", "p30", "p50", "p20"]:
            rm.switch(name)
            assert torch.allclose(rm(tokens), refs[name](tokens), **TOL)
    assert rm.memory().sets_total_bytes < rm.memory().pruned_dense_bytes


def test_distilbert_family():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.DistilBertConfig(
        n_layers=2, dim=64, hidden_dim=96, n_heads=4, vocab_size=200, max_position_embeddings=64
    )
    torch.manual_seed(0)
    model = transformers.DistilBertForSequenceClassification(cfg).eval()
    layers = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    sets = nested_block_column_sets(layers, {"bp": 0.6, "p25": 0.25}, 32, 32)
    refs = {s.name: masked_reference(model, s) for s in sets}
    rm = ReconfigurableModel(model, sets)
    ids = torch.randint(0, 200, (2, 19))
    with torch.no_grad():
        for s in sets:
            rm.switch(s.name)
            assert torch.allclose(
                rm(input_ids=ids).logits, refs[s.name](input_ids=ids).logits, **TOL
            )


def test_bundle_with_set_naming_missing_layer_is_a_bundle_error(tmp_path):
    root = synthetic_bundle(
        tmp_path / "b", config={"vocab_size": 50, "emb": 16, "ff": 8, "layers": 1, "heads": 2}
    )
    bundle = Bundle.load(root)
    bad = PatternSet(
        "p20",
        {
            "layers.7.linear1": LayerPattern.from_mask(
                "layers.7.linear1", torch.ones(8, 16, dtype=torch.bool), 32, 32
            )
        },
    )
    bad.save(root / "sets" / "p20.safetensors")
    import json

    doc = json.loads((root / "bundle.json").read_text())
    for e in doc["sets"]:
        if e["name"] == "p20":
            e.update(nnz=bad.nnz, density=1.0, sparsity=0.0)
    from lab.runtime.bundle import file_sha256

    doc["checksums"]["sets/p20.safetensors"] = file_sha256(root / "sets" / "p20.safetensors")
    (root / "bundle.json").write_text(json.dumps(doc))
    with pytest.raises(BundleError, match=r"set 'p20': layer 'layers\.7\.linear1' has no weight"):
        Bundle.load(root)
    assert bundle.set_names == ["bp", "p50", "p30", "p20"]


@pytest.mark.parametrize(("densities", "own"), [((0.4, 0.1), True), ((0.5, 0.2), False)])
def test_sets_not_nested_get_their_own_pool_and_stay_exact(densities, own):
    """A set padded on the shared layout gets a pool of its own when the memory budget
    (one dense copy of the pruned layers) allows it; either way every set stays exact."""
    g = torch.Generator().manual_seed(7)
    lin = nn.Linear(96, 64)
    model = nn.Sequential(lin).eval()
    masks = [block_column_mask(64, 96, 16, d, g) for d in densities]
    sets = [
        PatternSet("a", {"0": LayerPattern.from_mask("0", masks[0], 16, 16)}),
        PatternSet("b", {"0": LayerPattern.from_mask("0", masks[1], 16, 16)}),
    ]
    refs = {s.name: masked_reference(model, s) for s in sets}
    rm = ReconfigurableModel(model, sets, executor="torch")
    assert ("0#b" in rm.pools) == own  # b is not inside a: padded on the shared layout
    mem = rm.memory()
    assert mem.sets_total_bytes < mem.pruned_dense_bytes
    x = torch.randn(4, 96, generator=g)
    with torch.no_grad():
        for s in sets:
            rm.switch(s.name)
            assert torch.allclose(rm(x), refs[s.name](x), **TOL)


def test_lazy_package_exports():
    import lab.runtime

    assert lab.runtime.ReconfigurableModel is ReconfigurableModel
    with pytest.raises(AttributeError):
        _ = lab.runtime.nothing_here


def test_auto_falls_back_to_the_torch_reference_and_says_why():
    """A model the engine does not run (not RT3's LM): auto runs the torch reference, names
    why, and stays within one dense copy; asking for the engine is an error naming it."""
    torch.manual_seed(0)
    model = Mixed().eval()
    sets = [s for s in mixed_sets(model) if s.name != "free"]
    model_copy = copy.deepcopy(model)
    rm = ReconfigurableModel(model, sets)
    assert rm.executor == "torch" and rm.engine is None
    assert "RT3TransformerLM, not Mixed" in rm.fallback_reason
    mem = rm.memory()
    assert mem.sets_total_bytes < mem.pruned_dense_bytes
    assert set(rm.form_kinds()) == {s.name for s in sets}
    x = torch.randint(0, 50, (2, 7))
    for s in sets:
        rm.switch(s.name)
        with torch.no_grad():
            assert torch.allclose(rm(x), masked_reference(model_copy, s)(x), **TOL)
    with pytest.raises(ReconfigurationError, match=r"executor 'engine': .*not Mixed"):
        ReconfigurableModel(Mixed(), sets, executor="engine")
    with pytest.raises(ReconfigurationError, match="executor 'compact' is not one of"):
        ReconfigurableModel(Mixed(), sets, executor="compact")


def test_activated_forms_run_until_the_next_switch():
    """A measurement variant (one layer at a set's pattern, the others dense) runs until a
    switch puts a set back; the generation counts it as a switch."""
    torch.manual_seed(0)
    model = Mixed().eval()
    sets = mixed_sets(model)
    dense = copy.deepcopy(model)
    rm = ReconfigurableModel(model, sets, executor="torch", active="p10")
    gen = rm.generation
    one = {"up": rm.forms["p10"]["up"]}
    rm.activate_forms(one)
    assert rm.active is None and rm.generation == gen + 1
    ref = copy.deepcopy(dense)
    with torch.no_grad():
        ref.up.weight.mul_(next(s for s in sets if s.name == "p10").layers["up"].mask())
    tokens = torch.randint(0, 50, (2, 5))
    with torch.no_grad():
        assert torch.allclose(rm(tokens), ref(tokens), **TOL)
        rm.switch(None)
        assert torch.allclose(rm(tokens), dense(tokens), **TOL)


def test_a_premasked_form_reuses_the_backbone_when_the_mask_removes_no_nonzero():
    """Dense forms cost no bytes where the set prunes only what the backbone already zeroed
    (BP's dead columns); anywhere else they own a masked copy and the backbone is untouched."""
    from lab.runtime.reconfigurable import premasked_linear

    g = torch.Generator().manual_seed(3)
    weight = torch.randn(64, 48, generator=g)
    weight[:, ::3] = 0.0  # columns BP killed
    bias = torch.randn(64, generator=g)
    x = torch.randn(5, 48, generator=g)
    dead_only = torch.ones_like(weight, dtype=torch.bool)
    dead_only[:, ::6] = False
    form = premasked_linear(weight, bias, dead_only)
    assert form.weight is weight and not form.owned and form.nbytes == 0
    assert torch.allclose(form(x), x @ (weight * dead_only).T + bias, **TOL)
    live_too = dead_only.clone()
    live_too[:, 1] = False
    before = weight.clone()
    form = premasked_linear(weight, bias, live_too)
    assert form.owned and form.nbytes == weight.numel() * 4
    assert torch.equal(weight, before)
    assert torch.allclose(form(x), x @ (weight * live_too).T + bias, **TOL)
