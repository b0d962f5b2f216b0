"""Random-weight models and random block-column pattern sets, for benches and tests.

Sets are nested like RT3's (each sparser set inside the denser ones, all inside BP): every
layer gets one random score per (block-row, input column); a set of density ``d`` keeps,
in every block-row, the ``round(d * in_features)`` best-scored columns.

>>> import torch
>>> layers = {"fc": torch.nn.Linear(64, 70)}
>>> sets = nested_block_column_sets(layers, {"bp": 0.6, "p30": 0.3}, block_rows=32, seed=0)
>>> [round(s.density, 2) for s in sets]
[0.59, 0.3]
>>> bool((sets[1].layers["fc"].mask() <= sets[0].layers["fc"].mask()).all())
True
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lab.runtime.pattern_set import LayerPattern, PatternSet

SYNTHETIC_KINDS = ("rt3", "small", "distilbert")
# The default compression budget's model (what `rt3lab compress` builds on the built-in
# corpus): RT3's structure at emb 256, vocabulary 8000.
SMALL_RT3_CONFIG = {"vocab_size": 8000, "emb": 256, "ff": 200, "layers": 2, "heads": 4}
DEFAULT_DENSITIES = {"bp": 0.6, "p50": 0.5, "p30": 0.3, "p20": 0.2}


def nested_block_column_sets(
    layers: dict[str, nn.Module],
    densities: dict[str, float],
    block_rows: int = 32,
    block_cols: int = 32,
    seed: int = 0,
) -> list[PatternSet]:
    """One block-column ``PatternSet`` per ``{name: density}``, nested, over ``layers``."""
    g = torch.Generator().manual_seed(seed)
    scores = {}
    for name, mod in layers.items():
        rows, cols = mod.weight.shape
        scores[name] = torch.rand(math.ceil(rows / block_rows), cols, generator=g)
    sets = []
    for set_name, density in densities.items():
        patterns = {}
        for name, mod in layers.items():
            rows, cols = mod.weight.shape
            keep = max(1, round(density * cols))
            top = scores[name].topk(keep, dim=1).indices.sort(dim=1).values
            nbr = top.shape[0]
            patterns[name] = LayerPattern(
                name,
                (rows, cols),
                "block-column",
                block_rows,
                block_cols,
                top.reshape(-1).to(torch.int32),
                torch.arange(nbr + 1, dtype=torch.int64) * keep,
            )
        sets.append(PatternSet(set_name, patterns, {"synthetic": True, "target": density}))
    return sets


def rt3_model(vocab_size: int = 28_782, **config: Any) -> nn.Module:
    """RT3's Transformer LM (emb 800, ff 200, 2 layers, 4 heads), random weights, eval mode."""
    from lab.model.transformer import RT3TransformerLM

    return RT3TransformerLM(vocab_size=vocab_size, **config).eval()


def distilbert_model(layers: int = 6, hidden: int = 768, ff: int = 3072) -> nn.Module:
    """A DistilBERT-size encoder built from a config with random weights (nothing downloaded)."""
    from transformers import DistilBertConfig, DistilBertModel

    cfg = DistilBertConfig(n_layers=layers, dim=hidden, hidden_dim=ff, n_heads=hidden // 64)
    return DistilBertModel(cfg).eval()


def prunable(model: nn.Module, kind: str) -> dict[str, nn.Module]:
    """The layers a synthetic set prunes: every Linear/Embedding of RT3's model (the
    contract's names), every Linear inside DistilBERT's transformer blocks."""
    mods = dict(model.named_modules())
    if kind in ("rt3", "small"):
        names = [
            n
            for n in mods
            if n in ("embedding", "decoder")
            or n.endswith(("self_attn.in_proj", "self_attn.out_proj", "linear1", "linear2"))
        ]
    elif kind == "distilbert":
        names = [n for n, m in mods.items() if isinstance(m, nn.Linear) and ".layer." in n]
    else:
        raise ValueError(f"synthetic kind {kind!r} is not one of {SYNTHETIC_KINDS}")
    return {n: mods[n] for n in names}


def synthetic_model(kind: str, seed: int = 0) -> nn.Module:
    """A random-weight model of ``kind`` (``rt3``, ``small``: the default budget's, or
    ``distilbert``)."""
    torch.manual_seed(seed)
    if kind == "rt3":
        return rt3_model()
    if kind == "small":
        return rt3_model(**SMALL_RT3_CONFIG)
    if kind == "distilbert":
        return distilbert_model()
    raise ValueError(f"synthetic kind {kind!r} is not one of {SYNTHETIC_KINDS}")


def rt3_opcount(model: nn.Module, ps: PatternSet | None, seq_len: int) -> int:
    """Non-zero multiplies per inference as RT3 counts them (``rt3-opcount``): the pruned
    and unpruned Linear weights' non-zeros per token plus attention 2*seq*emb per layer."""
    per_token = 0
    emb = 0
    n_attn = 0
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            pat = None if ps is None else ps.layers.get(name)
            per_token += pat.nnz if pat is not None else mod.weight.numel()
            if name.endswith("in_proj"):
                emb, n_attn = mod.in_features, n_attn + 1
    return seq_len * (per_token + n_attn * 2 * seq_len * emb)


def synthetic_bundle(
    directory: str | Path,
    config: dict[str, Any] | None = None,
    densities: dict[str, float] | None = None,
    block_rows: int = 32,
    block_cols: int = 32,
    seed: int = 0,
    seq_len: int = 35,
) -> Path:
    """Write a bundle of a random-weight RT3 Transformer with random nested sets.

    The backbone is the dense weights with the ``bp`` set's mask applied (when a set named
    ``bp`` is given); accuracies are unknown (null). Returns the bundle directory.
    """
    from lab.model.transformer import RT3TransformerLM
    from lab.runtime.bundle import Bundle

    config = dict(config or {"vocab_size": 1000, "emb": 96, "ff": 40, "layers": 2, "heads": 4})
    densities = dict(densities or DEFAULT_DENSITIES)
    torch.manual_seed(seed)
    model = RT3TransformerLM(**config).eval()
    sets = nested_block_column_sets(
        prunable(model, "rt3"), densities, block_rows, block_cols, seed=seed
    )
    dense = {k: v.detach().clone() for k, v in model.state_dict().items()}
    backbone = dict(dense)
    bp = next((s for s in sets if s.name == "bp"), None)
    if bp is not None:
        for layer, pat in bp.layers.items():
            backbone[f"{layer}.weight"] = dense[f"{layer}.weight"] * pat.mask()
    d_ops = rt3_opcount(model, None, seq_len)
    bp_ops = rt3_opcount(model, bp, seq_len) if bp is not None else d_ops
    bundle = Bundle.create(
        "rt3-transformer",
        config,
        backbone,
        dense,
        reference={
            "dense": {"nonzero_mults": d_ops, "nonzero_adds": d_ops},
            "bp": {"nonzero_mults": bp_ops, "nonzero_adds": bp_ops},
        },
        provenance={"data": "synthetic (random weights)", "seed": seed, "episodes": 0},
    )
    for ps in sets:
        ops = rt3_opcount(model, ps, seq_len)
        bundle.add_set(ps, ops, ops)
    return bundle.save(directory)
