"""A model that holds every pattern set in executable form and switches between them.

``ReconfigurableModel(module, sets)`` replaces each ``nn.Linear``/``nn.Embedding`` that any
set names (by qualified module name) with a switchable layer, and prebuilds, for every set,
the layer's executable form (``lab.runtime.kernels``). The active set is one reference: a
``dict`` from layer name to prepared form that every switchable layer reads. ``switch``
replaces that reference and touches no weight data.

Thread safety: a forward pass holds the model's lock from start to end and ``switch``
takes the same lock, so a switch requested during an inference waits for it to finish and
one inference never mixes two sets. Switch between inferences; a ``generation`` counter
increases with every switch.

>>> import torch
>>> from lab.runtime.pattern_set import PatternSet
>>> net = torch.nn.Sequential(torch.nn.Linear(8, 12), torch.nn.ReLU(), torch.nn.Linear(12, 4))
>>> half = torch.ones(12, 8, dtype=torch.bool); half[:, :4] = False
>>> rm = ReconfigurableModel(net, [PatternSet.from_masks("half", {"0": half}, 4, 4)])
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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from lab.runtime import kernels as K
from lab.runtime.pattern_set import LayerPattern, PatternSet

if TYPE_CHECKING:
    from lab.runtime.bundle import Bundle

EXECUTORS = ("auto", "compact", "native", "engine", "mask-per-call", "bsr", "premasked")
# The auto executor times each layer's compact form against its pre-masked dense weight, its
# column-union form (one GEMM on the columns any block-row keeps) and, where the native
# kernel builds (``lab.runtime.native``), its native forms, on at least this many rows
# (tokens x batch; RT3's sequence length) and keeps the fastest
AUTO_ROWS = 35
# ... (never fewer: timed alone, a layer's dense weight sits warm in cache, while end to end
# at one token every weight streams from memory and the compact form reads a fraction of
# it), and only when the other form saves more than this fraction of the compact time.
AUTO_MARGIN = 0.1
# A set runs on the layer's shared pool unless that costs more than this factor of the
# multiply-adds it would do on a pool of its own (sets not nested in the others, or ragged
# block-rows bucketed by another set's counts), memory budget permitting. 1.0 measured best
# on the built-in bundle (its decoder sets are ragged); nested uniform sets never pay.
SHARE_WASTE_LIMIT = 1.0
# Shared pool layouts (``lab.runtime.kernels.LAYOUTS``) or "auto": by ``rows_hint``.
LAYOUTS = ("auto", *K.LAYOUTS)


Pool = K.BlockColumnPool | K.NativeBlockColumnPool


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
    pre-masked dense weights (elementwise patterns, anchor executors).
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


def build_form(module: nn.Module, pattern: LayerPattern, executor: str = "compact") -> K.Kernel:
    """The executable form of one layer (``nn.Linear`` or ``nn.Embedding``) under a pattern."""
    weight = module.weight.detach()
    if isinstance(module, nn.Embedding | SwitchableEmbedding):
        if pattern.family == "block-column":
            return K.BlockColumnEmbedding(weight, module.padding_idx, pattern)
        return K.DenseEmbedding(weight * pattern.mask(), module.padding_idx, owned=True)
    bias = None if module.bias is None else module.bias.detach()
    if executor in ("auto", "compact") and pattern.family == "block-column":
        return K.BlockColumnLinear.build(weight, bias, pattern)
    if executor == "native" and pattern.family == "block-column":
        try:
            return K.NativeBlockColumnLinear.build(weight, bias, pattern)
        except ValueError as exc:
            raise ReconfigurationError(f"layer {pattern.layer!r}: {exc}") from exc
    if executor == "mask-per-call":
        return K.MaskPerCallLinear(weight, bias, pattern.mask())
    if executor == "bsr":
        return K.BsrLinear(weight * pattern.mask(), bias, int(pattern.block_rows))
    # elementwise patterns, and the "premasked" executor: a dense weight with the mask
    # applied once at load (what load_state_dict switching ends up running).
    return premasked_linear(weight, bias, pattern.mask())


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
    """A module whose pruned layers run the active pattern set's prepared forms."""

    def __init__(
        self,
        module: nn.Module,
        sets: Iterable[PatternSet],
        executor: str = "auto",
        active: str | None = None,
        layout: str = "auto",
        rows_hint: int = AUTO_ROWS,
        engine: bool = True,
        engine_threads: int = 1,
    ):
        super().__init__()
        if layout not in LAYOUTS:
            raise ReconfigurationError(f"layout {layout!r} is not one of {LAYOUTS}")
        if layout == "auto":
            # one strided GEMM per bucket pays at many rows; at one token contiguous
            # segments stream weights better (whole model, weights beyond the caches)
            layout = "views" if rows_hint >= K.ROW_GATHER_MIN_TOKENS else "segments"
        self.layout = layout
        if executor not in EXECUTORS:
            raise ReconfigurationError(f"executor {executor!r} is not one of {EXECUTORS}")
        self.executor = executor
        self.module = module.eval()
        self._lock = threading.Lock()
        self._active = _Active({})
        self._active_name: str | None = None
        self.generation = 0
        sets = list(sets)
        modules = dict(module.named_modules())
        layers: dict[str, nn.Module] = {}
        for ps in sets:
            for layer, pat in ps.layers.items():
                mod = modules.get(layer)
                if mod is None:
                    raise ReconfigurationError(
                        f"set {ps.name!r}: layer {layer!r} is not in the model"
                    )
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
        self.layer_names = sorted(layers)
        self.engine: Any = None  # lab.runtime.engine.Engine running the whole model, or None
        self.engine_timing: dict[str, Any] = {}
        if executor == "engine":
            self.engine = _engine_for(module, sets, required=True, threads=engine_threads)
            self.pools, self.forms = {}, {ps.name: {} for ps in sets}
            self._finish(sets, layers, active)
            return
        candidates: list[_Offer] = []
        self.pools: dict[str, Pool] = {}
        self.forms: dict[str, dict[str, K.Kernel]] = {ps.name: {} for ps in sets}
        by_name = {ps.name: ps for ps in sets}
        own_offers: list[tuple[float, str, str]] = []
        with torch.no_grad():
            for layer, mod in layers.items():
                pats = {ps.name: ps.layers[layer] for ps in sets if layer in ps.layers}
                pooled = {
                    n: p
                    for n, p in pats.items()
                    if executor in ("auto", "compact", "native")
                    and isinstance(mod, nn.Linear)
                    and p.family == "block-column"
                }
                if pooled:
                    by_rows = {int(p.block_rows) for p in pooled.values()}
                    if len(by_rows) > 1:  # one pool per block height
                        pooled = {}
                bias = _bias(mod)
                if pooled and executor == "native":
                    try:
                        npool = K.NativeBlockColumnPool(mod.weight.detach(), bias, pooled)
                    except ValueError as exc:
                        raise ReconfigurationError(f"layer {layer!r}: {exc}") from exc
                    self.pools[layer] = npool
                    for n in pooled:
                        self.forms[n][layer] = npool.form(n)
                    pooled = {}
                elif pooled:
                    self.pools[layer] = K.BlockColumnPool(mod.weight.detach(), bias, pooled, layout)
                for n, p in pats.items():
                    if layer in self.forms[n]:  # run on the native pool
                        continue
                    if n not in pooled:
                        self.forms[n][layer] = build_form(mod, p, executor)
                        continue
                    form = self.pools[layer].form(n)
                    own_rows = _padded_rows(p)
                    if len(pooled) > 1 and form.macs_per_row > SHARE_WASTE_LIMIT * own_rows:
                        # padded in the shared layout: a pool of its own runs fewer MACs
                        saved = (form.macs_per_row - own_rows) / max(1, own_rows)
                        own_offers.append((saved, layer, n))
                    self.forms[n][layer] = form
            budget = sum(m.weight.numel() * m.weight.element_size() for m in layers.values())
            for _, layer, n in sorted(own_offers, reverse=True):
                mod = layers[layer]
                own = K.BlockColumnPool(
                    mod.weight.detach(), _bias(mod), {n: by_name[n].layers[layer]}
                )
                form = own.form(n)
                if self._spent() + own.nbytes + form.nbytes - self.forms[n][layer].nbytes < budget:
                    self.pools[f"{layer}#{n}"] = own
                    self.forms[n][layer] = form
            if executor == "auto":
                rows = max(rows_hint, AUTO_ROWS)
                native = self._native_candidates(layers, by_name)
                for n, forms in self.forms.items():
                    for layer, form in forms.items():
                        if isinstance(form, K.BlockColumnLinear):
                            mod, p = layers[layer], by_name[n].layers[layer]
                            extra = native.get((n, layer), [])
                            _offer_faster_form(
                                candidates, n, layer, form, mod, p, _bias(mod), rows, extra
                            )
        if candidates:
            self._accept_offers(candidates, budget)
        self._drop_unused_pools()
        # ``engine=False``: auto keeps to the PyTorch forms (the bench times the engine apart)
        want = executor == "auto" and engine
        engine = _engine_for(module, sets, threads=engine_threads) if want else None
        self._finish(sets, layers, None)
        if engine is not None:
            self._offer_engine(engine, rows_hint)
        if active is not None:
            self.switch(active)

    def _finish(
        self, sets: list[PatternSet], layers: dict[str, nn.Module], active: str | None
    ) -> None:
        """Record the sets, put the switchable layers in place, activate ``active``."""
        self.patterns = {ps.name: ps for ps in sets}
        for name, mod in layers.items():
            wrapper = (
                SwitchableLinear(name, mod, self._active)
                if isinstance(mod, nn.Linear)
                else SwitchableEmbedding(name, mod, self._active)
            )
            _replace(self.module, name, wrapper)
        if active is not None:
            self.switch(active)

    def _offer_engine(self, engine: Any, rows: int, rounds: int = 5) -> None:
        """``auto``: run the whole model on the native engine where, timed end to end on
        ``rows`` tokens for every set (interleaved with the PyTorch forms), it is faster by
        ``AUTO_MARGIN`` in total; then the PyTorch forms are freed."""
        import statistics

        tokens = torch.randint(0, engine.vocab, (1, max(1, rows)))
        names: list[str | None] = [None, *self.forms]
        times: dict[str, list[float]] = {"torch": [], "engine": []}
        for r in range(rounds + 1):
            total = {"torch": 0.0, "engine": 0.0}
            for n in names:
                self.switch(n)
                engine.select(n)
                t0 = time.perf_counter()
                self(tokens)
                t1 = time.perf_counter()
                engine(tokens)
                total["torch"] += t1 - t0
                total["engine"] += time.perf_counter() - t1
            if r:  # the first round warms up
                for k, v in total.items():
                    times[k].append(v)
        self.switch(None)
        med = {k: statistics.median(v) for k, v in times.items()}
        chosen = med["engine"] < (1 - AUTO_MARGIN) * med["torch"]
        self.engine_timing = {"rows": rows, "torch_s": med["torch"], "engine_s": med["engine"]}
        self.engine_timing["chosen"] = chosen
        if chosen:
            self.engine = engine
            self.pools, self.forms = {}, {n: {} for n in self.forms}
        else:
            engine.close()

    def _spent(self) -> int:
        """Bytes all sets hold now: the compact pools some form still runs on, plus every
        form's own bytes (a pool no set runs on any more is as good as freed)."""
        return sum(p.nbytes for k, p in self.pools.items() if self._serves_any(k, p)) + sum(
            f.nbytes for forms in self.forms.values() for f in forms.values()
        )

    def _serves_any(self, key: str, pool: Pool) -> bool:
        """Whether some set's current form runs on ``pool`` (registered under ``key``:
        the layer, then ``#``-separated qualifiers)."""
        layer = key.split("#", 1)[0]
        forms = [self.forms[n].get(layer) for n in pool.keep]
        return any(f is not None and pool.serves(f) for f in forms)

    def _native_candidates(
        self, layers: dict[str, nn.Module], by_name: dict[str, PatternSet]
    ) -> dict[tuple[str, str], list[K.Kernel]]:
        """Native forms to time against each compact form: every set on a native pool
        shared by the layer's sets and, where that reads many positions the set does not
        keep (sets not nested in the others), on a native pool of its own. Pools are
        registered unused; the ones no accepted form runs on are dropped later."""
        from lab.runtime import native

        out: dict[tuple[str, str], list[K.Kernel]] = {}
        if native.kernel() is None:
            return out
        for layer, pool in list(self.pools.items()):
            if not isinstance(pool, K.BlockColumnPool) or "#" in layer:
                continue
            mod = layers[layer]
            if pool.block_rows != native.BLOCK_ROWS or mod.weight.dtype != torch.float32:
                continue
            pats = {n: by_name[n].layers[layer] for n in pool.keep}
            shared = K.NativeBlockColumnPool(mod.weight.detach(), _bias(mod), pats)
            self.pools[f"{layer}#native"] = shared
            for n, p in pats.items():
                form = shared.form(n)
                out[(n, layer)] = [form]
                if len(pats) > 1 and form.macs_per_row > SHARE_WASTE_LIMIT * p.nnz:
                    own = K.NativeBlockColumnPool(mod.weight.detach(), _bias(mod), {n: p})
                    self.pools[f"{layer}#native#{n}"] = own
                    out[(n, layer)].append(own.form(n))
        return out

    def _accept_offers(self, offers: list[_Offer], budget: int) -> None:
        """Run a layer of a set in the form that measured faster than compact (pre-masked
        dense, column union, native), most time saved per byte first, while all sets together stay
        under ``budget`` (one dense copy of the pruned layers)."""
        for offer in sorted(offers, key=lambda o: o.saved_s / max(1, o.form.nbytes), reverse=True):
            forms = self.forms[offer.set_name]
            forms[offer.layer] = offer.form
            # exact: the form's bytes, less the compact form's, less a pool it was the last
            # user of (a backbone alias costs none)
            if self._spent() >= budget:
                forms[offer.layer] = offer.compact

    def _drop_unused_pools(self) -> None:
        """Free the compact pools no set runs any more (accepted offers, own pools)."""
        for key, pool in list(self.pools.items()):
            if not self._serves_any(key, pool):
                del self.pools[key]

    def executors(self) -> dict[str, dict[str, str]]:
        """Per set, per layer: the kind of form that runs (``auto`` picks per layer, or
        ``engine`` for the whole model)."""
        if self.engine is not None:
            return {n: dict.fromkeys(ps.layers, "engine") for n, ps in self.patterns.items()}
        return {n: {layer: f.kind for layer, f in forms.items()} for n, forms in self.forms.items()}

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

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the wrapped module under the active set (inference mode, one set throughout)."""
        if self.engine is not None:  # no autograd to switch off: numpy in C, torch out
            if kwargs or len(args) != 1:
                raise ReconfigurationError("the engine takes one (batch, seq) token tensor")
            with self._lock:
                return self.engine(args[0])
        with self._lock, torch.inference_mode():
            return self.module(*args, **kwargs)

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
        modules = dict(self.module.named_modules())
        dense = sum(
            modules[n].weight.numel()
            for n in self.layer_names
            if isinstance(modules[n], SwitchableLinear)
        )
        if name is None:
            return dense, dense
        ps = self.patterns[name]
        kept = 0
        for n in self.layer_names:
            if not isinstance(modules[n], SwitchableLinear):
                continue
            kept += ps.layers[n].nnz if n in ps.layers else modules[n].weight.numel()
        return dense, kept


@dataclass
class _Offer:
    """A layer of a set that ran faster in another form (dense, column union, native)."""

    set_name: str
    layer: str
    compact: K.Kernel
    form: K.Kernel
    saved_s: float


def _offer_faster_form(
    offers: list[_Offer],
    set_name: str,
    layer: str,
    compact: K.Kernel,
    module: nn.Module,
    pattern: LayerPattern,
    bias: torch.Tensor | None,
    rows: int,
    extra: list[K.Kernel] | None = None,
    rounds: int = 7,
) -> None:
    """Time the compact form against a pre-masked dense GEMM, the column-union form (where
    the block-rows together keep fewer than all input columns) and any ``extra`` forms
    (native); interleaved, on ``rows`` random rows. Offer the fastest when it beats compact
    by ``AUTO_MARGIN``.

    Small layers (a few hundred columns) often run faster as one GEMM than gathered and
    batched, whatever their sparsity: compaction pays only where the GEMM is large. Where
    every block-row keeps the same columns, the column union is that one GEMM at the
    set's own multiply-adds.
    """
    import statistics

    weight, mask = module.weight.detach(), pattern.mask()
    others = [premasked_linear(weight, bias, mask)]
    kept = int(mask.any(0).sum())
    if 0 < kept < weight.shape[1]:
        others.append(K.ColumnUnionLinear.build(weight, bias, mask))
    forms = [compact, *others, *(extra or [])]
    x = torch.randn(rows, weight.shape[1])
    times: list[list[float]] = [[] for _ in forms]
    with torch.inference_mode():
        for form in forms:
            form(x)
        for _ in range(rounds):
            for i, form in enumerate(forms):
                t0 = time.perf_counter()
                form(x)
                times[i].append(time.perf_counter() - t0)
    medians = [statistics.median(t) for t in times]
    best = min(range(1, len(forms)), key=lambda i: medians[i])
    saved = medians[0] - medians[best]
    if saved > AUTO_MARGIN * medians[0]:
        offers.append(_Offer(set_name, layer, compact, forms[best], saved))


def _engine_for(
    module: nn.Module, sets: list[PatternSet], required: bool = False, threads: int = 1
) -> Any:
    """The native engine (``lab.runtime.engine``) loaded with ``module`` and ``sets`` on
    ``threads`` threads, or, unless ``required``, None where it cannot run them (not RT3's
    Transformer LM, a set the export refuses, no compiler)."""
    from lab.model.transformer import RT3TransformerLM
    from lab.runtime import engine as E
    from lab.runtime.export import ExportError

    why = None
    if not isinstance(module, RT3TransformerLM):
        why = f"the engine runs RT3TransformerLM, not {type(module).__name__}"
    elif E.library() is None:
        why = f"native engine unavailable: {E.status()}"
    elif any(p.dtype != torch.float32 for p in module.parameters()):
        why = "the engine runs float32 weights only"
    if why is None:
        try:
            config, state = module.config.to_dict(), module.state_dict()
            return E.Engine.from_model(config, state, sets, threads)
        except (ExportError, E.EngineError) as exc:
            why = str(exc)
    if required:
        raise ReconfigurationError(f"executor 'engine': {why}")
    return None


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
