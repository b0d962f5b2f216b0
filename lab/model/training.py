"""Training and evaluation of the language model: batching, a seeded training loop, scoring.

``train_lm`` is the one loop every stage uses (dense training, masked retraining, joint
fine-tuning of pattern sets). Compression plugs into it through three hooks:

- ``penalty(model) -> Tensor`` is added to the loss (e.g. a reweighted group lasso);
- ``loss_fn(model, inputs, targets) -> Tensor`` replaces the cross-entropy loss (e.g. the
  0.5/0.3/0.2 weighted sum over pattern sets that share one weight tensor);
- ``after_step(model, step)`` runs after every optimizer step (e.g. re-apply masks so that
  pruned weights never revive).

Accuracy is top-1 next-token accuracy (RT3's metric); perplexity is exp of the mean loss.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from lab.host.compute import on_compute_device, to_device

if TYPE_CHECKING:
    import torch
    from torch import nn

    from lab.model.data.glue import EncodedGlue


class TrainingError(ValueError):
    """Bad arguments to the training loop (shape, size, optimizer name)."""


@dataclass(frozen=True)
class LMScore:
    """A language model's score on a token stream."""

    accuracy: float
    """Top-1 next-token accuracy in [0, 1]."""
    perplexity: float
    loss: float
    """Mean cross-entropy per predicted token (nats)."""
    tokens: int = 0
    """How many next-token predictions were scored."""
    sequence_correct: tuple[int, ...] = ()
    """With ``per_sequence``: correct predictions in each scored window, in stream order."""
    sequence_tokens: tuple[int, ...] = ()
    """With ``per_sequence``: predictions in each window (``seq_len``; the last may be
    shorter); ``sum(sequence_correct) / sum(sequence_tokens)`` is ``accuracy``."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (the per-window counts only when they were asked for)."""
        d = asdict(self)
        for key in ("sequence_correct", "sequence_tokens"):
            if not d[key]:
                del d[key]
        return d


