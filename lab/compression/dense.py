"""The first stage of ``compress``: the unpruned model, trained (or fine-tuned, for a Hugging
Face checkpoint) for the budget's dense steps, or read from the dense-model cache
(:mod:`lab.compression.cache`) when the data, model config, budget, seed, thread count and
training code are the same; then scored on validation (the reward's reference) and test tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lab.compression.cache import (
    cache_key,
    dense_training_sources,
    load_dense,
    save_dense,
    source_fingerprint,
)
from lab.compression.latency.estimators import op_counts
from lab.compression.tasks import LMTask

if TYPE_CHECKING:
    from torch import nn

    from lab.compression.compressor import Compressor


@dataclass(frozen=True)
class DenseModel:
    """The trained dense model's state, prunable weights and figures; ``info`` is the cache
    record (key, and whether it was read from the cache)."""

    info: dict[str, Any]
    state: dict[str, Any]
    weights: dict[str, Any]
    valid: tuple[float, float | None]
    test: tuple[float, float | None]
    ops: int


def train_dense(c: Compressor, model: nn.Module) -> dict[str, Any]:
    """Train (or load from the cache) the dense model; returns the cache record."""
    b = c.budget
    task, opts = c.task, c.opts
    spec = {
        "what": "dense-lm" if isinstance(task, LMTask) else f"dense-{task.kind}",
        "v": 1,
        **task.fingerprint(),
        "model": task.model_config(),
        "seed": opts.seed,
        "steps": b.dense_steps,
        "batch": b.batch_size,
        "seq_len": b.seq_len,
        "lr": c.dense_lr,
        "threads": opts.threads,  # reductions split by thread count: other threads, other bits
        "code": source_fingerprint(dense_training_sources()),
    }
    key = cache_key(spec)
    hit = load_dense(key) if opts.use_cache else None
    c.reporter.stage("dense training", b.dense_steps)
    if hit is not None:
        model.load_state_dict(hit[0])
        c.reporter.advance(b.dense_steps, "cached")
        return {"cache_key": key, "cached": True}
    with c.seeded(0):
        task.train_dense(
            model,
            b,
            opts.seed,
            opts.threads,
            lambda loss: c.reporter.advance(1, f"loss {loss:.2f}"),
        )
    if opts.use_cache:
        save_dense(key, model.state_dict(), spec)
    return {"cache_key": key, "cached": False}


def dense_model(c: Compressor) -> tuple[nn.Module, DenseModel]:
    """A fresh model (seeded), trained dense (:func:`train_dense`) and scored."""
    with c.seeded(0):
        model = c.task.build_model()
    info = train_dense(c, model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    names = list(c.task.prunable(model))
    weights = c.weights(model)
    c.reporter.stage("scoring dense", 2)
    valid = c.score(model, None, "valid")
    c.reporter.advance()
    test = c.score(model, None, "test")
    c.reporter.advance()
    ops = op_counts(model, {}, names, c.task.seq_len).mults
    return model, DenseModel(info, state, weights, valid, test, ops)
