"""Compute budgets of ``rt3lab compress``: how many steps each stage gets, and the model size.

Measured on this project's 2-core machine: RT3's full model (emb 800) with a 10k-word
vocabulary costs about 0.9 s per training step of 20 x 35 tokens, far too slow to train,
prune, search and fine-tune within 20 minutes; even at emb 128 the decoder over a 12k-word
vocabulary dominates a step. The budgets therefore keep RT3's structure (2 layers, 4 heads)
with a narrower embedding and a capped vocabulary (rarer words become ``<unk>``);
``--size rt3`` restores RT3's 800/200.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lab.compression.sparsifier import CompressionError

SIZES: dict[str, dict[str, Any]] = {
    "rt3": {"emb": 800, "ff": 200, "layers": 2, "heads": 4, "dropout": 0.2},
    "small": {"emb": 256, "ff": 200, "layers": 2, "heads": 4, "dropout": 0.2},
    "tiny": {"emb": 128, "ff": 128, "layers": 2, "heads": 4, "dropout": 0.1},
}


@dataclass(frozen=True)
class Budget:
    """Steps per stage (batch ``batch_size`` x ``seq_len`` tokens) and evaluation sizes."""

    name: str
    size: str
    episodes: int
    dense_steps: int
    bp_lasso_steps: int
    bp_retrain_steps: int
    supernet_steps: int  # joint training of the shared weights on random children
    final_steps: int
    eval_tokens: int  # validation tokens scoring dense and BP (the reward's reference)
    child_tokens: int  # validation tokens scoring each child's sets on the supernet
    report_tokens: int | None  # test tokens for the reported figures (None: all)
    max_vocab: int | None = None  # cap of the corpus vocabulary (the decoder dominates cost)
    batch_size: int = 20
    seq_len: int = 35
    dense_lr: float = 2e-3
    finetune_lr: float = 5e-4
    extra: dict[str, Any] = field(default_factory=dict)

    def model_config(self) -> dict[str, Any]:
        """The RT3TransformerLM config (without ``vocab_size``)."""
        if self.size not in SIZES:
            raise CompressionError(f"model size {self.size!r}: expected one of {sorted(SIZES)}")
        return dict(SIZES[self.size])

    def to_dict(self) -> dict[str, Any]:
        """JSON form (recorded in the bundle's provenance)."""
        return asdict(self)


QUICK = Budget(
    name="quick",
    size="tiny",
    episodes=100,
    dense_steps=300,
    bp_lasso_steps=60,
    bp_retrain_steps=60,
    supernet_steps=30,
    final_steps=60,
    eval_tokens=2000,
    child_tokens=700,
    report_tokens=None,
    max_vocab=4000,
)

DEFAULT = Budget(
    name="default",
    size="small",
    episodes=300,
    dense_steps=1200,
    bp_lasso_steps=200,
    bp_retrain_steps=250,
    supernet_steps=300,
    final_steps=1000,
    eval_tokens=6000,
    child_tokens=2000,
    report_tokens=None,
    max_vocab=8000,
)

# For tests: the whole pipeline on a tiny corpus in seconds.
TEST = Budget(
    name="test",
    size="tiny",
    episodes=3,
    dense_steps=30,
    bp_lasso_steps=5,
    bp_retrain_steps=5,
    supernet_steps=2,
    final_steps=4,
    eval_tokens=300,
    child_tokens=200,
    report_tokens=600,
    batch_size=4,
    seq_len=16,
)

BUDGETS = {b.name: b for b in (QUICK, DEFAULT, TEST)}
