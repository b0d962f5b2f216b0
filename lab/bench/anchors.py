"""The named anchors of ``rt3lab bench runtime``: other ways to run the same model and sets.

The runtime (``lab.runtime.ReconfigurableModel``: the native engine, or the torch reference
where the engine cannot run the model) is what the bench reports first; an anchor is what it
is compared with. Each anchor is registered here under its name, which is its key in the
bench's JSON (``anchors`` at the top, ``sets.NAME.anchors`` per set) and its row in the
tables. Two kinds:

- a *model* anchor (``Anchor.model``) returns ``Runs``: its dense model and/or every set
  (and, optionally, the model with its pruned layers answering instantly, ``rest``, which
  bounds its speedup by Amdahl's law), timed in the same interleaved rounds as the runtime:
  ``torch`` (the torch reference's per-layer forms), ``native-per-layer`` (the per-layer C
  kernel in their place), ``executorch`` (the dense model on ExecuTorch XNNPACK);
- a *set* anchor (``Anchor.per_set``) runs one set another way and is built one set at a
  time (each holds a model copy), timed in rounds of its own against the runtime's run of
  that set: ``mask-per-call`` (weight x mask in every call), ``bsr`` (PyTorch BSR),
  ``premasked`` (a dense weight with the mask applied once).

An anchor that cannot run here raises ``AnchorSkipped`` saying why; the bench records it.
Adding one is one function and one ``register`` call (see ``lab/runtime/README.md``).

>>> sorted(ANCHORS)
['bsr', 'executorch', 'mask-per-call', 'native-per-layer', 'premasked', 'torch']
>>> ANCHORS["premasked"].per_set is not None
True
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

    from lab.runtime.measure import Timing
    from lab.runtime.pattern_set import LayerPattern, PatternSet
    from lab.runtime.reconfigurable import ReconfigurableModel

Call = Callable[[], object]
Run = tuple[Callable[[], object], Call]  # (untimed setup, the timed call)


class AnchorSkipped(Exception):  # a signal, not an error: the bench goes on
    """An anchor that cannot run here; the message says why (recorded in the bench's JSON)."""


@dataclass
class Runs:
    """What a model anchor (or the runtime) runs in the bench's rounds: its ``dense`` model,
    its ``sets`` by name, the model with its pruned layers answering instantly (``rest``),
    and ``info``, what ran (versions, kernel, threads)."""

    dense: Run | None = None
    sets: dict[str, Run] = field(default_factory=dict)
    rest: Run | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Subject:
    """What the runtime and every anchor run: the base model with its backbone (never
    modified: each runs a copy), the sets, one input, the runtime, the threads pinned, and
    the torch reference's pool layout and row hint."""

    base: nn.Module
    sets: list[PatternSet]
    inputs: dict[str, Any]
    runtime: ReconfigurableModel
    threads: int
    layout: str = "auto"
    rows: int = 35
    executorch: bool = False
    _torch: ReconfigurableModel | None = field(default=None, init=False, repr=False)
    _serving: Call | None = field(default=None, init=False, repr=False)

    def call(self, model: Callable[..., object]) -> Call:
        """One inference of the input by ``model``."""
        args, kwargs = self.inputs["args"], self.inputs["kwargs"]
        return lambda: model(*args, **kwargs)

    def serving(self) -> Call:
        """One inference of the input by the runtime, the call a serving loop makes
        (``ReconfigurableModel.serving_call``, as the latency table, ``evaluate`` and
        ``profile`` time it); prepared once."""
        if self._serving is None:
            self._serving = self.runtime.serving_call(*self.inputs["args"], **self.inputs["kwargs"])
        return self._serving

    def torch_reference(self) -> ReconfigurableModel:
        """The sets on the torch reference (the runtime itself where it runs on it)."""
        from lab.runtime.reconfigurable import ReconfigurableModel

        if self.runtime.executor == "torch":
            return self.runtime
        if self._torch is None:
            self._torch = ReconfigurableModel(
                copy.deepcopy(self.base),
                self.sets,
                executor="torch",
                layout=self.layout,
                rows_hint=self.rows,
            )
        return self._torch


@dataclass(frozen=True)
class Anchor:
    """A named way to run the model or a set, to compare the runtime with (see the module)."""

    name: str
    what: str
    model: Callable[[Subject], Runs] | None = None
    per_set: Callable[[Subject, PatternSet], Call] | None = None


ANCHORS: dict[str, Anchor] = {}


def register(anchor: Anchor) -> Anchor:
    """Add ``anchor`` to the bench (its name must be new); returns it."""
    if anchor.name in ANCHORS:
        raise ValueError(f"anchor {anchor.name!r} is registered already")
    if (anchor.model is None) == (anchor.per_set is None):
        raise ValueError(f"anchor {anchor.name!r}: give exactly one of model and per_set")
    ANCHORS[anchor.name] = anchor
    return anchor


def runtime_runs(subject: Subject) -> Runs:
    """The runtime's own runs: dense and every set, switched as a user switches (a set with
    several exits once per exit: ``lab.bench.scheme_variants.runtime_set_runs``); on the
    torch reference also its ``rest`` (the engine cannot stub its layers)."""
    from lab.bench.scheme_variants import runtime_set_runs

    rm, call = subject.runtime, subject.serving()
    dense, sets = runtime_set_runs(rm, call)
    runs = Runs(dense=dense, sets=sets)
    if rm.executor == "torch":
        runs.rest = _rest(rm, call)
    return runs


def _rest(rm: ReconfigurableModel, call: Call) -> Run:
    from lab.bench.layer_forms import instant_forms

    stubs = instant_forms(rm.switchable_linears())
    return (lambda: rm.activate_forms(stubs), call)


def _torch_runs(subject: Subject) -> Runs:
    if subject.runtime.executor == "torch":
        raise AnchorSkipped(
            f"the runtime runs the torch reference ({subject.runtime.fallback_reason})"
        )
    rm = subject.torch_reference()
    call = subject.call(rm)
    return Runs(
        dense=(lambda: rm.switch(None), call),
        sets={n: (lambda n=n: rm.switch(n), call) for n in rm.set_names},
        rest=_rest(rm, call),
        info={"layout": rm.layout},
    )


def _native_per_layer_runs(subject: Subject) -> Runs:
    from lab.bench import layer_forms as L
    from lab.runtime import native

    if native.kernel() is None:
        raise AnchorSkipped(f"native kernel unavailable: {native.status()}")
    rm = subject.torch_reference()
    linears = rm.switchable_linears()
    dense = L.native_dense_forms(linears) or {}
    forms = {n: dict(rm.forms[n]) for n in rm.set_names}  # the torch forms where C cannot
    for layer, m in linears.items():
        pats = {n: ps.layers[layer] for n, ps in rm.patterns.items() if layer in ps.layers}
        try:
            pool = L.NativeBlockColumnPool(m.weight.detach(), _bias(m), pats)
        except ValueError:  # not block-column, not 32 rows high, not float32
            continue
        for n in pats:
            forms[n][layer] = pool.form(n)
    call = subject.call(rm)
    return Runs(
        dense=(lambda: rm.activate_forms(dense), call),
        sets={n: (lambda f=f: rm.activate_forms(f), call) for n, f in forms.items()},
        info={"kernel": native.status()},
    )


def _executorch_runs(subject: Subject) -> Runs:
    from lab.bench.executorch import executorch_dense

    if not subject.executorch:
        raise AnchorSkipped("not asked for (--executorch, or install the 'anchors' extra)")
    run, info = executorch_dense(subject.base, subject.inputs, subject.threads)
    return Runs(dense=(lambda: None, run), info=info)


def layer_anchor(
    subject: Subject,
    ps: PatternSet,
    form: Callable[[torch.Tensor, torch.Tensor | None, LayerPattern], Any],
) -> Call:
    """One inference of set ``ps`` on a copy of the model whose pruned Linear layers run
    ``form(weight, bias, pattern)`` (embeddings keep the torch reference's forms)."""
    from lab.runtime.reconfigurable import ReconfigurableModel

    rm = ReconfigurableModel(copy.deepcopy(subject.base), [ps], executor="torch")
    forms = dict(rm.forms[ps.name])
    for name, m in rm.switchable_linears().items():
        if name in ps.layers:
            forms[name] = form(m.weight.detach(), _bias(m), ps.layers[name])
    rm.activate_forms(forms)
    return subject.call(rm)


def _mask_per_call(subject: Subject, ps: PatternSet) -> Call:
    from lab.bench.layer_forms import MaskPerCallLinear

    return layer_anchor(subject, ps, lambda w, b, p: MaskPerCallLinear(w, b, p.mask()))


def _bsr(subject: Subject, ps: PatternSet) -> Call:
    from lab.bench.layer_forms import BsrLinear

    return layer_anchor(subject, ps, lambda w, b, p: BsrLinear(w * p.mask(), b, int(p.block_rows)))


def _premasked(subject: Subject, ps: PatternSet) -> Call:
    from lab.runtime.reconfigurable import premasked_linear

    return layer_anchor(subject, ps, lambda w, b, p: premasked_linear(w, b, p.mask()))


def _bias(module: nn.Module) -> torch.Tensor | None:
    return None if module.bias is None else module.bias.detach()


def switch_anchors(module: nn.Module, sets: list[PatternSet], reps: int) -> dict[str, Timing]:
    """RT3-style switching on a plain model, alternating between two sets.

    ``mask-reapply``: every pruned weight rewritten as ``torch.mul(w0, mask, out=w)`` from a
    kept copy of the backbone. ``load_state_dict``: precomputed masked weights copied in.
    """
    import torch

    from lab.runtime.measure import interleaved

    plain = copy.deepcopy(module).eval()
    mods = dict(plain.named_modules())
    pair = sets[:2] if len(sets) > 1 else sets * 2
    layers = sorted(set(pair[0].layers) | set(pair[1].layers))
    w0 = {n: mods[n].weight.detach().clone() for n in layers}
    ones = {n: torch.ones_like(w0[n], dtype=torch.bool) for n in layers}
    masks = [{n: p.layers[n].mask() if n in p.layers else ones[n] for n in layers} for p in pair]
    states = [{f"{n}.weight": w0[n] * m[n] for n in layers} for m in masks]
    weights = {n: mods[n].weight for n in layers}
    state = [0]

    def reapply() -> None:
        state[0] ^= 1
        with torch.no_grad():
            for n in layers:
                torch.mul(w0[n], masks[state[0]][n], out=weights[n])

    def load() -> None:
        state[0] ^= 1
        plain.load_state_dict(states[state[0]], strict=False)

    return interleaved({"mask-reapply": reapply, "load_state_dict": load}, reps, 1, 1)


register(
    Anchor(
        "torch",
        "the torch reference: PyTorch per-layer compact forms (lab.runtime.kernels)",
        model=_torch_runs,
    )
)
register(
    Anchor(
        "native-per-layer",
        "the per-layer C kernel (lab.runtime.native) in the torch reference's place",
        model=_native_per_layer_runs,
    )
)
register(Anchor("executorch", "the dense model on ExecuTorch XNNPACK", model=_executorch_runs))
register(
    Anchor("mask-per-call", "F.linear(x, weight * mask) in every call", per_set=_mask_per_call)
)
register(Anchor("bsr", "the masked weight in PyTorch BSR, torch.addmm", per_set=_bsr))
register(
    Anchor("premasked", "a dense weight with the mask applied once, at load", per_set=_premasked)
)
