"""The depth scheme (DynaBERT's depth, LayerDrop): a variant runs the first ``k`` encoder
layers, then a decoder; one variant per DVFS level, the deepest meeting the level's deadline
on the measured latency (:mod:`lab.compression.schemes.exit_latency`).

Decoders: one of its own per depth (``exit_heads.k``; the full depth keeps ``decoder``),
not DynaBERT's one shared decoder. DynaBERT drops every other layer of a 12-layer BERT, so
each depth variant still ends on a deep layer's output; here depth 1 of 2 ends on the
first layer's output and depth 0 on the embedding, which one decoder cannot serve as well
as the last layer's without giving up some of the full model's accuracy (the joint loss
trades them). A head of its own costs memory: one more vocab x emb matrix per depth,
which at RT3's sizes is about as large as the two encoder layers together; the bundle
records the choice (``provenance.exits.design.decoders``) and ``design(layers, "shared")``
is DynaBERT's way (every depth reads ``decoder``).

Measured (quick budget, builtin corpus, seed 0, the same dense model, 60 joint steps,
distilled, test split): per-depth decoders 16.12 / 20.71 / 21.55 % at depth 0 / 1 / 2,
shared 15.59 / 20.51 / 21.63 % (dense 21.60 %; without distillation 16.28 / 20.74 / 21.50
against 15.64 / 20.59 / 21.59). Own decoders help the shallow depths (about +0.5 and +0.2
points) and cost the full depth about 0.1 point, one seed: small either way; the memory of
two more decoders is the larger difference.

Depths offered: 0 (the embedding straight to a decoder), 1, ..., the model's layers, all
trained jointly (:mod:`lab.compression.schemes.exit_training`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lab.compression.schemes.exit_variants import scheme_build

if TYPE_CHECKING:
    from lab.compression.schemes.exit_variants import Design

DECODERS = "per-depth"  # or "shared"
DECODER_NOTE = (
    "per-depth: each depth below the full one reads an exit head of its own (exit_heads.k); "
    "DynaBERT shares one decoder, but its depth variants still end on deep layers, while "
    "here depth 1 ends on the first layer's output and depth 0 on the embedding"
)


def design(layers: int, decoders: str = DECODERS) -> Design:
    """The exits trained (every depth 0..layers) and the variants (one per depth).

    >>> d = design(2)
    >>> d.exit_heads, d.heads, list(d.variants)
    ((0, 1), ('exit_heads.0', 'exit_heads.1', 'decoder'), ['depth-0', 'depth-1', 'depth-2'])
    >>> design(2, "shared").heads
    ('decoder', 'decoder', 'decoder')
    """
    from lab.compression.schemes.exit_variants import Design
    from lab.runtime.exits import ExitPlan

    exits = tuple(range(layers + 1))
    own = decoders == "per-depth"
    heads = tuple(f"exit_heads.{k}" if own and k < layers else "decoder" for k in exits)
    variants = {f"depth-{k}": ExitPlan((k,), (h,)) for k, h in zip(exits, heads, strict=True)}
    record = {
        "scheme": "depth",
        "depths": list(exits),
        "decoders": decoders,
        "why": DECODER_NOTE if own else "shared: DynaBERT's one decoder for every depth",
        "rule": "per level the deepest depth whose measured latency meets the deadline; "
        "none: refused under deadlines the user gave, else the fastest depth, recorded as "
        "missing it (provenance.unmet_deadlines)",
    }
    return Design("depth", exits[:-1] if own else (), exits, heads, variants, record)


def _choose(c: Any, times: Any, d: Design, valid: Any) -> Any:
    from lab.compression.schemes.exit_latency import choose_depths

    return choose_depths(c, times, {n: p.exits[0] for n, p in d.variants.items()})


# The depth scheme's bundle: lab.compression.schemes' build(task, profile, opts, reporter)
build = scheme_build(design, _choose)
