"""Exit heads for the depth and early-exit schemes: built from the dense model, trained
jointly, and scored per exit.

**Model.** The dense model (``compress``'s dense stage) gains an exit head
(``exit_heads.K``, a decoder of its own) after each layer count ``K`` a variant may stop at
(:func:`exit_model`); each head starts as a copy of the trained decoder: it reads a
LayerNorm output like the decoder does.

**Training** (:func:`train_exits`): one joint weighted loss over every exit, as SDN and
BERxiT train their exits, not DeeBERT's two stages (DeeBERT freezes the backbone before it
trains the exits, which keeps the full-depth model exact but leaves the shallow exits on
features never trained for them; with RT3's two layers every layer is an exit's last).
Exit ``i`` after ``k_i`` layers weighs ``(k_i + 1) / sum_j (k_j + 1)``: the deepest exit,
the full model, weighs most. With distillation (``lab.compression.distill``: on unless
``--no-distill``, the run's teacher ``Compressor.teacher``, the frozen dense model) each
exit's loss is the distillation loss against the dense model's logits and its hidden
states up to the exit's depth (DynaBERT's depth students, TinyBERT's layer mapping: layer
``i`` of the student against layer ``i`` of the teacher); with ``--no-distill`` the
cross-entropy alone.

**Scoring** (:func:`score_exits`): every window of a split (``seq_len`` predictions, as
``evaluate_lm`` cuts them) runs every exit once; its confidence at each exit
(``lab.model.transformer.confidence``, row by row as the runtime computes it) and its
correct predictions and loss at each exit are kept, so the accuracy, perplexity and exit
histogram under any threshold are read off without running the model again
(:meth:`ExitScores.at`), exactly as ``run_exits`` would stop each window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

    from lab.compression.compressor import Compressor
    from lab.compression.tasks import SequenceScores
    from lab.model.transformer import RT3TransformerLM

SEED_OFFSET = 4100  # the exit training's RNG offset (no other stage uses it)
LOSS_RULE = (
    "joint weighted loss over the exits (SDN/BERxiT style, not DeeBERT's two stages): "
    "exit i after k_i layers weighs (k_i + 1) / sum_j (k_j + 1)"
)


def exit_model(dense: nn.Module, state: dict[str, Any], exit_heads: list[int]) -> RT3TransformerLM:
    """The dense model's config and weights with exit heads after ``exit_heads`` layer
    counts, each a copy of the trained decoder."""
    import torch

    from lab.model.transformer import RT3TransformerLM

    config = {**dense.config.to_dict(), "exit_heads": list(exit_heads)}
    model = RT3TransformerLM.from_config(config)
    model.load_state_dict(state, strict=False)  # the heads are new
    with torch.no_grad():
        for head in getattr(model, "exit_heads", {}).values():
            head.weight.copy_(model.decoder.weight)
            head.bias.copy_(model.decoder.bias)
    return model


def exit_weights(exits: list[int] | tuple[int, ...]) -> list[float]:
    """Each exit's weight in the joint loss (see the module).

    >>> exit_weights([1, 2])
    [0.4, 0.6]
    """
    total = sum(k + 1 for k in exits)
    return [(k + 1) / total for k in exits]


def train_exits(
    c: Compressor,
    model: RT3TransformerLM,
    exits: list[int] | tuple[int, ...],
    heads: list[str] | tuple[str, ...],
) -> dict[str, Any]:
    """Train ``model`` (every weight, heads included) for the budget's ``final_steps`` on the
    joint weighted loss of ``exits`` (read by ``heads``), distilled from ``c.teacher`` when
    there is one; returns the record of how."""
    import torch
    import torch.nn.functional as F

    from lab.compression.distill import distill_record
    from lab.model.training import make_optimizer

    b = c.budget
    teacher = c.teacher
    weights = exit_weights(exits)
    opt = make_optimizer(model, "adamw", c.finetune_lr, 0.0)
    objective = c.task.objective()
    batches = objective.batches(c.generator(SEED_OFFSET), b.batch_size)
    c.reporter.stage("exit heads: joint training", b.final_steps)
    model.train()
    with c.seeded(SEED_OFFSET):
        for step in range(b.final_steps):
            x, y = next(batches)
            hidden = model.hidden_states(x, max(exits))
            target = None if teacher is None else teacher.output(objective, x)  # type: ignore[arg-type]
            total = torch.zeros(())
            for k, name, w in zip(exits, heads, weights, strict=True):
                logits = model.head(name)(hidden[k])
                hard = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
                if teacher is not None and target is not None:
                    hard = teacher.config.loss(hard, logits, target, hidden[: k + 1])
                total = total + w * hard
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            c.report_step(step, float(total.detach()))
    model.eval()
    return {
        "steps": b.final_steps,
        "lr": c.finetune_lr,
        "loss": LOSS_RULE,
        "weights": dict(zip(heads, weights, strict=True)),
        "distill": {
            **distill_record(c.opts.distill),
            "students": "each exit: its logits, and its hidden states up to its depth against "
            "the dense model's first ones",
        },
    }


@dataclass
class ExitScores:
    """Per window of a split: its confidence at each exit but the last, and its correct
    predictions and summed loss at each exit; ``tokens`` its predictions."""

    exits: tuple[int, ...]
    confidence: list[list[float]] = field(default_factory=list)
    correct: list[list[int]] = field(default_factory=list)
    loss: list[list[float]] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)

    def taken(self, threshold: float | None) -> list[int]:
        """The exit each window stops at under ``threshold`` (None: the last)."""
        last = len(self.exits) - 1
        if threshold is None:
            return [last] * len(self.tokens)
        return [
            next((i for i, c in enumerate(cs) if c >= threshold), last) for cs in self.confidence
        ]

    def histogram(self, threshold: float | None) -> list[float]:
        """The share of windows stopping at each exit."""
        taken = self.taken(threshold)
        return [taken.count(i) / max(1, len(taken)) for i in range(len(self.exits))]

    def at(self, threshold: float | None, force: int | None = None) -> SequenceScores:
        """Accuracy, perplexity and per-window counts under ``threshold`` (or every window
        at exit ``force``)."""
        from lab.compression.tasks import SequenceScores

        taken = [force] * len(self.tokens) if force is not None else self.taken(threshold)
        correct = [c[i] for c, i in zip(self.correct, taken, strict=True)]
        loss = sum(lo[i] for lo, i in zip(self.loss, taken, strict=True))
        n = max(1, sum(self.tokens))
        return SequenceScores(
            sum(correct) / n, math.exp(min(loss / n, 700.0)), tuple(correct), tuple(self.tokens)
        )


def score_exits(
    model: RT3TransformerLM,
    exits: list[int] | tuple[int, ...],
    heads: list[str] | tuple[str, ...],
    tokens: torch.Tensor,
    seq_len: int,
    limit: int | None = None,
) -> ExitScores:
    """Every window of ``tokens`` (its first ``limit`` + 1 tokens) through every exit."""
    import torch
    import torch.nn.functional as F

    from lab.model.transformer import confidence

    if limit is not None:
        tokens = tokens[: limit + 1]
    n_pred = tokens.numel() - 1
    starts = list(range(0, n_pred, seq_len))
    out = ExitScores(tuple(exits))
    model.eval()
    with torch.no_grad():
        for s in starts:
            x = tokens[s : min(s + seq_len, n_pred)].unsqueeze(0)
            y = tokens[s + 1 : min(s + seq_len, n_pred) + 1]
            hidden = model.hidden_states(x, max(exits))
            conf, correct, loss = [], [], []
            for i, (k, name) in enumerate(zip(exits, heads, strict=True)):
                logits = model.head(name)(hidden[k])[0]
                if i < len(exits) - 1:
                    conf.append(confidence(logits))
                correct.append(int((logits.argmax(-1) == y).sum()))
                loss.append(float(F.cross_entropy(logits, y, reduction="sum")))
            out.confidence.append(conf)
            out.correct.append(correct)
            out.loss.append(loss)
            out.tokens.append(int(y.numel()))
    return out


def plan_scores(
    model: RT3TransformerLM,
    meta: dict[str, Any],
    tokens: torch.Tensor,
    seq_len: int,
    limit: int | None = None,
) -> SequenceScores:
    """A depth or early-exit set's scores (its ``meta``'s exits, heads and threshold) on
    ``tokens``, windowed and scored as ``compress`` scored it."""
    from lab.runtime.exits import ExitPlan

    plan = ExitPlan.of_meta(meta, model.config.layers)
    scores = score_exits(model, plan.exits, plan.heads, tokens, seq_len, limit)
    return scores.at(plan.threshold if plan.early else None)
