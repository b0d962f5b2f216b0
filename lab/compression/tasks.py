"""What ``rt3lab compress`` compresses: a model, its data, and how a set is scored.

One pipeline (:mod:`lab.compression.pipeline`) serves two tasks:

- :class:`LMTask` (``--model rt3-transformer --data builtin|wikitext2:DIR``): RT3's
  Transformer language model of the budget's size, trained from scratch; top-1 next-token
  accuracy and perplexity.
- :class:`GlueTask` (``--model hf:DIR --data glue:TASK:DIR``): a Hugging Face BERT-family
  classifier from a local checkpoint, fine-tuned on a GLUE task's TSVs with the
  checkpoint's own tokenizer. The score is the task's accuracy (Pearson's r for the
  regression task STS-B); perplexity does not apply. GLUE's test labels are not public, so
  the dev split is what the bundle reports, and a fixed tenth of train (every tenth
  example) scores the search's children. Pruned layers are the Linear layers of the encoder
  blocks (attention and feed-forward), as in Li et al. 2020's BP of BERT; embeddings and
  the classification head stay dense.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lab.compression.budget import Budget
from lab.compression.cache import tokens_fingerprint
from lab.compression.sparsifier import CompressionError, prunable_weights

if TYPE_CHECKING:
    import torch
    from torch import nn

    from lab.compression.finetune import Objective
    from lab.model.data.glue import EncodedGlue, GlueData

BERT_BP_CONFIG = Path(__file__).with_name("bp_bert.yaml")


class Task(Protocol):
    """The model-and-data side of the pipeline. :class:`LMTask` and :class:`GlueTask`
    subclass it and share its :meth:`train_dense`."""

    spec: str  # the data, as recorded in the bundle's provenance
    kind: str  # the bundle's model kind (``lab.model.build_model``)
    seq_len: int  # tokens per inference, for RT3's op counts
    metric: str  # what ``accuracy`` means for this task

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the data and the starting model (cache keys)."""

    def model_config(self) -> dict[str, Any]:
        """The model config recorded in the bundle."""

    def build_model(self) -> nn.Module:
        """A fresh model (RT3: random init; Hugging Face: the checkpoint)."""

    def prunable(self, model: nn.Module) -> dict[str, nn.Module]:
        """The layers BP and PP may prune, in model order."""

    def objective(self) -> Objective:
        """The training objective on the train split."""

    def score(
        self, model: nn.Module, split: str, limit: int | None, threads: int | None
    ) -> tuple[float, float | None]:
        """``(accuracy, perplexity or None)`` on ``valid`` or ``test``."""

    def score_sequences(
        self, model: nn.Module, split: str, limit: int | None, threads: int | None
    ) -> SequenceScores:
        """``score``'s figures from the same pass, with each scored sequence's counts."""

    def dense_training(self, budget: Budget) -> tuple[Callable[..., Any], Any, dict[str, Any]]:
        """``(training function, train split, its options)`` for :meth:`train_dense`: the
        function is ``lab.model.training``'s ``train_lm`` or ``train_classifier``."""

    def train_dense(
        self,
        model: nn.Module,
        budget: Budget,
        seed: int,
        threads: int | None,
        progress: Callable[[float], None],
    ) -> None:
        """Train (or fine-tune) the unpruned model for ``budget.dense_steps`` steps at the
        dense learning rate (:meth:`learning_rates`); ``progress`` gets every step's loss."""
        train, data, options = self.dense_training(budget)
        train(
            model,
            data,
            epochs=1000.0,
            max_steps=budget.dense_steps,
            batch_size=budget.batch_size,
            lr=self.learning_rates(budget)[0],
            seed=seed,
            threads=threads,
            progress=lambda p: progress(p.loss),
            **options,
        )

    def learning_rates(self, budget: Budget) -> tuple[float, float]:
        """``(dense, fine-tuning)`` learning rates."""

    def default_bp_config(self) -> Path | None:
        """The BP config used when ``--bp-config`` is not given (None: RT3's)."""


@dataclass(frozen=True)
class SequenceScores:
    """A score with its parts: per scored sequence (an LM's window of ``seq_len``
    predictions, a classifier's example) the correct predictions and the predictions made,
    in split order. ``accuracy`` is ``sum(correct) / sum(tokens)`` exactly; both are empty
    where the score is not a mean over sequences (a regression task's Pearson's r).

    >>> s = SequenceScores(0.5, None, (1, 2), (2, 4))
    >>> s.accuracies(), s.accuracy == sum(s.correct) / sum(s.tokens)
    ([0.5, 0.5], True)
    """

    accuracy: float
    perplexity: float | None
    correct: tuple[int, ...] = ()
    tokens: tuple[int, ...] = ()

    def accuracies(self) -> list[float]:
        """Each sequence's accuracy (its correct predictions over its predictions)."""
        return [c / n for c, n in zip(self.correct, self.tokens, strict=True)]


