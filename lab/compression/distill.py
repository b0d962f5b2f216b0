"""Knowledge distillation: the dense model teaches every pruned student trained after it.

The loss of one student on one batch (Hinton et al. 2015 for the logits; DynaBERT's MSE on
hidden states, Hou et al. 2020)::

    loss = alpha * hard + (1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T))
           + beta * mean_l MSE(h_s[l], h_t[l])

``hard`` is the task's own loss on the labels (next-token cross-entropy for the LM), ``s``
and ``t`` the student's and the teacher's logits, ``T`` the temperature (the ``T^2`` keeps
the soft term's gradient on the hard term's scale as ``T`` grows), and ``h[l]`` the hidden
states: the embedding output (the first encoder layer's input) and every encoder layer's
output, compared where student and teacher have the same shape (all of them for a pruned
LM: pruning keeps every shape). A single-logit head (a regression task) has no
distribution: its soft term is the MSE between the two logits.

The teacher's output is computed once per batch under ``torch.no_grad`` (:meth:`Teacher.
output`) and shared by every set a joint step trains. :func:`student_loss` is the one call a
training loop makes; :meth:`Distillation.loss` is the formula alone, for any scheme that
already has its student's logits, hidden states and hard loss (width, depth, early exit).

>>> Distillation().record()["temperature"]
2.0
>>> Distillation(temperature=0)
Traceback (most recent call last):
...
lab.compression.distill.DistillationError: --distill-temperature 0: expected a finite number > 0
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch
    from torch import nn

# What the defaults rest on (recorded in the bundle's provenance.distill):
DEFAULTS_NOTE = (
    "T = 2 and alpha = 0.5 (Hinton et al.'s soft and hard terms, equal weight); beta = 1: "
    "DynaBERT's hidden-state MSE beside the logit term at the same weight, the LM's layer "
    "outputs being LayerNorm outputs of unit scale"
)


class DistillationError(ValueError):
    """A distillation setting out of range; the message names the option."""


@dataclass(frozen=True)
class Distillation:
    """The distillation loss's settings: ``temperature`` T of the soft logits, ``alpha`` the
    weight of the hard-label loss (``1 - alpha`` the soft term's), ``hidden_weight`` beta
    of the hidden-state MSE (0: logits only)."""

    temperature: float = 2.0
    alpha: float = 0.5
    hidden_weight: float = 1.0

    def __post_init__(self) -> None:
        t, a, b = self.temperature, self.alpha, self.hidden_weight
        if not _number(t) or not t > 0:
            raise DistillationError(f"--distill-temperature {t}: expected a finite number > 0")
        if not _number(a) or not 0.0 <= a <= 1.0:
            raise DistillationError(f"--distill-alpha {a}: expected a number in [0, 1]")
        if not _number(b) or b < 0:
            raise DistillationError(f"--distill-hidden-weight {b}: expected a finite number >= 0")

    def record(self) -> dict[str, Any]:
        """JSON form (``provenance.distill`` adds ``on`` and where it applies)."""
        return {k: float(v) for k, v in asdict(self).items()}

    def loss(
        self,
        hard: torch.Tensor,
        student_logits: torch.Tensor,
        teacher: TeacherOutput,
        student_hidden: Sequence[torch.Tensor] = (),
    ) -> torch.Tensor:
        """``alpha * hard + (1 - alpha) * soft + beta * hidden`` (:func:`soft_loss`,
        :func:`hidden_loss`); the hidden term only where ``student_hidden`` is given."""
        total = self.alpha * hard
        if self.alpha < 1.0:
            soft = soft_loss(student_logits, teacher.logits, self.temperature)
            total = total + (1.0 - self.alpha) * soft
        if self.hidden_weight > 0 and student_hidden:
            total = total + self.hidden_weight * hidden_loss(student_hidden, teacher.hidden)
        return total


def check_ablation(distill: Distillation | None, ablation: bool) -> None:
    """Refuse ``--distill-ablation`` with ``--no-distill``: nothing to compare against."""
    if ablation and distill is None:
        raise DistillationError(
            "--distill-ablation with --no-distill: the ablation fine-tunes the chosen sets "
            "without distillation beside the distilled ones; drop one of the two"
        )


# Where compress applies distillation when it is on (provenance.distill.applied_to).
APPLIED_TO = (
    "BP: group-lasso phase and masked retraining (rBP's retraining likewise)",
    "supernet: joint training on random children",
    "final joint fine-tuning of the chosen sets (BP+rPP's likewise)",
)


def distill_record(distill: Distillation | None, ablation: bool = False) -> dict[str, Any]:
    """``provenance.distill``: on or off, the settings and what they rest on, where it
    applies, and whether the bundle keeps the no-distillation ablation.

    >>> distill_record(None)["on"]
    False
    """
    if distill is None:
        return {"on": False, "ablation": False}
    return {
        "on": True,
        **distill.record(),
        "teacher": "the dense model (compress's dense stage), frozen, eval mode",
        "hidden_states": "embedding output and each encoder layer's output, MSE where "
        "the shapes match",
        "defaults": DEFAULTS_NOTE,
        "applied_to": list(APPLIED_TO),
        "ablation": ablation,
    }


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class TeacherOutput:
    """The teacher's logits on a batch and its hidden states (embedding output, then each
    encoder layer's output), all without gradient."""

    logits: torch.Tensor
    hidden: tuple[torch.Tensor, ...] = ()


def soft_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``T^2 * KL(softmax(t / T) || softmax(s / T))``, averaged over every prediction (each
    position of every sequence); for a single logit (regression) the MSE of the logits.

    >>> import torch
    >>> x = torch.tensor([[1.0, 2.0, 0.5]])
    >>> float(soft_loss(x, x, 2.0))
    0.0
    """
    import torch.nn.functional as F

    if student_logits.shape[-1] == 1:
        return F.mse_loss(student_logits.float(), teacher_logits.float())
    n = student_logits.shape[-1]
    s = F.log_softmax(student_logits.reshape(-1, n).float() / temperature, dim=-1)
    t = F.log_softmax(teacher_logits.reshape(-1, n).float() / temperature, dim=-1)
    kl = F.kl_div(s, t, reduction="batchmean", log_target=True)
    return kl * temperature**2


def hidden_loss(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean over the pairs of equal shape of each pair's MSE (pairs in order: a student with
    fewer layers is compared on its first ones); zero when no pair matches."""
    import torch
    import torch.nn.functional as F

    pairs = [(s, t) for s, t in zip(student, teacher, strict=False) if s.shape == t.shape]
    if not pairs:
        device = student[0].device if student else None
        return torch.zeros((), device=device)
    return torch.stack([F.mse_loss(s.float(), t.float()) for s, t in pairs]).mean()


def encoder_layers(model: nn.Module) -> list[nn.Module]:
    """The model's encoder layers, in order: the first ``ModuleList`` named ``layers``
    (RT3's LM) or ``layer`` (a Hugging Face encoder); ``[]`` when it has none."""
    from torch import nn

    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and name.rsplit(".", 1)[-1] in ("layers", "layer"):
            return list(module)
    return []


@contextlib.contextmanager
def captured_hidden(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Inside the block, every forward of ``model`` appends its hidden states to the list
    yielded: the first encoder layer's input (the embedding output), then each encoder
    layer's output (a tuple output's first element). Works under ``functional_call``."""
    layers = encoder_layers(model)
    found: list[torch.Tensor] = []
    handles = []

    def first_input(_m: Any, args: tuple, kwargs: dict) -> None:
        x = args[0] if args else kwargs.get("hidden_states")
        if x is not None:
            found.append(x)

    def output(_m: Any, _args: Any, out: Any) -> None:
        found.append(out[0] if isinstance(out, tuple) else out)

    if layers:
        handles.append(layers[0].register_forward_pre_hook(first_input, with_kwargs=True))
        handles += [layer.register_forward_hook(output) for layer in layers]
    try:
        yield found
    finally:
        for h in handles:
            h.remove()


class LogitsObjective(Protocol):
    """What distillation needs of a training objective: the logits and the hard loss apart
    (:class:`lab.compression.finetune.LMObjective`, :class:`lab.compression.tasks.
    ClassifierObjective`)."""

    def logits(self, model: nn.Module, inputs: Any, params: dict | None = None) -> torch.Tensor:
        """The model's logits on ``inputs`` (with ``params`` substituted when given)."""

    def hard_loss(self, logits: torch.Tensor, targets: Any) -> torch.Tensor:
        """The task's own loss of ``logits`` against the labels."""


class Teacher:
    """A frozen copy of the teacher model (``model``'s weights now) and the loss's
    settings; :meth:`output` runs it on a batch without gradient, in eval mode."""

    def __init__(self, model: nn.Module, config: Distillation) -> None:
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.config = config

    def output(self, objective: LogitsObjective, inputs: Any) -> TeacherOutput:
        """The teacher's logits and (when the loss uses them) hidden states on ``inputs``,
        on the inputs' device."""
        import torch

        from lab.host.compute import module_device

        want = _device_of(inputs)
        if want is not None and module_device(self.model) != want:
            self.model.to(want)
        with torch.no_grad(), captured_hidden(self.model) as hidden:
            logits = objective.logits(self.model, inputs)
        keep = tuple(hidden) if self.config.hidden_weight > 0 else ()
        return TeacherOutput(logits, keep)


def _device_of(inputs: Any) -> torch.device | None:
    if isinstance(inputs, dict):
        return next((v.device for v in inputs.values() if hasattr(v, "device")), None)
    return getattr(inputs, "device", None)


def student_loss(
    objective: LogitsObjective,
    model: nn.Module,
    inputs: Any,
    targets: Any,
    teacher: TeacherOutput,
    config: Distillation,
    params: dict | None = None,
) -> torch.Tensor:
    """One student's distillation loss on a batch (``params`` substituted when given, e.g.
    a pattern set's masked weights) against the teacher's output on the same batch."""
    want_hidden = config.hidden_weight > 0
    with captured_hidden(model) if want_hidden else contextlib.nullcontext([]) as hidden:
        logits = objective.logits(model, inputs, params)
    return config.loss(objective.hard_loss(logits, targets), logits, teacher, hidden)
