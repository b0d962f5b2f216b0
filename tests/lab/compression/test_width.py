"""--scheme width (DynaBERT): nested importance ranking, whole-unit masks, the engine's
logits against the torch reference, and the bundle end to end (real torch, tiny budget)."""

import copy
import itertools
import json

import pytest
import torch
from scheme_bench import bench_json, check_bench

from device_profiles import load_profile
from lab.cli import main
from lab.compression.budget import TEST
from lab.compression.finetune import LMObjective, applied_masks
from lab.compression.options import CompressOptions
from lab.compression.pipeline import load_lm_data
from lab.compression.schemes import scheme_builder
from lab.compression.schemes.importance import unit_importance
from lab.compression.schemes.width_units import (
    WIDTHS,
    rewire,
    unit_orders,
    width_masks,
    width_plan,
)
from lab.model.transformer import RT3TransformerLM
from lab.runtime.bundle import Bundle
from lab.runtime.pattern_set import LayerPattern, PatternSet

CONFIG = {"vocab_size": 40, "emb": 32, "ff": 24, "layers": 2, "heads": 4}
BLOCK = 8  # head size 8, neurons in blocks of 8


@pytest.fixture
def model():
    torch.manual_seed(0)
    return RT3TransformerLM(**CONFIG, dropout=0.0).eval()


def _importance(model):
    tokens = torch.randint(
        0, CONFIG["vocab_size"], (2000,), generator=torch.Generator().manual_seed(1)
    )
    return unit_importance(model, LMObjective(tokens, 12), 3, torch.Generator().manual_seed(2), 4)


def test_rewiring_keeps_the_function_and_sorts_the_units_by_importance(model):
    heads, neurons = _importance(model)
    assert heads.shape == (2, 4) and neurons.shape == (2, 24) and bool((heads > 0).any())
    x = torch.randint(0, 40, (2, 10))
    before = model(x)
    rewire(model, *unit_orders(heads, neurons))
    assert torch.allclose(model(x), before, atol=1e-5)
    again_h, again_n = _importance(model)
    # the same units, now in descending order of importance
    assert torch.allclose(again_h, heads.sort(dim=1, descending=True).values, rtol=1e-4)
    assert torch.allclose(again_n, neurons.sort(dim=1, descending=True).values, rtol=1e-4)


def test_the_ranking_is_nested_narrower_widths_keep_a_subset(model):
    plan = width_plan(CONFIG, WIDTHS, BLOCK)
    assert plan.heads == (4, 3, 2, 1) and plan.neurons == (24, 16, 16, 8)
    masks = [width_masks(plan, i) for i in range(len(WIDTHS))]
    for wide, narrow in itertools.pairwise(masks):
        for name in wide:
            assert bool((narrow[name] <= wide[name]).all()), name
            assert int(narrow[name].sum()) <= int(wide[name].sum())
    # the kept heads are the top-ranked ones: after rewiring, the first k
    heads, neurons = _importance(model)
    order_h, order_n = unit_orders(heads, neurons)
    for layer in range(2):
        top2 = set(heads[layer].topk(2).indices.tolist())
        assert set(order_h[layer][:2].tolist()) == top2
        top8 = set(neurons[layer].topk(8).indices.tolist())
        assert set(order_n[layer][:8].tolist()) == top8


def _gated(model, plan, i, x):
    """The model with the removed heads' and neurons' outputs zeroed (weights untouched)."""
    d, kh, kf = plan.head_size, plan.heads[i], plan.neurons[i]
    hooks = []
    for layer in model.layers:

        def zero_heads(_m, args):
            y = args[0].clone()
            y[..., kh * d :] = 0
            return (y,)

        def zero_neurons(_m, args):
            y = args[0].clone()
            y[..., kf:] = 0
            return (y,)

        hooks.append(layer.self_attn.out_proj.register_forward_pre_hook(zero_heads))
        hooks.append(layer.linear2.register_forward_pre_hook(zero_neurons))
    try:
        return model(x)
    finally:
        for h in hooks:
            h.remove()


@pytest.mark.parametrize("i", range(len(WIDTHS)))
def test_width_masks_remove_exactly_whole_heads_and_neurons(model, i):
    plan = width_plan(CONFIG, WIDTHS, BLOCK)
    masks = width_masks(plan, i)
    e, f, d = 32, 24, plan.head_size
    kept_heads, kf = plan.heads[i], plan.neurons[i]
    for layer in range(2):
        p = f"layers.{layer}."
        rows = masks[p + "self_attn.in_proj"]
        assert bool((rows.all(dim=1) | ~rows.any(dim=1)).all())  # whole rows
        per_head = rows.all(dim=1).reshape(3, 4, d)  # Q, K, V x heads x head rows
        assert bool((per_head.all(dim=2) | ~per_head.any(dim=2)).all())  # whole heads
        assert per_head.all(dim=2).sum(dim=1).tolist() == [kept_heads] * 3
        assert bool((per_head[0] == per_head[1]).all() and (per_head[0] == per_head[2]).all())
        cols = masks[p + "self_attn.out_proj"]
        assert bool(
            (cols.all(dim=0) == per_head[0].reshape(e)).all() and (cols.any(0) == cols.all(0)).all()
        )
        assert masks[p + "linear1"].all(dim=1).sum() == kf and masks[p + "linear1"].sum() == kf * e
        assert masks[p + "linear2"].all(dim=0).sum() == kf and masks[p + "linear2"].sum() == kf * e
        for name in ("self_attn.in_proj", "self_attn.out_proj", "linear1", "linear2"):
            pat = LayerPattern.from_mask(p + name, masks[p + name], BLOCK, BLOCK)
            assert pat.family == "block-column"
    x = torch.randint(0, 40, (2, 10))
    with torch.no_grad(), applied_masks(model, masks):
        masked = model(x)
    assert torch.allclose(masked, _gated(model, plan, i, x), atol=1e-5)
    assert f == plan.ff