@dataclass(frozen=True)
class LMData:
    """Token streams of a language-modelling corpus."""

    spec: str
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    vocab_size: int


@dataclass
class LMTask(Task):
    """RT3's Transformer LM of ``budget``'s size on a token corpus."""

    data: LMData
    budget: Budget
    kind: str = "rt3-transformer"
    metric: str = "next-token accuracy"

    @property
    def spec(self) -> str:
        return self.data.spec

    @property
    def seq_len(self) -> int:
        return self.budget.seq_len

    def fingerprint(self) -> dict[str, Any]:
        d = self.data
        return {"data": d.spec, "tokens": tokens_fingerprint(d.train, d.valid, d.test)}

    def model_config(self) -> dict[str, Any]:
        return {"vocab_size": self.data.vocab_size, **self.budget.model_config()}

    def build_model(self) -> nn.Module:
        from lab.model.transformer import RT3TransformerLM

        return RT3TransformerLM.from_config(self.model_config())

    def prunable(self, model: nn.Module) -> dict[str, nn.Module]:
        return prunable_weights(model)

    def objective(self) -> Objective:
        from lab.compression.finetune import LMObjective

        return LMObjective(self.data.train, self.budget.seq_len)

    def score(
        self, model: nn.Module, split: str, limit: int | None, threads: int | None
    ) -> tuple[float, float | None]:
        r = self._evaluate(model, split, limit, threads, False)
        return r.accuracy, r.perplexity

    def score_sequences(
        self, model: nn.Module, split: str, limit: int | None, threads: int | None
    ) -> SequenceScores:
        r = self._evaluate(model, split, limit, threads, True)
        return SequenceScores(r.accuracy, r.perplexity, r.sequence_correct, r.sequence_tokens)

    def _evaluate(
        self, model: nn.Module, split: str, limit: int | None, threads: int | None, each: bool
    ) -> Any:
        from lab.model.training import evaluate_lm

        tokens = self.data.valid if split == "valid" else self.data.test
        return evaluate_lm(
            model, tokens, self.budget.seq_len, max_tokens=limit, threads=threads, per_sequence=each
        )

    def dense_training(self, budget: Budget) -> tuple[Callable[..., Any], Any, dict[str, Any]]:
        from lab.model.training import train_lm

        return train_lm, self.data.train, {"seq_len": budget.seq_len}

    def learning_rates(self, budget: Budget) -> tuple[float, float]:
        return budget.dense_lr, budget.finetune_lr

    def default_bp_config(self) -> Path | None:
        return None


@dataclass(frozen=True)
class ClassifierObjective:
    """Cross-entropy (MSE for regression) on random batches of an encoded GLUE split."""

    data: EncodedGlue

    def batches(
        self, generator: torch.Generator, batch_size: int
    ) -> Iterator[tuple[dict[str, Any], Any]]:
        """Endless random batches (sampled with replacement across epochs)."""
        import torch

        n = len(self.data)
        while True:
            rows = torch.randint(0, n, (min(batch_size, n),), generator=generator)
            yield self.data.inputs(rows), self.data.labels[rows]

    def loss(
        self, model: nn.Module, inputs: Any, targets: Any, params: dict | None = None
    ) -> torch.Tensor:
        """The classifier's loss, optionally with substituted parameters."""
        return self.hard_loss(self.logits(model, inputs, params), targets)

    def logits(self, model: nn.Module, inputs: Any, params: dict | None = None) -> torch.Tensor:
        """The classifier's logits (``params`` substituted when given)."""
        from torch.func import functional_call

        from lab.model.training import output_logits

        out = model(**inputs) if params is None else functional_call(model, params, (), inputs)
        return output_logits(out)

    def hard_loss(self, logits: torch.Tensor, targets: Any) -> torch.Tensor:
        """Cross-entropy against the labels (MSE for a regression target)."""
        from lab.model.training import logits_loss

        return logits_loss(logits, targets)


