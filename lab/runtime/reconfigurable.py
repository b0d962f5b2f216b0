"""The runtime: a model that holds every pattern set ready to run and switches between them.

``ReconfigurableModel(module, sets)`` runs the whole model on the native engine
(``lab.runtime.engine``, RT3's Transformer LM in C, every set an index table over one copy of
the weights): that is the runtime, what ``evaluate``, ``profile`` and the demo run. Where
the engine cannot run the model (a Hugging Face model, float64 weights, no C compiler) the
default executor ``auto`` falls back to the torch reference, and says why
(``fallback_reason``). ``executor="engine"`` insists on the engine; ``executor="torch"``
asks for the reference, for correctness checks and for the latency table's per-layer
timings.

The torch reference replaces each ``nn.Linear``/``nn.Embedding`` that any set names (by
qualified module name) with a switchable layer and prebuilds, for every set, the layer's
executable form (``lab.runtime.kernels``): compact block-column weights shared by all sets
of the layer, a pre-masked dense weight for elementwise patterns. Other ways of running the
same masks (per-layer C kernel, BSR, the mask applied per call, ExecuTorch) are anchors of
``rt3lab bench runtime`` (``lab.bench.anchors``), not runtime options.

The active set is one reference (the engine's selected index table, or a ``dict`` from
layer name to prepared form that every switchable layer reads); ``switch`` replaces it and
touches no weight data. A set may also say how deep it runs and where inputs may stop
early (``lab.runtime.exits``: the depth and early-exit schemes); ``last_exits`` then says
which exit each row of the last inference took, and ``force_exit`` times one exit. Thread
safety: a forward pass holds the model's lock from start to
end and ``switch`` takes the same lock, so a switch requested during an inference waits for
it to finish and one inference never mixes two sets. A ``generation`` counter increases
with every switch.

>>> import torch
>>> from lab.runtime.pattern_set import PatternSet
>>> net = torch.nn.Sequential(torch.nn.Linear(8, 12), torch.nn.ReLU(), torch.nn.Linear(12, 4))
>>> half = torch.ones(12, 8, dtype=torch.bool); half[:, :4] = False
>>> rm = ReconfigurableModel(net, [PatternSet.from_masks("half", {"0": half}, 4, 4)])
>>> rm.executor, rm.fallback_reason
('torch', 'the engine runs RT3TransformerLM, not Sequential')
>>> rm.set_names, rm.active
(['half'], None)
>>> took = rm.switch("half")
>>> rm.active, took < 0.01
('half', True)
>>> x = torch.randn(3, 8)
>>> ref = net[2](torch.relu(torch.nn.functional.linear(x, net[0].weight * half, net[0].bias)))
>>> torch.allclose(rm(x), ref, atol=1e-5)
True
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from lab.runtime import kernels as K
from lab.runtime.pattern_set import LayerPattern, PatternSet

if TYPE_CHECKING:
    from lab.runtime.bundle import Bundle

# "auto": the engine where it can run the model, else the torch reference
EXECUTORS = ("auto", "engine", "torch")
# The rows (tokens x batch) the torch reference's pool layout is chosen for by default:
# RT3's sequence length.
DEFAULT_ROWS = 35
# A set runs on the layer's shared pool unless that costs more than this factor of the
# multiply-adds it would do on a pool of its own (sets not nested in the others, or ragged
# block-rows bucketed by another set's counts), memory budget permitting. 1.0 measured best
# on the built-in bundle (its decoder sets are ragged); nested uniform sets never pay.
SHARE_WASTE_LIMIT = 1.0
# Shared pool layouts (``lab.runtime.kernels.LAYOUTS``) or "auto": by ``rows_hint``.
LAYOUTS = ("auto", *K.LAYOUTS)


class ReconfigurationError(ValueError):
    """Bad runtime input (unknown set, a set naming a missing or unsupported layer)."""


class _Active:
    """The active set's forms, shared by every switchable layer: one reference to swap."""

    __slots__ = ("forms",)

    def __init__(self, forms: dict[str, K.Kernel]):
        self.forms = forms