def test_the_engine_runs_a_width_variant_as_the_torch_reference(model, monkeypatch):
    monkeypatch.setenv("RT3E_SPLIT_MACS", "0")  # split every job: this model's are small
    from lab.runtime import engine
    from lab.runtime.reconfigurable import ReconfigurableModel

    if engine.library() is None:
        pytest.skip(f"no native engine here: {engine.status()}")
    plan = width_plan(CONFIG, WIDTHS, BLOCK)
    sets = [PatternSet.from_masks(f"w{i}", width_masks(plan, i), BLOCK, BLOCK) for i in range(4)]
    rm = ReconfigurableModel(copy.deepcopy(model), sets, executor="engine")
    x = torch.randint(0, 40, (1, 13))
    for i, ps in enumerate(sets):
        rm.switch(ps.name)
        with torch.no_grad():
            got = rm(x)
            with applied_masks(model, width_masks(plan, i)):
                want = model(x)
        assert torch.allclose(got, want, atol=1e-4), ps.name
    rm.switch(None)
    with torch.no_grad():
        assert torch.allclose(rm(x), model(x), atol=1e-4)
    # the heads left are split over the threads: the same logits at any thread count
    two = ReconfigurableModel(copy.deepcopy(model), sets, executor="engine", engine_threads=2)
    for ps in sets:
        rm.switch(ps.name)
        two.switch(ps.name)
        assert torch.equal(two(x), rm(x)), ps.name


def test_a_head_size_that_is_not_whole_block_rows_is_refused():
    with pytest.raises(ValueError, match=r"head size 8 .* not a multiple of the block height 16"):
        width_plan(CONFIG, WIDTHS, 16)


def _width_bundle(wiki_dir, out):
    """``compress --scheme width`` on the test budget, written to ``out``."""
    data = load_lm_data(f"wikitext2:{wiki_dir}", TEST)
    opts = CompressOptions(
        "rt3-paper", out, TEST, estimator="op-count", threads=1, scheme="width", block_rows=32,
        block_cols=32,
    )  # fmt: skip
    assert scheme_builder("width")(data, load_profile("rt3-paper"), opts) == out
    return out


def test_compress_scheme_width_writes_one_width_bundle(wiki_dir, tmp_path, capsys):
    out = _width_bundle(wiki_dir, tmp_path / "w")
    doc = json.loads((out / "bundle.json").read_text())
    assert doc["scheme"] == "width"
    b = Bundle.load(out, scheme="width")
    assert [e.freq_khz for e in b.entries.values()] == [1400000, 1000000, 800000]
    chosen = [lv["chosen"] for lv in b.provenance["width"]["levels"]]
    widths = [float(n[1:]) for n in chosen]
    assert widths == sorted(widths, reverse=True)  # a lower level never gets a wider width
    for lv in b.provenance["width"]["levels"]:
        assert lv["estimate_ms"] <= lv["deadline_ms"]
    for e, ps in zip(b.entries.values(), b.sets.values(), strict=True):
        assert ps.family == "block-column" and e.accuracy is not None
        assert "decoder" in ps.layers and ps.layers["decoder"].density == 1.0
    # loaded as another scheme: one line, exit 2, by the real CLI
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--bundle", str(out), "--scheme", "rt3"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "bundle of scheme 'width', loaded as 'rt3'" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--bundle", str(out), "--scheme", "width", "--json"])
    assert exc.value.code in (0, None)
    ev = json.loads(capsys.readouterr().out)
    assert ev["scheme"] == "width" and len(ev["sets"]) == 4  # dense and the three levels


def test_bench_runtime_times_every_width_on_the_engine_against_its_flop_limit(wiki_dir, tmp_path):
    """Whole heads and neurons removed: the full width's op count is dense's (limit 1), a
    narrower one's limit is above 1 and grows as the width shrinks; the anchors run it too
    (its sets are masks), against the same limit."""
    out = _width_bundle(wiki_dir, tmp_path / "w")
    b = Bundle.load(out, scheme="width")
    doc = bench_json(out)
    rows = check_bench(doc, "width", b.set_names)
    limits = [rows[n]["flop_speedup_limit"] for n in b.set_names]
    assert limits == sorted(limits) and limits[-1] > 1  # widest first
    for name, row in rows.items():
        assert "exit_layers" not in row and "per_exit" not in row
        assert (row["flop_speedup_limit"] == 1) == (b.sets[name].density == 1)
        for anchor in row["anchors"].values():
            if "dense_speedup" in anchor:  # the runtime's set over that anchor's dense
                assert anchor["dense_speedup_over_limit"] == pytest.approx(
                    anchor["dense_speedup"] / row["flop_speedup_limit"]
                )
    assert any(row["anchors"] for row in rows.values())