@dataclass
class GlueTask(Task):
    """A Hugging Face classifier checkpoint fine-tuned and compressed on a GLUE task."""

    checkpoint: Path
    glue: GlueData
    max_length: int = 128
    kind: str = "hf"
    splits: dict[str, EncodedGlue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from lab.model.data.glue import encode_glue
        from lab.model.hf import checkpoint_config, load_hf_tokenizer

        checkpoint_config(self.checkpoint)  # a clear error before anything heavy
        tokenizer = load_hf_tokenizer(self.checkpoint)
        train = self.glue.splits["train"]
        dev_name = "dev" if "dev" in self.glue.splits else sorted(self.glue.splits)[0]
        if len(train) < 10:
            raise CompressionError(
                f"GLUE {self.glue.task}: {len(train)} training examples; need at least 10 "
                "(a tenth of train scores the search)"
            )
        parts = {
            "train": [e for i, e in enumerate(train) if i % 10 != 9],
            "valid": train[9::10],
            "test": self.glue.splits[dev_name],
        }
        self.splits = {k: encode_glue(v, tokenizer, self.max_length) for k, v in parts.items()}

    @property
    def spec(self) -> str:
        return f"glue:{self.glue.task}:{self.glue.meta.get('directory', '')}"

    @property
    def metric(self) -> str:
        return "pearson" if self.glue.is_regression else "accuracy"

    @property
    def seq_len(self) -> int:
        return int(self.splits["train"].input_ids.shape[1])

    def fingerprint(self) -> dict[str, Any]:
        h = hashlib.sha256()
        for name in sorted(p.name for p in self.checkpoint.iterdir() if p.is_file()):
            h.update(name.encode())
            h.update((self.checkpoint / name).read_bytes())
        enc = self.splits
        return {
            "data": self.spec,
            "tokens": tokens_fingerprint(*(enc[k].input_ids for k in sorted(enc))),
            "checkpoint": h.hexdigest(),
        }

    def model_config(self) -> dict[str, Any]:
        return {"path": str(self.checkpoint.resolve()), "num_labels": self.glue.num_labels}

    def build_model(self) -> nn.Module:
        from lab.model.hf import load_hf_classifier

        return load_hf_classifier(self.checkpoint, num_labels=self.glue.num_labels)

    def prunable(self, model: nn.Module) -> dict[str, nn.Module]:
        from torch import nn

        return {
            n: m
            for n, m in model.named_modules()
            if isinstance(m, nn.Linear) and ".layer." in f".{n}."
        }

    def objective(self) -> Objective:
        return ClassifierObjective(self.splits["train"])

    def score(
        self, model: nn.Module, split: str, limit: int | None, threads: int | None
    ) -> tuple[float, float | None]:
        s = self.score_sequences(model, split, limit, threads)
        return s.accuracy, s.perplexity

    def score_sequences(
        self, model: nn.Module, split: str, limit: int | None, threads: int | None
    ) -> SequenceScores:
        """Per example: 1 correct out of 1 (none for a regression task)."""
        from lab.model.training import evaluate_classifier

        data = self.splits["valid" if split == "valid" else "test"]
        if limit is not None and limit < len(data):
            data = _head(data, limit)
        r = evaluate_classifier(model, data, self.glue.task, threads=threads, per_example=True)
        flags = r.example_correct
        value = r.value if r.accuracy is None else r.accuracy
        return SequenceScores(value, None, flags, (1,) * len(flags))

    def dense_training(self, budget: Budget) -> tuple[Callable[..., Any], Any, dict[str, Any]]:
        from lab.model.training import train_classifier

        return train_classifier, self.splits["train"], {}

    def learning_rates(self, budget: Budget) -> tuple[float, float]:
        """BERT fine-tuning rates (the LM budget's rates are far too high for it)."""
        return 3e-5, 3e-5

    def default_bp_config(self) -> Path | None:
        return BERT_BP_CONFIG


def _head(data: EncodedGlue, n: int) -> EncodedGlue:
    from lab.model.data.glue import EncodedGlue

    tt = data.token_type_ids
    return EncodedGlue(
        data.input_ids[:n], data.attention_mask[:n], None if tt is None else tt[:n], data.labels[:n]
    )


MODEL_SPECS = ("rt3-transformer", "hf:DIR")
DATA_SPECS = ("builtin", "wikitext2:DIR", "glue:TASK:DIR")


def load_task(model: str, data: str, budget: Budget) -> Task:
    """The task of ``--model`` and ``--data``; mismatches and bad paths are named."""
    from lab.model.data import load_glue, load_lm_corpus

    if model == "rt3-transformer":
        if data.startswith("glue:"):
            raise CompressionError(
                f"--data {data}: RT3's Transformer is a language model and needs a token "
                "corpus (builtin or wikitext2:DIR); GLUE classification needs --model hf:DIR"
            )
        options = {} if budget.max_vocab is None else {"max_vocab": budget.max_vocab}
        corpus = load_lm_corpus(data, **options)
        label = data if budget.max_vocab is None else f"{data} (vocabulary {len(corpus.vocab)})"
        lm = LMData(label, corpus.train, corpus.valid, corpus.test, len(corpus.vocab))
        return LMTask(lm, budget)
    if model.startswith("hf:"):
        directory = model[3:]
        if not data.startswith("glue:"):
            raise CompressionError(
                f"--model {model} with --data {data}: a Hugging Face classifier is compressed "
                "on a GLUE task; expected --data glue:TASK:DIR"
            )
        _, task, glue_dir = [*data.split(":", 2), "", ""][:3]
        if not task or not glue_dir:
            raise CompressionError(f"--data {data}: expected glue:TASK:DIR, e.g. glue:sst2:./glue")
        return GlueTask(Path(directory), load_glue(task, glue_dir))
    raise CompressionError(f"--model {model}: expected one of {list(MODEL_SPECS)}")
