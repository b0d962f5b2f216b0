"""What runs during profiling: a bundle's reconfigurable model, one inference at a time.

`BundleWorkload` loads a bundle into the runtime (``ReconfigurableModel.from_bundle``, the
native engine on as many threads as torch) and exposes each pattern set, plus ``dense``
(the backbone run without a set, with the bundle's dense reference counts) when the bundle
has no set of that name, as a variant: ``activate(name)`` switches to it and ``run_once()``
runs one batch-1 inference of ``seq_len`` random tokens, the call a serving loop makes
(``ReconfigurableModel.serving_call``: tokens and logits' buffer prepared once).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from lab.runtime.bundle import Bundle

DENSE = "dense"


@dataclass(frozen=True)
class VariantInfo:
    """A variant's bundle record: what the profile's ``variants[]`` needs besides latency."""

    name: str
    sparsity: float | None
    nonzero_mults: float | None
    nonzero_adds: float | None
    accuracy: float | None


class Workload(Protocol):
    """Variants to switch between and one inference to time."""

    names: list[str]

    def activate(self, name: str) -> float:
        """Switch to variant ``name``; seconds the switch took."""

    def run_once(self) -> None:
        """One inference of the active variant."""

    def info(self, name: str) -> VariantInfo:
        """The variant's accuracy, sparsity and op counts."""

    def describe(self) -> dict[str, Any]:
        """What runs (bundle, model, sequence length, threads)."""


@runtime_checkable
class TimedWorkload(Protocol):
    """A workload that times its own inferences (the standalone runner): the procedure
    takes its latencies and switch times instead of timing calls from Python."""

    def time_runs(self, warmup: int, runs: int) -> list[float]:
        """``runs`` timed inferences of the active variant after ``warmup``, ms each."""

    def switch_times_ms(self) -> list[float]:
        """Switch times between the variants, ms."""


def variant_info(bundle: Bundle, name: str) -> VariantInfo:
    """From ``bundle.json``: the set's record, or the dense reference."""
    if name in bundle.entries:
        e = bundle.entries[name]
        return VariantInfo(name, e.sparsity, e.nonzero_mults, e.nonzero_adds, e.accuracy)
    ref = bundle.reference.get("dense", {})
    return VariantInfo(
        name,
        0.0,
        ref.get("nonzero_mults") or None,
        ref.get("nonzero_adds") or None,
        ref.get("accuracy"),
    )


def choose_sets(names: list[str], sets: list[str] | None, bundle_dir: str | Path) -> list[str]:
    """``--sets``: the variants of ``names`` named in ``sets``, in ``names``' order (all of
    them when ``sets`` is None); an unknown one is an error.

    >>> choose_sets(["dense", "bp", "p30"], ["p30", "dense"], "b")
    ['dense', 'p30']
    """
    if not sets:
        return names
    unknown = [s for s in sets if s not in names]
    if unknown:
        raise ValueError(f"--sets: {unknown} not in bundle {bundle_dir} (have {names})")
    return [n for n in names if n in sets]


class BundleVariants:
    """What a bundle's workloads share: the variants' records and the bundle's description.

    A subclass sets ``bundle``, ``path`` and ``seq_len``."""

    bundle: Bundle
    path: Path
    seq_len: int

    def info(self, name: str) -> VariantInfo:
        """From ``bundle.json``: the set's record, or the dense reference."""
        return variant_info(self.bundle, name)

    def bundle_facts(self, threads: int) -> dict[str, Any]:
        """Bundle path, model kind, sequence length, batch and threads."""
        return {
            "bundle": str(self.path),
            "model": self.bundle.model["kind"],
            "seq_len": self.seq_len,
            "batch": 1,
            "threads": threads,
        }


class BundleWorkload(BundleVariants):
    """A bundle's sets on the reconfigurable runtime, batch 1, ``seq_len`` tokens."""

    def __init__(
        self,
        bundle_dir: str | Path,
        seq_len: int = 35,
        threads: int | None = None,
        sets: list[str] | None = None,
        seed: int = 0,
    ):
        import torch

        from lab.host.threads import check_threads, default_threads
        from lab.runtime.bundle import Bundle, runs_as_sets
        from lab.runtime.reconfigurable import ReconfigurableModel
        from lab.runtime.thread_count import warn_other_threads

        torch.set_num_threads(check_threads(threads) if threads is not None else default_threads())
        self.bundle = runs_as_sets(Bundle.load(bundle_dir), "rt3lab profile")
        self.path = Path(bundle_dir)
        self.threads = torch.get_num_threads()
        warn_other_threads(self.bundle, self.threads)
        self.model = ReconfigurableModel.from_bundle(self.bundle, engine_threads=self.threads)
        self.seq_len = seq_len
        vocab = int(self.bundle.model["config"].get("vocab_size", 1000))
        g = torch.Generator().manual_seed(seed)
        self.tokens = torch.randint(0, vocab, (1, seq_len), generator=g)
        # the call a serving loop makes (what the latency table and evaluate time too)
        self.serving = self.model.serving_call(self.tokens)
        names = list(self.model.set_names)
        if DENSE not in names:
            names = [DENSE, *names]
        self.names = choose_sets(names, sets, bundle_dir)

    def activate(self, name: str) -> float:
        """Switch the runtime to ``name`` (``dense``: no set) and return the switch time."""
        return self.model.switch(
            None if name == DENSE and DENSE not in self.model.set_names else name
        )

    def run_once(self) -> None:
        """One inference: the runtime's serving call (``ReconfigurableModel.serving_call``)."""
        self.serving()

    def describe(self) -> dict[str, Any]:
        """Bundle path, model kind, sequence length and threads."""
        return {**self.bundle_facts(self.threads), "created": self.bundle.provenance.get("created")}
