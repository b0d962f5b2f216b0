"""``rt3lab bench runtime`` on a width, depth or early-exit bundle: every variant on the
runtime, against the runtime's own dense model and its FLOP limit.

A width variant is a set of whole heads and neurons removed; a depth variant runs the first
``k`` encoder layers and one decoder; an early-exit variant is timed once per exit, the
exit forced (``ReconfigurableModel.force_exit``: the layers up to it and every earlier
exit scored, what an input stopping there costs, as
``lab.compression.schemes.exit_latency`` times it). Its row's own figures are its last
exit's (an input that never reaches the threshold); ``per_exit`` lists every exit's.

**FLOP limit** (``flop_speedup_limit``, :func:`variant_ops`): the dense model's op count
over the variant's, both by RT3's rule as :func:`lab.runtime.synthetic.rt3_opcount` counts
(per token the kept weights of every ``Linear`` run, one multiply-add each, plus attention's
``2 x seq_len x emb`` per encoder layer; times the tokens), of what the engine runs:

- the encoder layers up to the exit, and the decoder of every exit scored on the way (a
  model's exit heads count only where the variant reads them; dense: every layer, then
  ``decoder``);
- attention for the heads the engine computes in a layer (``engine.c``'s ``live_heads``:
  those the set's ``out_proj`` reads a column of; every head where it leaves ``out_proj``
  dense), so a width variant's attention shrinks with its heads.

The embedding is a lookup, no multiply, and is not counted (the bundle's
``nonzero_mults``, ``lab.compression.latency.estimators.op_counts``, counts it as vocab x
emb per token: a term no variant shrinks, which would lower every limit). The measured
speedup over it is ``speedup_over_limit`` (of the limit), as for RT3's sets, whose limit
counts the pruned layers alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from lab.bench.anchors import Call, Run
    from lab.bench.runtime import Measured
    from lab.runtime.pattern_set import LayerPattern, PatternSet
    from lab.runtime.reconfigurable import ReconfigurableModel

LINEARS = ("self_attn.in_proj", "self_attn.out_proj", "linear1", "linear2")
FLOP_LIMIT = (
    "dense ops / the variant's, RT3's count (rt3_opcount: kept Linear weights plus "
    "2 x seq x emb attention per layer, per token) of what the engine runs: the layers up "
    "to the exit, every decoder scored on the way, attention for the heads it computes; the "
    "embedding (a lookup) not counted"
)
SKIPPED = "the anchors run a set's masks, not its exits (depth and early-exit variants)"


def live_heads(out_proj: LayerPattern | None, heads: int) -> int:
    """Heads whose attention the engine computes in a layer: those whose columns the set's
    ``out_proj`` reads (all ``heads`` where the set leaves it dense).

    >>> import torch
    >>> from lab.runtime.pattern_set import LayerPattern
    >>> mask = torch.zeros(4, 4, dtype=torch.bool); mask[:, :2] = True
    >>> live_heads(LayerPattern.from_mask("o", mask, 2, 2), 2), live_heads(None, 2)
    (1, 2)
    """
    if out_proj is None:
        return heads
    read = out_proj.mask().any(dim=0)
    return int(read.reshape(heads, -1).any(dim=1).sum())


def variant_ops(model: nn.Module, ps: PatternSet | None, seq_len: int, stop: int = -1) -> int:
    """Op count of one inference of ``seq_len`` tokens by RT3's Transformer LM ``model``
    under set ``ps`` (None: dense) stopping at exit ``stop`` of its plan (see the module).

    >>> from lab.model.transformer import RT3TransformerLM
    >>> from lab.runtime.synthetic import rt3_opcount
    >>> m = RT3TransformerLM(50, emb=16, ff=8, layers=2, heads=2)
    >>> variant_ops(m, None, 5) == rt3_opcount(m, None, 5)
    True
    """
    from lab.runtime.exits import ExitPlan

    config = model.config
    layers = {} if ps is None else ps.layers
    plan = ExitPlan.of_meta({} if ps is None else ps.meta, config.layers)
    stop = stop % len(plan.exits)

    def kept(name: str) -> int:
        pat = layers.get(name)
        return pat.nnz if pat is not None else model.get_submodule(name).weight.numel()

    head_size = config.emb // config.heads
    per_token = sum(kept(h) for h in plan.heads[: stop + 1])
    for i in range(plan.exits[stop]):
        live = live_heads(layers.get(f"layers.{i}.self_attn.out_proj"), config.heads)
        per_token += sum(kept(f"layers.{i}.{n}") for n in LINEARS)
        per_token += 2 * seq_len * head_size * live
    return seq_len * per_token


def exit_key(name: str, stop: int, exits: int) -> str:
    """A variant's name in the bench's rounds: the set's for its last exit, ``NAME@exitI``
    for an earlier one (``@`` is in no set name).

    >>> exit_key("ee", 0, 2), exit_key("ee", 1, 2)
    ('ee@exit0', 'ee')
    """
    return name if stop == exits - 1 else f"{name}@exit{stop}"


def runtime_set_runs(rm: ReconfigurableModel, call: Call) -> tuple[Run, dict[str, Run]]:
    """The runtime's dense run and every set's (:func:`exit_key`): switched as a user
    switches, a set with several exits once per exit, forced (the others unforced)."""

    def select(name: str | None, stop: int | None) -> Callable[[], None]:
        def setup() -> None:
            rm.switch(name)
            rm.force_exit(stop)

        return setup

    runs: dict[str, Run] = {}
    for name in rm.set_names:
        plan = rm.plans.get(name)
        n = 1 if plan is None else len(plan.exits)
        for i in range(n):
            runs[exit_key(name, i, n)] = (select(name, i if n > 1 else None), call)
    return (select(None, None), call), runs


def variant_rows(
    base: nn.Module,
    rm: ReconfigurableModel,
    sets: list[PatternSet],
    m: Measured,
    seq_len: int,
    key: Callable[[str], str],
) -> dict[str, dict[str, Any]]:
    """Every set's row (``key(name)``: its run's key in ``m``): its figures against the
    dense run ``key("")`` and the FLOP limit, and for several exits ``per_exit``."""
    dense_ops = variant_ops(base, None, seq_len)
    out = {}
    for ps in sets:
        plan = rm.plans.get(ps.name)
        n = 1 if plan is None else len(plan.exits)
        exits = []
        for i in range(n):
            ops = variant_ops(base, ps, seq_len, i)
            row = _figures(m, key(""), key(exit_key(ps.name, i, n)), dense_ops, ops)
            if plan is not None:
                row = {"exit_layers": plan.exits[i], "decoder": plan.heads[i], **row}
            exits.append(row)
        row = {"density": ps.density, **exits[-1]}
        if n > 1:
            row.update(threshold=plan.threshold, per_exit=exits)  # type: ignore[union-attr]
        out[ps.name] = {**row, "anchors": {}}
    return out


def _figures(m: Measured, dense: str, run: str, dense_ops: int, ops: int) -> dict[str, Any]:
    row = m.row(dense, run, dense_ops / max(1, ops))
    return {**row, "ops_per_inference": {"dense": dense_ops, "set": ops}}
