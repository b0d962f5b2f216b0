"""BP: groups really zero, masks never revive, sparsity per layer from a config file."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lab.compression.block_pruning import (
    BlockPruner,
    BPConfig,
    RandomBlockPruner,
    block_column_of,
    load_bp_config,
    prune_groups,
)
from lab.compression.finetune import StepPlan, train_masked
from lab.compression.sparsifier import CompressionError


class Tiny(nn.Module):
    def __init__(self, vocab=50, emb=24, hidden=40):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb)
        self.fc = nn.Linear(emb, hidden)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, tokens):
        return self.decoder(torch.relu(self.fc(self.embedding(tokens))))


def _cfg(**kw):
    base = dict(block_rows=8, block_cols=8, layers={"embedding": 0.5, "fc": 0.7, "decoder": 0.3})
    base.update(kw)
    return BPConfig(**base)


def test_bp_groups_are_really_zero_and_block_column():
    torch.manual_seed(0)
    model = Tiny()
    cfg = _cfg()
    bp = BlockPruner(cfg)
    bp.prepare(model, cfg.sparsity_for(["embedding", "fc", "decoder"]))
    bp.step()
    for name, module in (
        ("embedding", model.embedding),
        ("fc", model.fc),
        ("decoder", model.decoder),
    ):
        mask = bp.masks[name]
        assert block_column_of(mask, cfg.block_rows)
        assert bool((module.weight[~mask] == 0).all())
        # every pruned group (column segment in a block-row) is wholly zero
        w = module.weight.detach()
        for b in range(0, w.shape[0], cfg.block_rows):
            seg = w[b : b + cfg.block_rows]
            zero_cols = ~mask[b]
            assert bool((seg[:, zero_cols] == 0).all())
        sparsity = 1 - mask.float().mean().item()
        assert sparsity == pytest.approx(bp.sparsity[name], abs=cfg.block_rows / mask.numel() * 4)


def test_masks_never_revive_through_training():
    torch.manual_seed(1)
    model = Tiny()
    cfg = _cfg()
    bp = BlockPruner(cfg)
    bp.prepare(model, cfg.sparsity_for(["embedding", "fc", "decoder"]))
    data = torch.randint(0, 50, (600,))
    g = torch.Generator().manual_seed(0)
    train_masked(model, data, bp.masks, StepPlan(5, g, batch_size=4), seq_len=8, penalty=bp.penalty)
    bp.step()
    before = {k: v.clone() for k, v in bp.masks.items()}
    train_masked(model, data, bp.masks, StepPlan(10, g, batch_size=4, lr=1e-2), seq_len=8)
    for name, mask in before.items():
        w = dict(model.named_modules())[name].weight
        assert bool((w[~mask] == 0).all()), name
    # a second step with a higher target shrinks masks, never revives
    bp.sparsity = {k: min(v + 0.1, 0.95) for k, v in bp.sparsity.items()}
    bp.step()
    for name, mask in before.items():
        assert not bool((bp.masks[name] & ~mask).any())


@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 20),
    st.integers(1, 20),
    st.integers(1, 6),
    st.floats(0, 0.99),
    st.integers(0, 2**16),
)
def test_step_only_shrinks_masks(rows, cols, block, sparsity, seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(cols, rows))
    cfg = BPConfig(block_rows=block, block_cols=block, layers={"0": sparsity})
    g = torch.Generator().manual_seed(seed)
    start = torch.rand(rows, cols, generator=g) > 0.3
    pruner = RandomBlockPruner(cfg, g)
    pruner.prepare(model, {"0": sparsity}, masks={"0": start})
    pruner.step()
    assert not bool((pruner.masks["0"] & ~start).any())
    assert bool((model[0].weight[~pruner.masks["0"]] == 0).all())


def test_group_lasso_drives_groups_down():
    torch.manual_seed(2)
    model = Tiny()
    cfg = _cfg(lasso_strength=0.05, reweight_every=2)
    bp = BlockPruner(cfg)
    bp.prepare(model, cfg.sparsity_for(["embedding", "fc", "decoder"]))
    p0 = float(bp.penalty().detach())
    data = torch.randint(0, 50, (400,))
    g = torch.Generator().manual_seed(0)
    plan = StepPlan(30, g, batch_size=4, lr=1e-2)
    train_masked(model, data, bp.masks, plan, seq_len=8, penalty=bp.penalty)
    bp.reweight()
    assert float(bp.penalty().detach()) < p0


def test_prune_groups_respects_element_counts():
    scores = torch.tensor([[5.0, 1.0], [0.5, 9.0]])
    sizes = torch.tensor([[4, 4], [1, 1]])
    keep = prune_groups(scores, sizes, 0.4)  # 4 of 10 elements: drop the size-1 then size-4?
    dropped = int(sizes[~keep].sum())
    assert dropped in (4, 5)


def test_default_config_is_rt3s():
    cfg = load_bp_config()
    s = cfg.sparsity_for(["embedding", "layers.0.linear1", "layers.1.self_attn.in_proj", "decoder"])
    assert s == {
        "embedding": 0.7,
        "layers.0.linear1": 0.9944,
        "layers.1.self_attn.in_proj": 0.0,
        "decoder": 0.7,
    }


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, "x"])
def test_sparsity_outside_unit_interval_is_named(tmp_path, bad):
    p = tmp_path / "bp.yaml"
    p.write_text(
        f"layers:\n  decoder: {bad!r}\n" if isinstance(bad, str) else f"layers:\n  decoder: {bad}\n"
    )
    with pytest.raises(CompressionError, match=r"decoder.*sparsity"):
        load_bp_config(p)


def test_config_errors_name_the_file(tmp_path):
    with pytest.raises(CompressionError, match="not found"):
        load_bp_config(tmp_path / "missing.yaml")
    p = tmp_path / "bp.yaml"
    p.write_text("blocks: 3\n")
    with pytest.raises(CompressionError, match=r"bp.yaml.*unknown field"):
        load_bp_config(p)


def test_prepare_rejects_unknown_layer():
    with pytest.raises(CompressionError, match="nope"):
        BlockPruner(_cfg()).prepare(Tiny(), {"nope": 0.5})


def test_block_row_groups():
    torch.manual_seed(3)
    model = Tiny()
    cfg = _cfg(groups="block-row")
    bp = BlockPruner(cfg)
    bp.prepare(model, {"fc": 0.5})
    bp.step()
    mask = bp.masks["fc"]
    # block-row groups: within each block-column, pruned rows are whole row segments
    for c in range(0, mask.shape[1], cfg.block_cols):
        seg = mask[:, c : c + cfg.block_cols]
        assert bool(((seg.all(dim=1)) | (~seg).all(dim=1)).all())


@pytest.mark.parametrize("rows", [200, 33, 31, 64])
def test_bp_masks_are_block_column_when_the_last_block_row_is_short(rows):
    from lab.runtime.pattern_set import LayerPattern

    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(40, rows))
    cfg = BPConfig(block_rows=32, block_cols=32, layers={"0": 0.6})
    bp = BlockPruner(cfg)
    bp.prepare(model, {"0": 0.6})
    bp.step()
    mask = bp.masks["0"]
    assert block_column_of(mask, 32)
    assert LayerPattern.from_mask("0", mask, 32, 32).family == "block-column"