class SwitchableLinear(nn.Module):
    """An ``nn.Linear`` stand-in running whichever form the active set prepared for it."""

    def __init__(self, name: str, linear: nn.Linear, active: _Active):
        super().__init__()
        self.name = name
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight, self.bias = linear.weight, linear.bias  # the backbone, shared
        self._active = active
        self.dense = K.DenseLinear(self.weight, self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._active.forms.get(self.name, self.dense)(x)


class SwitchableEmbedding(nn.Module):
    """An ``nn.Embedding`` stand-in (lookup, then the active set's mask on the rows)."""

    def __init__(self, name: str, emb: nn.Embedding, active: _Active):
        super().__init__()
        self.name = name
        self.num_embeddings, self.embedding_dim = emb.num_embeddings, emb.embedding_dim
        self.padding_idx = emb.padding_idx
        self.weight = emb.weight
        self._active = active
        self.dense = K.DenseEmbedding(self.weight, self.padding_idx)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self._active.forms.get(self.name, self.dense)(tokens)


@dataclass
class MemoryReport:
    """Bytes held: the backbone (every parameter and buffer, once) and the sets' forms.

    ``pruned_dense_bytes`` is one dense copy of the weights of the layers any set prunes;
    the claim to check is ``sets_total_bytes < pruned_dense_bytes``. ``shared_bytes`` are
    the compact weight pools all block-column sets share (padding and bias copies
    included); a set's own bytes are its gather indices, embedding mask tables, and any
    pre-masked dense weights (elementwise patterns).
    """

    backbone_bytes: int
    pruned_dense_bytes: int
    shared_bytes: int = 0
    set_bytes: dict[str, int] = field(default_factory=dict)
    # the native engine's own copy of the backbone (blocked layout), when it runs the model:
    # a second backbone, not a set's cost (its sets are their index tables)
    engine_bytes: int = 0

    @property
    def sets_total_bytes(self) -> int:
        """All sets together: the shared compact pools plus every set's own bytes."""
        return self.shared_bytes + sum(self.set_bytes.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "backbone_bytes": self.backbone_bytes,
            "pruned_dense_bytes": self.pruned_dense_bytes,
            "shared_compact_bytes": self.shared_bytes,
            "sets": dict(self.set_bytes),
            "sets_total_bytes": self.sets_total_bytes,
            "sets_over_pruned_dense": self.sets_total_bytes / max(1, self.pruned_dense_bytes),
            "engine_bytes": self.engine_bytes,
        }


def build_form(module: nn.Module, pattern: LayerPattern) -> K.Kernel:
    """The torch reference's form of one layer (``nn.Linear`` or ``nn.Embedding``) under a
    pattern, with compact weights of its own: block-column compact, else pre-masked dense."""
    weight = module.weight.detach()
    if isinstance(module, nn.Embedding | SwitchableEmbedding):
        if pattern.family == "block-column":
            return K.BlockColumnEmbedding(weight, module.padding_idx, pattern)
        return K.DenseEmbedding(weight * pattern.mask(), module.padding_idx, owned=True)
    if pattern.family == "block-column":
        return K.BlockColumnLinear.build(weight, _bias(module), pattern)
    # elementwise patterns: a dense weight with the mask applied once, at load
    return premasked_linear(weight, _bias(module), pattern.mask())


def premasked_linear(
    weight: torch.Tensor, bias: torch.Tensor | None, mask: torch.Tensor
) -> K.DenseLinear:
    """A dense form of ``weight * mask``: a copy of its own, or, where the mask keeps every
    non-zero of ``weight`` (a set that prunes nothing beyond BP in this layer, or only
    columns BP already zeroed), the backbone weight itself at no extra bytes."""
    masked = weight * mask
    if torch.equal(masked, weight):
        return K.DenseLinear(weight, bias, owned=False)
    return K.DenseLinear(masked, bias, owned=True)


class ReconfigurableModel(nn.Module):
    """A module that runs the active pattern set: the whole model on the native engine (the
    runtime), or the torch reference's per-layer forms (``executor``: see the module)."""

    def __init__(
        self,
        module: nn.Module,
        sets: Iterable[PatternSet],
        executor: str = "auto",
        active: str | None = None,
        layout: str = "auto",
        rows_hint: int = DEFAULT_ROWS,
        engine_threads: int = 1,
    ):
        super().__init__()
        if executor not in EXECUTORS:
            raise ReconfigurationError(f"executor {executor!r} is not one of {EXECUTORS}")
        if layout not in LAYOUTS:
            raise ReconfigurationError(f"layout {layout!r} is not one of {LAYOUTS}")
        if layout == "auto":
            # one strided GEMM per bucket pays at many rows; at one token contiguous
            # segments stream weights better (whole model, weights beyond the caches)
            layout = "views" if rows_hint >= K.ROW_GATHER_MIN_TOKENS else "segments"
        self.layout = layout
        self.module = module.eval()
        self._lock = threading.Lock()
        self._active = _Active({})
        self._active_name: str | None = None
        self.generation = 0
        sets = list(sets)
        layers = _pruned_layers(module, sets)
        self.layer_names = sorted(layers)
        self.patterns = {ps.name: ps for ps in sets}
        self.pools: dict[str, K.BlockColumnPool] = {}
        self.forms: dict[str, dict[str, K.Kernel]] = {ps.name: {} for ps in sets}
        self.plans = _plans(module, sets)  # set -> ExitPlan, for sets that name exits
        self.last_exits: list[int] = []  # the exit each row of the last inference took
        self._force: int | None = None
        self.engine: Any = None  # lab.runtime.engine.Engine running the whole model, or None
        self.fallback_reason: str | None = None  # why auto runs the torch reference
        if executor != "torch":
            self.engine, why = _engine_for(module, sets, engine_threads)
            if self.engine is None and executor == "engine":
                raise ReconfigurationError(f"executor 'engine': {why}")
            self.fallback_reason = why
        self.executor = "torch" if self.engine is None else "engine"
        if self.engine is None:
            with torch.no_grad():
                self._build_torch_forms(sets, layers)
        for name, mod in layers.items():
            wrapper = (
                SwitchableLinear(name, mod, self._active)
                if isinstance(mod, nn.Linear)
                else SwitchableEmbedding(name, mod, self._active)
            )
            _replace(self.module, name, wrapper)
        if active is not None:
            self.switch(active)

    def _build_torch_forms(self, sets: list[PatternSet], layers: dict[str, nn.Module]) -> None:
        """Every set's forms: block-column Linears on one compact pool per layer shared by
        its sets (one of its own for a set the sharing pads, while all sets stay under one
        dense copy of the pruned layers), the rest ``build_form``'s."""
        padded: list[tuple[float, str, str]] = []
        for layer, mod in layers.items():
            pats = {ps.name: ps.layers[layer] for ps in sets if layer in ps.layers}
            pooled = _poolable(mod, pats)
            if pooled:
                self.pools[layer] = K.BlockColumnPool(
                    mod.weight.detach(), _bias(mod), pooled, self.layout
                )
            for n, p in pats.items():
                if n not in pooled:
                    self.forms[n][layer] = build_form(mod, p)
                    continue
                form = self.forms[n][layer] = self.pools[layer].form(n)
                own_rows = _padded_rows(p)
                if len(pooled) > 1 and form.macs_per_row > SHARE_WASTE_LIMIT * own_rows:
                    # padded in the shared layout: a pool of its own runs fewer MACs
                    padded.append(((form.macs_per_row - own_rows) / max(1, own_rows), layer, n))
        budget = sum(m.weight.numel() * m.weight.element_size() for m in layers.values())
        for _, layer, n in sorted(padded, reverse=True):  # most MACs saved first
            mod = layers[layer]
            own = K.BlockColumnPool(
                mod.weight.detach(), _bias(mod), {n: self.patterns[n].layers[layer]}
            )
            form = own.form(n)
            if self._spent() + own.nbytes + form.nbytes - self.forms[n][layer].nbytes < budget:
                self.pools[f"{layer}#{n}"] = own
                self.forms[n][layer] = form
        for key, pool in list(self.pools.items()):  # free the pools no set runs on any more
            if not self._serves_any(key, pool):
                del self.pools[key]

    def _spent(self) -> int:
        """Bytes all sets hold now: the compact pools some form still runs on, plus every
        form's own bytes (a pool no set runs on any more is as good as freed)."""
        return sum(p.nbytes for k, p in self.pools.items() if self._serves_any(k, p)) + sum(
            f.nbytes for forms in self.forms.values() for f in forms.values()
        )

    def _serves_any(self, key: str, pool: K.BlockColumnPool) -> bool:
        """Whether some set's current form runs on ``pool`` (registered under ``key``:
        the layer, then ``#`` and the set of a pool of its own)."""
        layer = key.split("#", 1)[0]
        forms = [self.forms[n].get(layer) for n in pool.keep]
        return any(f is not None and pool.serves(f) for f in forms)

    def form_kinds(self) -> dict[str, dict[str, str]]:
        """Per set, per layer: the kind of form that runs (``engine`` for every layer where
        the engine runs the whole model)."""
        if self.engine is not None:
            return {n: dict.fromkeys(ps.layers, "engine") for n, ps in self.patterns.items()}
        return {n: {layer: f.kind for layer, f in forms.items()} for n, forms in self.forms.items()}

    def switchable_linears(self) -> dict[str, SwitchableLinear]:
        """The pruned Linear layers in place in the module, by qualified name."""
        return {n: m for n, m in self.module.named_modules() if isinstance(m, SwitchableLinear)}

    @classmethod
    def from_bundle(
        cls,
        bundle: Bundle,
        executor: str = "auto",
        active: str | None = None,
        layout: str = "auto",
        engine_threads: int = 1,
    ) -> ReconfigurableModel:
        """Build the bundle's model, load the backbone, and prepare every set (the native
        engine, where it runs them, on ``engine_threads`` threads)."""
        return cls(
            module_from_bundle(bundle),
            bundle.sets.values(),
            executor=executor,
            active=active,
            layout=layout,
            engine_threads=engine_threads,
        )

    @property
    def set_names(self) -> list[str]:
        """The sets that can be switched to, in load order."""
        return list(self.forms)

    @property
    def active(self) -> str | None:
        """The active set's name, or None for the backbone run dense."""
        return self._active_name

    def switch(self, name: str | None) -> float:
        """Make ``name`` the active set (None: backbone dense); returns seconds it took.

        Waits for a running inference to finish; never touches weight data.
        """
        t0 = time.perf_counter()
        if name is not None and name not in self.forms:
            raise ReconfigurationError(f"no pattern set {name!r}; have {self.set_names}")
        forms = {} if name is None else self.forms[name]
        with self._lock:
            self._active.forms = forms
            if self.engine is not None:
                self.engine.select(name)
            self._active_name = name
            self.generation += 1
        return time.perf_counter() - t0

    def activate_forms(self, forms: dict[str, K.Kernel]) -> None:
        """Run these per-layer forms (layer name -> form; every other layer dense) until the
        next ``switch``: a variant to measure (one layer at a set's pattern, a layer form
        of a bench anchor), not a set. The torch reference only."""
        if self.engine is not None:
            raise ReconfigurationError("activate_forms: the engine runs this model, not forms")
        with self._lock:
            self._active.forms = forms
            self._active_name = None
            self.generation += 1

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the wrapped module under the active set (inference mode, one set throughout)."""
        if self.engine is not None:  # no autograd to switch off: numpy in C, torch out
            if kwargs or len(args) != 1:
                raise ReconfigurationError("the engine takes one (batch, seq) token tensor")
            with self._lock:
                out = self.engine(args[0])
                self.last_exits = list(self.engine.exits)
                return out
        with self._lock, torch.inference_mode():
            plan = self.plans.get(self._active_name or "")
            if plan is None:
                return self.module(*args, **kwargs)
            out, self.last_exits = self.module.run_exits(
                *args, plan.exits, plan.heads, plan.threshold, self._force
            )
            return out

    def force_exit(self, index: int | None) -> None:
        """Stop every inference at exit ``index`` of the active set's exits (scoring the
        earlier ones as usual, so a timed call costs what an input exiting there costs);
        None: the threshold decides again. What per-exit latency is measured with."""
        with self._lock:
            self._force = None if index is None else max(0, int(index))
            if self.engine is not None:
                self.engine.force_exit(self._force)

    def last_exit(self) -> int:
        """The exit the last sequence run took (after a :meth:`serving_call` too)."""
        if self.engine is not None:
            return self.engine.last_exit()[0]
        return self.last_exits[-1] if self.last_exits else 0

    def serving_call(self, *args: Any, **kwargs: Any) -> Callable[[], Any]:
        """One inference of these inputs prepared as a serving loop makes it: a call without
        arguments that runs the active set (the one at call time) and returns its output.

        What the latency table, ``evaluate`` and ``profile`` time (and ``bench runtime``'s
        runtime figures). On the engine the tokens are converted and the logits' buffer
        allocated once, each row bound to its buffers (:meth:`Engine.bind
        <lab.runtime.engine.Engine.bind>`): a call is the model's lock and the bound calls,
        and returns the same ``(batch, seq, vocab)`` tensor each time, overwritten. The
        general call ``self(tokens)`` converts and allocates per inference (fresh logits,
        4 MiB at RT3's vocabulary): 40-55 us more at vocabulary 8000 and 35 tokens (``bench
        runtime``'s ``serving.call_overhead_us``), a fifth of a 0.2 ms set. ``call.tokens``
        is the int64 ``(batch, seq)`` array it reads: write new tokens there in place;
        ``call.logits`` the tensor it writes. On the
        torch reference a call is ``forward`` on the inputs."""
        lock = self._lock
        if self.engine is None:
            forward = self.forward

            def reference() -> Any:
                return forward(*args, **kwargs)

            return reference
        if kwargs or len(args) != 1:
            raise ReconfigurationError("the engine takes one (batch, seq) token tensor")
        tokens, logits, rows = self._bound_rows(args[0])
        if len(rows) == 1:
            run = rows[0]

            def call() -> torch.Tensor:  # one row: the lock and the bound call, no loop
                with lock:
                    run()
                return logits

        else:

            def call() -> torch.Tensor:
                with lock:
                    for row in rows:
                        row()
                return logits

        call.tokens = tokens  # type: ignore[attr-defined]
        call.logits = logits  # type: ignore[attr-defined]
        return call

    def _bound_rows(self, tokens: torch.Tensor) -> tuple[Any, torch.Tensor, list[Any]]:
        """(int64 tokens as numpy, the logits' tensor, each row's bound engine call)."""
        import numpy as np

        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.numel() == 0:
            shape = tuple(getattr(tokens, "shape", ()))
            raise ReconfigurationError(f"tokens: expected a (batch, seq) tensor, got {shape}")
        toks = np.ascontiguousarray(tokens.detach().to(torch.int64).numpy())
        rows, out = self.engine.bind_rows(toks)
        return toks, torch.from_numpy(out), rows

    def memory(self) -> MemoryReport:
        """Bytes of the backbone and of each set's prepared forms."""
        seen: set[int] = set()
        backbone = 0
        for t in [*self.module.parameters(), *self.module.buffers()]:
            if t.data_ptr() not in seen:
                seen.add(t.data_ptr())
                backbone += t.numel() * t.element_size()
        modules = dict(self.module.named_modules())
        pruned = sum(
            modules[n].weight.numel() * modules[n].weight.element_size() for n in self.layer_names
        )
        sets = {name: sum(f.nbytes for f in forms.values()) for name, forms in self.forms.items()}
        shared = sum(p.nbytes for p in self.pools.values())
        engine = 0
        if self.engine is not None:  # the engine's own copy of the weights, and its tables
            sizes = self.engine.array_bytes
            engine = sum(v for k, v in sizes.items() if not k.startswith("sets."))
            sets = {n: sum(v for k, v in sizes.items() if k.startswith(f"sets.{n}.")) for n in sets}
        return MemoryReport(backbone, pruned, shared, sets, engine)

    def macs_per_token(self, name: str | None) -> tuple[int, int]:
        """(dense, active) multiply-accumulates per token in the pruned layers of set ``name``.

        Counts kept weights (``nnz``) of Linear layers; embeddings do no GEMM work.
        """
        linears = self.switchable_linears()
        dense = sum(m.weight.numel() for m in linears.values())
        if name is None:
            return dense, dense
        layers = self.patterns[name].layers
        kept = sum(layers[n].nnz if n in layers else m.weight.numel() for n, m in linears.items())
        return dense, kept


def _plans(module: nn.Module, sets: list[PatternSet]) -> dict[str, Any]:
    """The exit plans of the sets that name exits, checked against the model."""
    from lab.runtime.exits import ExitPlan, check_plan, plan_of

    planned = [ps for ps in sets if plan_of(ps.meta)]
    config = getattr(module, "config", None)
    if planned and not hasattr(module, "run_exits"):
        raise ReconfigurationError(
            f"set {planned[0].name!r} names exits; {type(module).__name__} has none"
        )
    plans = {}
    for ps in planned:
        raw = (ps.meta.get(k) for k in ("exits", "heads", "threshold"))
        heads = list(config.exit_heads)
        check_plan(*raw, config.layers, heads, f"set {ps.name}", ReconfigurationError)
        plans[ps.name] = ExitPlan.of_meta(ps.meta, config.layers)
    return plans


def _pruned_layers(module: nn.Module, sets: list[PatternSet]) -> dict[str, nn.Module]:
    """The layers any set names, checked: in the model, Linear or Embedding, mask's shape."""
    modules = dict(module.named_modules())
    layers: dict[str, nn.Module] = {}
    for ps in sets:
        for layer, pat in ps.layers.items():
            mod = modules.get(layer)
            if mod is None:
                raise ReconfigurationError(f"set {ps.name!r}: layer {layer!r} is not in the model")
            if not isinstance(mod, nn.Linear | nn.Embedding):
                raise ReconfigurationError(
                    f"set {ps.name!r}: layer {layer!r} is a {type(mod).__name__}, "
                    "expected nn.Linear or nn.Embedding"
                )
            if tuple(mod.weight.shape) != pat.shape:
                raise ReconfigurationError(
                    f"set {ps.name!r}: layer {layer!r} weight {tuple(mod.weight.shape)} "
                    f"but mask {pat.shape}"
                )
            layers[layer] = mod
    return layers


def _poolable(module: nn.Module, pats: dict[str, LayerPattern]) -> dict[str, LayerPattern]:
    """The patterns of a Linear layer that share one compact pool: its block-column ones,
    when they have one block height (else none: each set gets a form of its own)."""
    if not isinstance(module, nn.Linear):
        return {}
    pooled = {n: p for n, p in pats.items() if p.family == "block-column"}
    return pooled if len({int(p.block_rows) for p in pooled.values()}) == 1 else {}


def _engine_for(
    module: nn.Module, sets: list[PatternSet], threads: int = 1
) -> tuple[Any, str | None]:
    """The native engine (``lab.runtime.engine``) loaded with ``module`` and ``sets`` on
    ``threads`` threads, or
    None and why it cannot run them (not RT3's Transformer LM, float64 weights, a set the
    export refuses, no compiler)."""
    from lab.model.transformer import RT3TransformerLM
    from lab.runtime import engine as E
    from lab.runtime.export import ExportError

    if not isinstance(module, RT3TransformerLM):
        return None, f"the engine runs RT3TransformerLM, not {type(module).__name__}"
    if E.library() is None:
        return None, f"native engine unavailable: {E.status()}"
    if any(p.dtype != torch.float32 for p in module.parameters()):
        return None, "the engine runs float32 weights only"
    try:
        config, state = module.config.to_dict(), module.state_dict()
        return E.Engine.from_model(config, state, sets, threads), None
    except (ExportError, E.EngineError) as exc:
        return None, str(exc)


def _bias(module: nn.Module) -> torch.Tensor | None:
    return None if getattr(module, "bias", None) is None else module.bias.detach()


def _padded_rows(pattern: LayerPattern) -> int:
    """Multiply-adds per token of a pattern on its own pool (padding included)."""
    counts = pattern.kept_counts().tolist()
    B = int(pattern.block_rows)
    return sum(len(g) * max(counts[b] for b in g) * B for g in K._buckets(counts, B))


def module_from_bundle(bundle: Bundle) -> nn.Module:
    """The bundle's model (``lab.model.build_model``) with the backbone weights loaded."""
    from lab.model import build_model

    module = build_model(bundle.model["kind"], bundle.model["config"])
    module.load_state_dict(bundle.backbone, strict=True)
    return module.eval()


def _replace(root: nn.Module, qualified: str, new: nn.Module) -> None:
    parent_name, _, child = qualified.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)
