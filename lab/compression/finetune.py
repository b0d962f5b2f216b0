"""Masked training: BP's lasso phase and retraining, and joint fine-tuning of pattern sets.

Several pattern sets share one weight tensor. Joint fine-tuning runs every set on the same
batch (the weights multiplied by that set's mask, through ``torch.func.functional_call`` so
the gradient reaches the shared weight only where the set keeps it) and minimises the
weighted sum of the losses (RT3: 0.5 / 0.3 / 0.2 from the highest frequency down). After
every optimizer step the BP mask is re-applied, so nothing BP pruned comes back.

What is trained on is an *objective*: endless ``(inputs, targets)`` batches and a loss that
accepts substituted parameters. A 1-D token tensor means next-token prediction
(:class:`LMObjective`); :mod:`lab.compression.tasks` has the GLUE classification one.

The sixth stage of ``compress`` (:func:`finetune_final`): the search's chosen sets, and
BP+rPP at the same non-zero counts, each fine-tuned jointly from the BP model and scored
on test tokens (:class:`SetScore`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from lab.compression.distill import student_loss
from lab.compression.sparsifier import mask_sparsity
from lab.host.compute import on_compute_device, to_device

if TYPE_CHECKING:
    import torch
    from torch import nn

    from lab.compression.block_pruning import BlockPruned
    from lab.compression.compressor import Compressor
    from lab.compression.distill import Teacher, TeacherOutput
    from lab.compression.search.controller import Child

Batch = Callable[[], tuple[Any, Any]]  # draws the next (inputs, targets) on the device


def lm_windows(
    data: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless random ``(inputs, targets)`` windows of a 1-D token stream, ``(batch, seq)``."""
    import torch

    n = data.numel() - seq_len - 1
    if n <= 0:
        raise ValueError(f"token stream of {data.numel()} tokens is shorter than seq_len + 1")
    offsets = torch.arange(seq_len)
    while True:
        starts = torch.randint(0, n, (batch_size, 1), generator=generator)
        idx = starts + offsets
        yield data[idx], data[idx + 1]


@runtime_checkable
class Objective(Protocol):
    """What masked training minimises: batches, and a loss with optional parameters."""

    def batches(self, generator: torch.Generator, batch_size: int) -> Iterator[tuple[Any, Any]]:
        """Endless random ``(inputs, targets)`` training batches."""

    def loss(
        self, model: nn.Module, inputs: Any, targets: Any, params: dict | None = None
    ) -> torch.Tensor:
        """The mean loss of ``model`` (with ``params`` substituted when given)."""


