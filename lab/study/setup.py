"""What every point of a deadline study takes from the bundle, loaded once per process.

The bundle keeps the jointly fine-tuned backbone (BP-masked), the dense weights, BP's mask
(set ``bp``), the chosen sets, the measured latency table and the provenance of ``compress``
(data, budget, profile, options, BP config, reward normalisation). It does not keep BP's
weights before the joint fine-tuning, the supernet or the pattern candidates. BP is
deterministic per seed and thread count, so a study runs it again from the bundle's dense
model, as ``compress`` ran it (the dense model teaching it unless the bundle was compressed
``--no-distill``), and checks the result against the digest ``compress`` recorded
(``provenance.reproducibility.bp_weights_sha256``): when they match, each point starts
where ``compress``'s search started (BP's weights, the candidates fitted on them, the
dense model teaching the supernet and the fine-tuning), so a point at the bundle's own
deadlines is another run of ``compress``. When they cannot match (another thread count,
an old bundle without the digest) each point starts from the **backbone** instead (its
candidates fitted on the backbone's weights, one more joint fine-tuning than ``compress``
gave its sets), and ``StudyBase.start`` says why (:mod:`lab.study.point_search`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.study.grid import StudyError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from torch import nn

    from device_profiles import DeviceProfile
    from lab.compression.block_pruning import BlockPruned
    from lab.compression.budget import Budget
    from lab.compression.compressor import Compressor
    from lab.compression.dense import DenseModel
    from lab.compression.latency.table import LatencyTable
    from lab.compression.options import CompressOptions
    from lab.compression.tasks import Task
    from lab.runtime.bundle import Bundle

# provenance fields a study needs beside those evaluate checks (data, budget)
NEEDED = ("profile", "levels", "seed", "bp_config", "dense_valid_accuracy")


@dataclass
class StudyBase:
    """The bundle, its task and profile, the options ``compress`` ran with, BP (its mask
    on the backbone), the dense model and the candidates fitted on the backbone."""

    path: Path
    bundle: Bundle
    task: Task
    budget: Budget
    profile: DeviceProfile
    opts: CompressOptions
    bp_config: Any
    bp: BlockPruned
    dense: DenseModel
    cands: dict[str, Any]
    start: str = "backbone"  # where each point starts: "BP re-run (digest matches)" or why not
    start_state: dict[str, Any] | None = None  # BP's weights when re-run, else the backbone

    def compressor(
        self,
        deadlines_ms: Sequence[float] | None = None,
        table: LatencyTable | None = None,
        rule: str = "profile",
    ) -> Compressor:
        """A ``Compressor`` as ``compress`` built it, with the bundle's BP config, the
        latency ``table`` and the per-level ``deadlines_ms`` (highest frequency first;
        None: the profile's constraints under ``rule``, as they are by default)."""
        from dataclasses import replace

        from lab.compression.compressor import Compressor
        from lab.compression.options import SilentReporter
        from lab.compression.pattern_sets import PatternSets

        spec = rule if deadlines_ms is None else ",".join(repr(d) for d in deadlines_ms)
        opts = replace(self.opts, deadlines=spec)
        c = Compressor(self.task, self.profile, opts, SilentReporter())
        c.bp_config = self.bp_config
        c.patterns = PatternSets(self.bp_config, opts)
        c.table = table
        if self.start_state is not None:  # as compress: the dense model teaches
            c.set_teacher(dense_model_of(self.bundle))
        return c

    def model(self) -> nn.Module:
        """A fresh model on the weights each point starts from (BP's, re-run; else the
        bundle's backbone)."""
        model = backbone_model(self.bundle)
        if self.start_state is not None:
            model.load_state_dict(self.start_state)
        return model

    @property
    def threads(self) -> int:
        """Torch and engine threads of this study."""
        return int(self.opts.threads or 1)


def backbone_model(bundle: Bundle) -> nn.Module:
    """The bundle's model on its backbone's weights, in eval mode."""
    from lab.model import build_model

    model = build_model(bundle.model["kind"], bundle.model["config"])
    model.load_state_dict(bundle.backbone)
    model.eval()
    return model


def dense_model_of(bundle: Bundle) -> nn.Module:
    """The bundle's dense model (its ``dense`` weights), in eval mode."""
    model = backbone_model(bundle)
    model.load_state_dict(bundle.dense)
    model.eval()
    return model


def replay_bp(base: StudyBase) -> StudyBase:
    """``base`` starting where ``compress``'s search started: BP run again from the dense
    model (seeded, deterministic kernels, the bundle's thread count, the dense model
    teaching) and, if its digest is the one ``compress`` recorded, its weights and the
    candidates fitted on them; else ``base`` as it is, ``start`` saying why."""
    from dataclasses import replace

    from lab.compression.block_pruning import run_bp
    from lab.compression.reproducible import deterministic_kernels, state_digest
    from lab.model.training import torch_threads

    rec = base.bundle.provenance.get("reproducibility") or {}
    want, threads = rec.get("bp_weights_sha256"), rec.get("threads")
    if not want:
        return replace(base, start="backbone: the bundle records no BP digest")
    if threads != base.threads:
        return replace(base, start=f"backbone: compress ran BP at {threads} thread(s), the "
                                   f"study runs {base.threads}")  # fmt: skip
    c = base.compressor()
    model = dense_model_of(base.bundle)
    c.set_teacher(model)
    with torch_threads(base.threads), deterministic_kernels():
        bp = run_bp(c, model, base.dense.state, base.dense.weights, with_rbp=False)
        if state_digest(bp.state) != want:
            return replace(base, start="backbone: BP run again gave another model than the "
                                       "digest compress recorded")  # fmt: skip
        cands = c.patterns.candidates(bp.weights)
    return replace(base, bp=bp, cands=cands, start="BP re-run (digest matches)",
                   start_state=bp.state)  # fmt: skip


def _needed(bundle: Bundle) -> dict[str, Any]:
    """The provenance, refused (naming the field) where a study cannot run from it."""
    where = f"{bundle.path}/bundle.json"
    prov = bundle.provenance
    for name in NEEDED:
        if prov.get(name) is None:
            raise StudyError(
                f"{where}: provenance.{name} is missing: the study re-runs compress's search "
                "from what it recorded (re-run `rt3lab compress`)"
            )
    if "bp" not in bundle.sets:
        raise StudyError(f"{where}: no set 'bp' (BP's mask): the study's anchor is BP")
    if sum(1 for e in bundle.entries.values() if e.freq_khz is not None) < 2:
        raise StudyError(f"{where}: fewer than 2 sets with a freq_khz: not a reconfigurable model")
    return prov


def _options(bundle: Bundle, budget: Budget, threads: int, bp_config: Any) -> CompressOptions:
    """The options ``compress`` ran with, as the bundle records them."""
    from lab.compression.options import CompressOptions

    prov = bundle.provenance
    weights = prov.get("loss_weights")
    return CompressOptions(
        profile=str(prov["profile"]),
        out=Path(bundle.path or "."),
        budget=budget,
        seed=int(prov["seed"]),
        block_rows=bp_config.block_rows,
        block_cols=bp_config.block_cols,
        family=str(prov.get("family", "block-column")),
        reward_norm=str((prov.get("reward") or {}).get("norm", "auto")),
        loss_weights=None if weights is None else tuple(float(w) for w in weights),
        levels=tuple(float(v) for v in prov["levels"]),
        candidates=str(prov.get("candidates", "fitted")),
        exclusive=float(prov.get("exclusive", 1.0)),
        threads=threads,
    )


def _bp_and_dense(bundle: Bundle, weights: dict[str, Any]) -> tuple[BlockPruned, DenseModel]:
    """BP (its mask on the backbone) and the dense model, as the search's stages take them,
    with the figures ``compress`` recorded."""
    from lab.compression.block_pruning import BlockPruned
    from lab.compression.dense import DenseModel
    from lab.compression.latency.estimators import OpCounts

    prov, ref = bundle.provenance, bundle.reference
    e = bundle.entries["bp"]
    bp_ref, dense_ref = ref.get("bp") or {}, ref.get("dense") or {}
    bp = BlockPruned(
        masks=bundle.sets["bp"].masks(),
        state=bundle.backbone,
        weights=weights,
        sparsity=e.sparsity,
        nnz=e.nnz,
        ops=OpCounts(e.nonzero_mults, e.nonzero_adds),
        test=(bp_ref.get("accuracy"), bp_ref.get("perplexity")),
        valid=(prov.get("bp_valid_accuracy"), None),
        rbp_sparsity=None,
        rbp_test=None,
    )
    dense_weights = {n: bundle.dense[f"{n}.weight"] for n in weights}
    dense = DenseModel(
        info={},
        state=bundle.dense,
        weights=dense_weights,
        valid=(float(prov["dense_valid_accuracy"]), None),
        test=(dense_ref.get("accuracy"), dense_ref.get("perplexity")),
        ops=int(dense_ref.get("nonzero_mults") or 0),
    )
    return bp, dense


@lru_cache(maxsize=2)
def load_base(path: str, threads: int) -> StudyBase:
    """The study's base for the bundle at ``path`` (every check of ``Bundle.load``), its
    data loaded as ``evaluate`` loads it; cached per process (each worker loads it once)."""
    from device_profiles import ProfileError, load_profile
    from lab.compression.block_pruning import BPConfig
    from lab.compression.evaluation import bundle_task
    from lab.compression.search.reward import governor_levels
    from lab.model.training import torch_threads
    from lab.runtime.bundle import Bundle

    bundle = Bundle.load(path, scheme="rt3")  # the study re-runs RT3's search
    prov = _needed(bundle)
    task, budget, _ = bundle_task(bundle)
    try:
        profile = load_profile(str(prov["profile"]))
    except ProfileError as exc:
        raise StudyError(f"{path}/bundle.json: provenance.profile: {exc}") from None
    governor_levels(profile)  # a deadline at every governor level, or a one-line error
    source = f"{path}/bundle.json provenance.bp_config"
    try:
        cfg = BPConfig(**{**dict(prov["bp_config"]), "source": source})
    except TypeError as exc:
        raise StudyError(f"{source}: {exc}") from None
    opts = _options(bundle, budget, threads, cfg)
    model = backbone_model(bundle)
    names = list(task.prunable(model))
    if sorted(names) != sorted(bundle.sets["bp"].layers):
        raise StudyError(
            f"{path}: set 'bp' masks layers {sorted(bundle.sets['bp'].layers)}, the model "
            f"prunes {sorted(names)}"
        )
    weights = {n: m.weight.detach().clone() for n, m in task.prunable(model).items()}
    bp, dense = _bp_and_dense(bundle, weights)
    base = StudyBase(Path(path), bundle, task, budget, profile, opts, cfg, bp, dense, {})
    with torch_threads(threads):
        base.cands = base.compressor().patterns.candidates(bp.weights)
    return replay_bp(base)
