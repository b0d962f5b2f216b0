"""The op count behind a width, depth or early-exit variant's FLOP limit
(``lab.bench.scheme_variants.variant_ops``), against hand arithmetic on a tiny model."""

import torch

from lab.bench.scheme_variants import variant_ops
from lab.model.transformer import RT3TransformerLM
from lab.runtime.exits import ExitPlan
from lab.runtime.pattern_set import PatternSet
from lab.runtime.synthetic import rt3_opcount

SEQ = 5
# vocab 50, emb 16, ff 8, 2 layers of 2 heads (head size 8), an exit head after layer 1
MODEL = RT3TransformerLM(50, emb=16, ff=8, layers=2, heads=2, exit_heads=[1])
DECODER = 16 * 50  # each decoder's weights, per token
LAYER = 3 * 16 * 16 + 16 * 16 + 8 * 16 + 16 * 8  # in_proj, out_proj, linear1, linear2
ATTENTION = 2 * SEQ * 16  # RT3's attention term per layer and token, every head


def _exits(name: str, plan: ExitPlan) -> PatternSet:
    return PatternSet(name, {}, plan.to_meta())


def test_dense_runs_every_layer_and_the_decoder_not_the_exit_head():
    dense = SEQ * (DECODER + 2 * (LAYER + ATTENTION))
    assert variant_ops(MODEL, None, SEQ) == dense
    with_head = SEQ * DECODER + rt3_opcount(RT3TransformerLM(50, 16, 8, 2, 2), None, SEQ)
    assert rt3_opcount(MODEL, None, SEQ) == with_head  # RT3's count: every Linear there is


def test_a_depth_variant_counts_the_layers_it_runs_and_its_exit_head():
    depth1 = _exits("d1", ExitPlan((1,), ("exit_heads.1",)))
    assert variant_ops(MODEL, depth1, SEQ) == SEQ * (DECODER + LAYER + ATTENTION)
    depth0 = _exits("d0", ExitPlan((0,), ("decoder",)))
    assert variant_ops(MODEL, depth0, SEQ) == SEQ * DECODER


def test_an_early_exit_counts_every_decoder_scored_on_the_way():
    ee = _exits("ee", ExitPlan((1, 2), ("exit_heads.1", "decoder"), 0.5))
    assert variant_ops(MODEL, ee, SEQ, 0) == SEQ * (DECODER + LAYER + ATTENTION)
    last = SEQ * (2 * DECODER + 2 * (LAYER + ATTENTION))
    assert variant_ops(MODEL, ee, SEQ, 1) == variant_ops(MODEL, ee, SEQ) == last


def test_a_width_variant_counts_its_kept_weights_and_the_heads_the_engine_computes():
    """Head 1 of layer 0 removed (its out_proj columns and Q, K, V rows), 4 neurons too."""
    out_proj = torch.ones(16, 16, dtype=torch.bool)
    out_proj[:, 8:] = False
    in_proj = torch.ones(48, 16, dtype=torch.bool)
    for part in range(3):
        in_proj[part * 16 + 8 : part * 16 + 16] = False
    linear1 = torch.ones(8, 16, dtype=torch.bool)
    linear1[4:] = False
    linear2 = torch.ones(16, 8, dtype=torch.bool)
    linear2[:, 4:] = False
    masks = {
        "layers.0.self_attn.out_proj": out_proj,
        "layers.0.self_attn.in_proj": in_proj,
        "layers.0.linear1": linear1,
        "layers.0.linear2": linear2,
    }
    ps = PatternSet.from_masks("half", masks, 4, 4)
    layer0 = LAYER // 2 + ATTENTION // 2  # half of every weight, one of two heads
    assert variant_ops(MODEL, ps, SEQ) == SEQ * (DECODER + layer0 + LAYER + ATTENTION)