@dataclass(frozen=True)
class TrainProgress:
    """What the progress callback receives after every optimizer step."""

    step: int
    total_steps: int
    """Planned steps (``max_steps`` or epochs x batches); a time budget may end earlier."""
    epoch: int
    loss: float
    tokens: int
    elapsed_s: float


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_lm` did."""

    steps: int
    epochs: float
    tokens: int
    seconds: float
    tokens_per_s: float
    final_loss: float
    """Mean training loss over the last (up to) 50 steps."""
    stopped_by: str
    """``"epochs"``, ``"max_steps"`` or ``"time_budget"``."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return asdict(self)


class LoopOptions(TypedDict, total=False):
    """Keywords of the training loop that :func:`train_lm` and :func:`train_classifier`
    share, each optional (its default in brackets)."""

    weight_decay: float
    """AdamW's decoupled weight decay on matrices, SGD's on all (0.01)."""
    warmup_steps: int
    """Steps of linear learning-rate warm-up (0)."""
    max_steps: int | None
    """Stop after this many optimizer steps (None: no cap)."""
    time_budget_s: float | None
    """Stop after this many seconds (None: no cap)."""
    seed: int
    """Seeds the batch order and dropout (0)."""
    penalty: Callable[[nn.Module], torch.Tensor] | None
    """Added to the loss at every step (None)."""
    after_step: Callable[[nn.Module, int], None] | None
    """Runs after every optimizer step under ``no_grad`` (None)."""
    progress: Callable[[TrainProgress], None] | None
    """Receives a :class:`TrainProgress` after every step (None)."""
    precision: str
    """``fp32`` or ``bf16`` (``fp32``; see :func:`autocast`)."""
    threads: int | None
    """Torch threads (None: :func:`torch_threads`' default)."""


@contextlib.contextmanager
def torch_threads(threads: int | None = None) -> Iterator[int]:
    """Run the block with ``threads`` torch threads (default ``lab.host.threads.default_threads``:
    ``OMP_NUM_THREADS`` or the usable cores), then restore.

    Training and scoring use every core by default. On a machine shared with other busy
    processes the OpenMP workers must not spin (``lab.host.threads``: the CLI sets
    ``OMP_WAIT_POLICY=PASSIVE``), else small models run far slower multi-threaded.

    >>> with torch_threads(1) as n:
    ...     n
    1
    """
    import torch

    from lab.host.threads import MAX_THREADS, default_threads

    n = threads if threads is not None else default_threads()
    if not 1 <= n <= MAX_THREADS:  # torch.set_num_threads(100000) crashes the process
        raise TrainingError(f"threads must be 1..{MAX_THREADS}, got {n}")
    previous = torch.get_num_threads()
    if n != previous:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


PRECISIONS = ("fp32", "bf16")


def autocast(precision: str) -> Callable[[], Any]:
    """A context factory for ``precision``: ``fp32`` (no-op) or ``bf16`` (CPU autocast).

    bf16 roughly doubles matrix-multiply throughput on CPUs with AVX512-BF16 or AMX; the
    loss and the weights stay float32.

    >>> with autocast("fp32")():
    ...     pass
    """
    import torch

    if precision == "fp32":
        return contextlib.nullcontext
    if precision == "bf16":
        return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    raise TrainingError(f"precision {precision!r}: expected one of {list(PRECISIONS)}")


def _check_stream(data: torch.Tensor, name: str = "data") -> None:
    if data.dim() != 1:
        raise TrainingError(f"{name}: expected a 1-D token stream, got shape {tuple(data.shape)}")


def lm_batches(
    data: torch.Tensor,
    batch_size: int,
    seq_len: int = 35,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Cut a 1-D token stream into ``(inputs, targets)`` batches of shape ``(batch, <=seq_len)``.

    As in the tutorial's ``batchify``, the stream is trimmed to a multiple of ``batch_size``
    and laid out as ``batch_size`` parallel sub-streams; batch ``i`` holds positions
    ``[i*seq_len, (i+1)*seq_len)`` of each, and targets are the inputs shifted by one. The
    last batch may be shorter. ``shuffle`` permutes the batch order (with ``generator``).

    >>> import torch
    >>> [(x.tolist(), y.tolist()) for x, y in lm_batches(torch.arange(10), 2, 3)]
    [([[0, 1, 2], [5, 6, 7]], [[1, 2, 3], [6, 7, 8]]), ([[3], [8]], [[4], [9]])]
    """
    import torch

    _check_stream(data)
    if batch_size < 1 or seq_len < 1:
        raise TrainingError(f"batch_size and seq_len must be >= 1, got {batch_size}, {seq_len}")
    n = data.numel() // batch_size
    if n < 2:
        raise TrainingError(
            f"data: {data.numel()} tokens is too few for batch_size {batch_size} "
            "(need at least 2 per sub-stream)"
        )
    streams = data[: n * batch_size].view(batch_size, n)
    starts = list(range(0, n - 1, seq_len))
    if shuffle:
        order = torch.randperm(len(starts), generator=generator).tolist()
        starts = [starts[i] for i in order]
    for i in starts:
        length = min(seq_len, n - 1 - i)
        yield streams[:, i : i + length], streams[:, i + 1 : i + 1 + length]


def num_batches(data: torch.Tensor, batch_size: int, seq_len: int = 35) -> int:
    """How many batches :func:`lm_batches` yields for these arguments.

    >>> import torch
    >>> num_batches(torch.arange(10), 2, 3)
    2
    """
    n = data.numel() // batch_size
    return max(0, math.ceil((n - 1) / seq_len))


def lm_loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of ``model`` on one batch."""
    import torch.nn.functional as F

    logits = model(inputs)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def make_optimizer(
    model: nn.Module, name: str, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """``adamw`` (decay on matrices only) or ``sgd`` (plain, as the tutorial)."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if name == "adamw":
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        groups = [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        # fused: one kernel over all tensors; on two cores it is several times faster than
        # the per-tensor loop, and the optimizer step is a large share of a small model's step.
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    raise TrainingError(f"optimizer {name!r}: expected 'adamw' or 'sgd'")


def train_lm(
    model: nn.Module,
    data: torch.Tensor,
    *,
    epochs: float = 1.0,
    batch_size: int = 20,
    seq_len: int = 35,
    optimizer: str = "adamw",
    lr: float | None = None,
    clip: float | None = 0.5,
    loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    **loop: Unpack[LoopOptions],
) -> TrainResult:
    """Train ``model`` on the 1-D token stream ``data``; returns what was done.

    Stops after ``epochs`` passes (fractions allowed), ``max_steps`` steps or
    ``time_budget_s`` seconds, whichever comes first. ``lr`` defaults to 1e-3 for AdamW and
    5.0 for SGD (the tutorial's). A linear warm-up over ``warmup_steps`` and a cosine decay
    to 10% over the planned steps are applied. Gradients are clipped to norm ``clip``.
    Batch order is shuffled each epoch and dropout is seeded from ``seed``, so two runs with
    the same arguments and thread count give the same weights. Uses every core unless
    ``threads`` says otherwise (see :func:`torch_threads`). The model is left in eval mode.
    ``precision="bf16"`` runs forward and backward under CPU bfloat16 autocast (weights and
    optimizer state stay float32); see :func:`autocast`. The other keywords are
    :class:`LoopOptions`.
    """
    _check_stream(data)
    per_epoch = num_batches(data, batch_size, seq_len)
    if per_epoch < 1:
        raise TrainingError(f"data: {data.numel()} tokens is too few for batch_size {batch_size}")

    def batches(generator: torch.Generator) -> Iterator[tuple[Any, Any]]:
        return lm_batches(data, batch_size, seq_len, shuffle=True, generator=generator)

    return _fit(
        model,
        batches,
        per_epoch,
        loss_fn or lm_loss,
        lambda inputs, targets: targets.numel(),
        epochs=epochs,
        optimizer=optimizer,
        lr=lr if lr is not None else (1e-3 if optimizer == "adamw" else 5.0),
        clip=clip,
        **loop,
    )


def _fit(
    model: nn.Module,
    batches: Callable[[torch.Generator], Iterator[tuple[Any, Any]]],
    per_epoch: int,
    compute_loss: Callable[[nn.Module, Any, Any], torch.Tensor],
    count: Callable[[Any, Any], int],
    *,
    epochs: float,
    optimizer: str,
    lr: float,
    clip: float | None,
    weight_decay: float = 0.01,
    warmup_steps: int = 0,
    max_steps: int | None = None,
    time_budget_s: float | None = None,
    seed: int = 0,
    penalty: Callable[[nn.Module], torch.Tensor] | None = None,
    after_step: Callable[[nn.Module, int], None] | None = None,
    progress: Callable[[TrainProgress], None] | None = None,
    precision: str = "fp32",
    threads: int | None = None,
) -> TrainResult:
    """The one training loop: schedule, hooks, clipping, budget, seeded order and dropout."""
    import torch

    cast = autocast(precision)
    if epochs <= 0:
        raise TrainingError(f"epochs must be > 0, got {epochs}")
    planned = math.ceil(epochs * per_epoch)
    if max_steps is not None:
        planned = min(planned, max_steps)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)

    def schedule(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        frac = min(1.0, (step - warmup_steps) / max(1, planned - warmup_steps))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))

    model.train()
    start = time.perf_counter()
    step = tokens = 0
    recent: list[float] = []
    stopped_by = "epochs"
    epoch = 0
    guard = contextlib.ExitStack()
    guard.enter_context(torch_threads(threads))
    dev = guard.enter_context(on_compute_device(model))
    # The optimizer is made after the move, so its state lives on the compute device.
    opt = make_optimizer(model, optimizer, lr, weight_decay)
    params = [p for group in opt.param_groups for p in group["params"]]
    try:
        while step < planned and stopped_by == "epochs":
            for cpu_inputs, cpu_targets in batches(generator):
                inputs, targets = to_device(cpu_inputs, dev), to_device(cpu_targets, dev)
                for group in opt.param_groups:
                    group["lr"] = lr * schedule(step)
                with cast():
                    loss = compute_loss(model, inputs, targets)
                total = loss + penalty(model) if penalty is not None else loss
                opt.zero_grad(set_to_none=True)
                total.backward()
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, clip)
                opt.step()
                step += 1
                if after_step is not None:
                    with torch.no_grad():
                        after_step(model, step)
                tokens += count(inputs, targets)
                recent = [*recent[-49:], float(loss.detach())]
                elapsed = time.perf_counter() - start
                if progress is not None:
                    progress(TrainProgress(step, planned, epoch, recent[-1], tokens, elapsed))
                if step >= planned:
                    if max_steps is not None and step == max_steps:
                        stopped_by = "max_steps"
                    break
                if time_budget_s is not None and elapsed >= time_budget_s:
                    stopped_by = "time_budget"
                    break
            epoch += 1
    finally:
        model.eval()
        guard.close()
    seconds = time.perf_counter() - start
    return TrainResult(
        steps=step,
        epochs=step / per_epoch,
        tokens=tokens,
        seconds=seconds,
        tokens_per_s=tokens / seconds if seconds > 0 else 0.0,
        final_loss=sum(recent) / len(recent) if recent else float("nan"),
        stopped_by=stopped_by,
    )


def evaluate_lm(
    model: nn.Module,
    data: torch.Tensor,
    seq_len: int = 35,
    *,
    batch_size: int = 32,
    max_tokens: int | None = None,
    precision: str = "fp32",
    threads: int | None = None,
    per_sequence: bool = False,
) -> LMScore:
    """Top-1 next-token accuracy, perplexity and mean loss of ``model`` on a token stream.

    The stream is cut into consecutive windows of ``seq_len`` predictions; every token
    after the first is predicted exactly once, from the preceding tokens of its window, so
    the score does not depend on ``batch_size``. ``max_tokens`` scores only a prefix (for
    fast estimates inside a search). ``per_sequence`` also keeps each window's correct
    predictions and size (``sequence_correct``, ``sequence_tokens``: the same counts the
    accuracy sums). Runs in eval mode under ``no_grad`` and restores the model's mode.
    """
    import torch
    import torch.nn.functional as F

    _check_stream(data)
    cast = autocast(precision)
    if max_tokens is not None:
        data = data[: max_tokens + 1]
    n_pred = data.numel() - 1
    if n_pred < 1:
        raise TrainingError(f"data: {data.numel()} tokens is too few to score")
    full = n_pred // seq_len
    inputs = data[: full * seq_len].view(full, seq_len)
    targets = data[1 : full * seq_len + 1].view(full, seq_len)
    chunks = [
        (inputs[i : i + batch_size], targets[i : i + batch_size])
        for i in range(0, full, batch_size)
    ]
    if n_pred > full * seq_len:
        chunks.append(
            (data[full * seq_len : -1].unsqueeze(0), data[full * seq_len + 1 :].unsqueeze(0))
        )
    was_training = model.training
    model.eval()
    loss_sum = 0.0
    correct = 0
    windows: list[int] = []  # correct predictions per window (per_sequence)
    try:
        with torch.no_grad(), torch_threads(threads), on_compute_device(model) as dev:
            for cpu_x, cpu_y in chunks:
                x, y = cpu_x.to(dev), cpu_y.to(dev)
                with cast():
                    logits = model(x)
                flat = logits.float().reshape(-1, logits.shape[-1])
                loss_sum += float(F.cross_entropy(flat, y.reshape(-1), reduction="sum"))
                hits = flat.argmax(-1) == y.reshape(-1)
                correct += int(hits.sum())
                if per_sequence:
                    windows += hits.view(y.shape).sum(dim=1).tolist()
    finally:
        model.train(was_training)
    loss = loss_sum / n_pred
    sizes = [y.shape[1] for _, y in chunks for _ in range(y.shape[0])] if per_sequence else []
    return LMScore(
        accuracy=correct / n_pred,
        perplexity=math.exp(min(loss, 700.0)),
        loss=loss,
        tokens=n_pred,
        sequence_correct=tuple(int(c) for c in windows),
        sequence_tokens=tuple(int(n) for n in sizes),
    )


@dataclass(frozen=True)
class ClassifierScore:
    """A sequence classifier's score on a GLUE split."""

    metric: str
    """The task's GLUE metric: ``accuracy``, ``matthews`` (CoLA), ``f1`` (MRPC, QQP) or
    ``pearson`` (STS-B)."""
    value: float
    accuracy: float | None
    """None for regression (STS-B)."""
    loss: float
    examples: int
    example_correct: tuple[int, ...] = ()
    """With ``per_example`` (classification only): 1 where an example was classified
    correctly, else 0, in split order; their mean is ``accuracy``."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (the per-example flags only when they were asked for)."""
        d = asdict(self)
        if not d["example_correct"]:
            del d["example_correct"]
        return d


GLUE_METRICS = {"cola": "matthews", "mrpc": "f1", "qqp": "f1", "stsb": "pearson"}


def glue_metric(task: str, predictions: Any, labels: Any) -> tuple[str, float]:
    """The task's GLUE metric of predictions against labels (1-D tensors).

    >>> import torch
    >>> glue_metric("sst2", torch.tensor([1, 0, 1]), torch.tensor([1, 1, 1]))
    ('accuracy', 0.6666666666666666)
    >>> glue_metric("cola", torch.tensor([1, 0, 1, 0]), torch.tensor([1, 0, 1, 0]))
    ('matthews', 1.0)
    """
    metric = GLUE_METRICS.get(task, "accuracy")
    if metric == "pearson":
        x = predictions.double() - predictions.double().mean()
        y = labels.double() - labels.double().mean()
        denom = float(x.norm() * y.norm())
        return metric, float((x * y).sum()) / denom if denom else 0.0
    p, t = predictions.long(), labels.long()
    if metric == "accuracy":
        return metric, float((p == t).double().mean())
    tp = int(((p == 1) & (t == 1)).sum())
    tn = int(((p == 0) & (t == 0)).sum())
    fp = int(((p == 1) & (t == 0)).sum())
    fn = int(((p == 0) & (t == 1)).sum())
    if metric == "f1":
        return metric, 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    denom = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return metric, (tp * tn - fp * fn) / denom if denom else 0.0


def classifier_loss(model: nn.Module, inputs: dict[str, Any], labels: Any) -> torch.Tensor:
    """Cross-entropy for class labels, mean squared error for float scores (STS-B)."""
    return logits_loss(output_logits(model(**inputs)), labels)


def logits_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for class labels, mean squared error for a regression target (STS-B)."""
    import torch.nn.functional as F

    if labels.dtype.is_floating_point:
        return F.mse_loss(logits.squeeze(-1).float(), labels)
    return F.cross_entropy(logits.float(), labels)


def output_logits(output: Any) -> torch.Tensor:
    """The logits of a model's output: a Hugging Face output object or a bare tensor."""
    return output.logits if hasattr(output, "logits") else output


def classifier_batches(
    data: EncodedGlue,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[dict[str, Any], Any]]:
    """``(model inputs, labels)`` batches of an encoded GLUE split."""
    import torch

    n = len(data)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for i in range(0, n, batch_size):
        rows = order[i : i + batch_size]
        yield data.inputs(rows), data.labels[rows]


def train_classifier(
    model: nn.Module,
    data: EncodedGlue,
    *,
    epochs: float = 3.0,
    batch_size: int = 32,
    lr: float = 2e-5,
    clip: float | None = 1.0,
    loss_fn: Callable[[nn.Module, dict[str, Any], Any], torch.Tensor] | None = None,
    **loop: Unpack[LoopOptions],
) -> TrainResult:
    """Fine-tune a sequence classifier on an encoded GLUE split (AdamW, BERT's defaults).

    Same loop, hooks and :class:`LoopOptions` as :func:`train_lm`; ``tokens`` in the result
    counts non-padding input tokens.
    """
    if len(data) < 1:
        raise TrainingError("train_classifier: no examples")
    per_epoch = math.ceil(len(data) / batch_size)

    def batches(generator: torch.Generator) -> Iterator[tuple[Any, Any]]:
        return classifier_batches(data, batch_size, shuffle=True, generator=generator)

    return _fit(
        model,
        batches,
        per_epoch,
        loss_fn or classifier_loss,
        lambda inputs, labels: int(inputs["attention_mask"].sum()),
        epochs=epochs,
        optimizer="adamw",
        lr=lr,
        clip=clip,
        **loop,
    )


def evaluate_classifier(
    model: nn.Module,
    data: EncodedGlue,
    task: str = "",
    *,
    batch_size: int = 64,
    threads: int | None = None,
    per_example: bool = False,
) -> ClassifierScore:
    """Score a classifier on an encoded GLUE split with the task's GLUE metric;
    ``per_example`` also keeps which examples it got right (``example_correct``; not for
    regression)."""
    import torch

    if len(data) < 1:
        raise TrainingError("evaluate_classifier: no examples")
    was_training = model.training
    model.eval()
    outputs, loss_sum = [], 0.0
    try:
        with torch.no_grad(), torch_threads(threads), on_compute_device(model) as dev:
            for cpu_inputs, cpu_labels in classifier_batches(data, batch_size):
                inputs, labels = to_device(cpu_inputs, dev), cpu_labels.to(dev)
                logits = output_logits(model(**inputs)).float()
                outputs.append(logits.cpu())
                loss_sum += float(logits_loss(logits, labels)) * len(labels)
    finally:
        model.train(was_training)
    logits = torch.cat(outputs)
    regression = data.labels.dtype.is_floating_point
    predictions = logits.squeeze(-1) if regression else logits.argmax(-1)
    metric, value = glue_metric("stsb" if regression else task, predictions, data.labels)
    hits = None if regression else predictions == data.labels
    accuracy = None if hits is None else float(hits.double().mean())
    flags = tuple(int(h) for h in hits.tolist()) if per_example and hits is not None else ()
    return ClassifierScore(metric, value, accuracy, loss_sum / len(data), len(data), flags)