@dataclass(frozen=True)
class LMObjective:
    """Next-token prediction on random windows of a token stream."""

    tokens: torch.Tensor
    seq_len: int = 35

    def batches(
        self, generator: torch.Generator, batch_size: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Random ``(batch, seq_len)`` windows and their next tokens."""
        return lm_windows(self.tokens, batch_size, self.seq_len, generator)

    def loss(
        self, model: nn.Module, inputs: Any, targets: Any, params: dict | None = None
    ) -> torch.Tensor:
        """Cross-entropy of the next token."""
        return lm_loss(model, inputs, targets, params)

    def logits(self, model: nn.Module, inputs: Any, params: dict | None = None) -> torch.Tensor:
        """The next-token logits, ``(batch, seq, vocab)``."""
        return model_logits(model, inputs, params)

    def hard_loss(self, logits: torch.Tensor, targets: Any) -> torch.Tensor:
        """Cross-entropy of ``logits`` against the next tokens."""
        return next_token_loss(logits, targets)


def objective_of(data: torch.Tensor | Objective, seq_len: int) -> Objective:
    """``data`` itself when it is an objective, else next-token prediction on its tokens."""
    return data if isinstance(data, Objective) else LMObjective(data, seq_len)


def masked_params(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``{layer.weight: weight * mask}`` for ``functional_call`` (gradients reach the weight)."""
    modules = dict(model.named_modules())
    return {
        f"{name}.weight": modules[name].weight * m.to(modules[name].weight.device)
        for name, m in masks.items()
    }


@contextlib.contextmanager
def applied_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> Iterator[nn.Module]:
    """Temporarily zero the masked-out weights in place; restores them on exit."""
    import torch

    modules = dict(model.named_modules())
    saved = {name: modules[name].weight.detach().clone() for name in masks}
    try:
        with torch.no_grad():
            for name, m in masks.items():
                modules[name].weight.mul_(m.to(modules[name].weight.device))
        yield model
    finally:
        with torch.no_grad():
            for name, w in saved.items():
                modules[name].weight.copy_(w)


def lm_loss(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, params: dict | None = None
) -> torch.Tensor:
    """Cross-entropy of next-token prediction, optionally with substituted parameters."""
    return next_token_loss(model_logits(model, inputs, params), targets)


def model_logits(model: nn.Module, inputs: Any, params: dict | None = None) -> torch.Tensor:
    """``model(inputs)``, with ``params`` substituted (``functional_call``) when given."""
    from torch.func import functional_call

    return model(inputs) if params is None else functional_call(model, params, (inputs,))


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``(batch, seq, vocab)`` logits against the next tokens."""
    import torch.nn.functional as F

    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def reapply(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """Zero every weight outside ``masks`` (after each optimizer step)."""
    import torch

    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, m in masks.items():
            modules[name].weight.mul_(m.to(modules[name].weight.device))


@dataclass(frozen=True)
class StepPlan:
    """How long and how masked training runs: ``steps`` Adam steps at ``lr`` on random
    batches of ``batch_size`` drawn with ``generator``; ``on_step(step, loss)`` after each;
    with a ``teacher`` every loss is its distillation loss (:mod:`lab.compression.distill`:
    one teacher forward per batch, shared by every set of a joint step)."""

    steps: int
    generator: torch.Generator
    batch_size: int = 20
    lr: float = 5e-4
    on_step: Callable[[int, float], None] | None = None
    teacher: Teacher | None = None


def train_masked(
    model: nn.Module,
    data: torch.Tensor | Objective,
    masks: Mapping[str, torch.Tensor],
    plan: StepPlan,
    seq_len: int = 35,
    penalty: Callable[[], torch.Tensor] | None = None,
) -> float:
    """Train ``model`` as ``plan`` says with ``masks`` re-applied after every step; returns
    the last loss.

    ``data`` is a token stream (``seq_len`` windows) or an :class:`Objective`;
    ``penalty`` (e.g. BP's group lasso) is added to the loss.
    """
    objective = objective_of(data, seq_len)

    def step_loss(batch: Batch, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, targets = batch()
        told = taught(plan, objective, inputs)
        loss = set_loss(objective, model, inputs, targets, plan.teacher, told)
        return (loss + penalty() if penalty is not None else loss), loss

    return _masked_steps(model, masks, objective, plan, step_loss)


def joint_finetune(
    model: nn.Module,
    set_masks: Sequence[Mapping[str, torch.Tensor]],
    loss_weights: Sequence[float],
    data: torch.Tensor | Objective,
    keep: Mapping[str, torch.Tensor],
    plan: StepPlan,
    seq_len: int = 35,
) -> float:
    """Fine-tune the shared weights for every set at once, as ``plan`` says; returns the
    last weighted loss.

    ``keep`` (the BP masks) is re-applied after every step: weights pruned by BP never revive.
    ``data`` is as for :func:`train_masked`.
    """
    if len(set_masks) != len(loss_weights):
        raise ValueError(f"{len(set_masks)} sets but {len(loss_weights)} loss weights")
    objective = objective_of(data, seq_len)
    return joint_steps(model, lambda _g: set_masks, loss_weights, objective, keep, plan)


def joint_steps(
    model: nn.Module,
    sample: Callable[[torch.Generator], Sequence[Mapping[str, torch.Tensor]]],
    loss_weights: Sequence[float],
    objective: Objective,
    keep: Mapping[str, torch.Tensor],
    plan: StepPlan,
) -> float:
    """``plan.steps`` steps of RT3's weighted joint loss on the compute device, each over
    the sets ``sample(plan.generator)`` gives for that step (the same sets every step for
    :func:`joint_finetune`, a random child's for the supernet); ``keep`` is re-applied after
    every step. Returns the last weighted loss (nan when ``steps`` is 0)."""
    import torch

    def step_loss(batch: Batch, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        sets = sample(plan.generator)
        if len(sets) != len(loss_weights):
            raise ValueError(f"{len(sets)} sets but {len(loss_weights)} loss weights")
        inputs, targets = batch()
        told = taught(plan, objective, inputs)  # one teacher forward, shared by every set
        total = torch.zeros((), device=dev)
        for masks, w in zip(sets, loss_weights, strict=True):
            params = masked_params(model, {k: m.to(dev) for k, m in masks.items()})
            loss = set_loss(objective, model, inputs, targets, plan.teacher, told, params)
            total = total + w * loss
        return total, total

    return _masked_steps(model, keep, objective, plan, step_loss)


def taught(plan: StepPlan, objective: Objective, inputs: Any) -> TeacherOutput | None:
    """The teacher's output on this batch (None without a teacher)."""
    return None if plan.teacher is None else plan.teacher.output(objective, inputs)


def set_loss(
    objective: Objective,
    model: nn.Module,
    inputs: Any,
    targets: Any,
    teacher: Teacher | None,
    told: TeacherOutput | None,
    params: dict | None = None,
) -> torch.Tensor:
    """One student's loss on a batch: the objective's own, or with a teacher (and its output
    ``told`` on this batch) the distillation loss (:func:`lab.compression.distill.
    student_loss`)."""
    if teacher is None or told is None:
        return objective.loss(model, inputs, targets, params)
    return student_loss(objective, model, inputs, targets, told, teacher.config, params)


def _masked_steps(
    model: nn.Module,
    keep: Mapping[str, torch.Tensor],
    objective: Objective,
    plan: StepPlan,
    step_loss: Callable[[Batch, torch.device], tuple[torch.Tensor, torch.Tensor]],
) -> float:
    """The loop every masked training shares, on the compute device: Adam, gradients
    clipped at 0.5, ``keep`` re-applied before the first step and after every step.
    ``step_loss(batch, device)`` draws its batch with ``batch()`` and returns the loss to
    minimise and the loss to report; returns the last reported loss (nan for 0 steps)."""
    import torch

    with on_compute_device(model) as dev:
        keep = {k: m.to(dev) for k, m in keep.items()}
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=plan.lr)
        windows = objective.batches(plan.generator, plan.batch_size)
        reapply(model, keep)

        def batch() -> tuple[Any, Any]:
            inputs, targets = (to_device(t, dev) for t in next(windows))
            return inputs, targets

        last = float("nan")
        for step in range(plan.steps):
            total, reported = step_loss(batch, dev)
            opt.zero_grad()
            total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            reapply(model, keep)
            last = float(reported.detach())
            if plan.on_step is not None:
                plan.on_step(step, last)
        model.eval()
    return last


# --- the final stage of compress: the chosen sets and BP+rPP, fine-tuned jointly ------------


@dataclass
class SetScore:
    """One set's figures."""

    name: str
    freq_khz: int | None
    level: float | None
    sparsity: float
    nnz: int
    ops: int
    latency_ms: float | None
    accuracy: float
    perplexity: float
    masks: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)

    def record(self) -> dict[str, Any]:
        """JSON form without the masks."""
        return {
            "name": self.name,
            "freq_khz": self.freq_khz,
            "level": self.level,
            "sparsity": self.sparsity,
            "nnz": self.nnz,
            "nonzero_mults": self.ops,
            "nonzero_adds": self.ops,
            "latency_ms": self.latency_ms,
            "accuracy": self.accuracy,
            "perplexity": self.perplexity,
        }


@dataclass(frozen=True)
class FinalSets:
    """The chosen child's sets fine-tuned jointly from the BP model (``backbone``, the
    bundle's), BP's mask scored on that backbone, and BP+rPP fine-tuned the same way."""

    backbone: dict[str, Any]
    rl: list[SetScore]
    bp_on_backbone: tuple[float, float | None]
    rpp: list[SetScore]
    rpp_backbone: dict[str, Any] | None = None  # BP+rPP's own, kept for evaluate
    # --distill-ablation: the same sets fine-tuned without distillation from the same BP
    # model (named no-distill-<set>), BP's mask on that backbone, and the backbone itself
    no_distill: list[SetScore] | None = None
    no_distill_bp: tuple[float, float | None] | None = None
    no_distill_backbone: dict[str, Any] | None = None


def finetune_sets(
    c: Compressor,
    model: nn.Module,
    bp: BlockPruned,
    sets: list[dict[str, Any]],
    label: str,
    distill: bool = True,
) -> None:
    """``sets`` fine-tuned jointly from the BP model for the budget's ``final_steps``, taught
    by the dense model when distillation is on and ``distill``."""
    b = c.budget
    model.load_state_dict(bp.state)
    c.reporter.stage(f"joint fine-tuning ({label})", b.final_steps)
    teacher = c.teacher if distill else None
    with c.seeded(17):
        plan = StepPlan(
            b.final_steps, c.generator(17), b.batch_size, c.finetune_lr, c.report_step, teacher
        )
        joint_finetune(model, sets, c.loss_weights, c.task.objective(), bp.masks, plan)


def score_sets(
    c: Compressor,
    model: nn.Module,
    sets: list[dict[str, Any]],
    prefix: str,
    child: Child,
    dense_weights: dict[str, Any],
) -> list[SetScore]:
    """Each set (one per governor level) on test tokens, with its sparsity against the dense
    weights, RT3's op count and estimated latency; named ``PREFIX<MHz>mhz``."""
    counts, lats = c.latencies(model, sets)
    out = []
    for i, (m, cnt, lat, lv) in enumerate(zip(sets, counts, lats, c.levels_spec, strict=True)):
        acc, ppl = c.score(model, m, "test")
        sp, nnz = mask_sparsity(m, dense_weights)
        out.append(
            SetScore(
                f"{prefix}{lv.freq_khz // 1000}mhz",
                lv.freq_khz,
                c.opts.levels[child.levels[i]],
                sp,
                nnz,
                cnt.mults,
                lat,
                acc,
                ppl,
                m,
            )
        )
    return out


def finetune_final(
    c: Compressor,
    model: nn.Module,
    bp: BlockPruned,
    cands: dict[str, Any],
    dense_weights: dict[str, Any],
    best: Child,
) -> FinalSets:
    """The search's ``best`` child's sets and BP+rPP (random patterns matched to their
    non-zeros, :meth:`lab.compression.pattern_sets.PatternSets.random_matched`), each
    fine-tuned jointly from the BP model and scored on test tokens."""
    rl_sets = c.patterns.set_masks(bp.weights, bp.masks, cands, best)
    finetune_sets(c, model, bp, rl_sets, "RL sets")
    backbone = {k: v.clone() for k, v in model.state_dict().items()}
    rl = score_sets(c, model, rl_sets, "pp-", best, dense_weights)
    bp_on_backbone = c.score(model, bp.masks, "test")
    rpp_sets = c.patterns.random_matched(bp.weights, bp.masks, rl_sets, c.generator(19))
    finetune_sets(c, model, bp, rpp_sets, "BP+rPP baseline")
    rpp = score_sets(c, model, rpp_sets, "rpp-", best, dense_weights)
    rpp_backbone = {k: v.clone() for k, v in model.state_dict().items()}
    final = FinalSets(backbone, rl, bp_on_backbone, rpp, rpp_backbone)
    if c.opts.distill_ablation:
        final = without_distillation(c, model, bp, final, (rl_sets, best, dense_weights))
    return final


def without_distillation(
    c: Compressor,
    model: nn.Module,
    bp: BlockPruned,
    final: FinalSets,
    chosen: tuple[list[dict[str, Any]], Child, dict[str, Any]],
) -> FinalSets:
    """``--distill-ablation``: the chosen sets (``chosen``: their masks, the child, the
    dense weights) fine-tuned again from the same BP model with the same steps and seed but
    no teacher, scored as ``no-distill-pp-<MHz>mhz``, with BP's mask on that backbone."""
    from dataclasses import replace

    sets, best, dense_weights = chosen
    finetune_sets(c, model, bp, sets, "RL sets, no distillation", distill=False)
    scores = score_sets(c, model, sets, "no-distill-pp-", best, dense_weights)
    on_bp = c.score(model, bp.masks, "test")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    return replace(final, no_distill=scores, no_distill_bp=on_bp, no_distill_backbone=state)
