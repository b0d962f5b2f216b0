"""RT3's Transformer language model, with every prunable weight an ``nn.Linear``/``nn.Embedding``.

The shape follows the PyTorch word-language-model tutorial that RT3's code builds on:
token embedding scaled by sqrt(emb), sinusoidal positional encoding, post-norm encoder
layers with ReLU feed-forward, causal self-attention, a linear decoder to the vocabulary.
Unlike ``nn.TransformerEncoderLayer`` the attention projections are explicit
``nn.Linear`` modules (``self_attn.in_proj`` holds Q, K and V stacked along the output
rows, like ``nn.MultiheadAttention.in_proj_weight``) so that a mask of the weight's shape
prunes them like any other layer.

Module names (the contract in DEVELOPERS.md): ``embedding``,
``layers.{i}.self_attn.in_proj``, ``layers.{i}.self_attn.out_proj``, ``layers.{i}.linear1``,
``layers.{i}.linear2``, ``decoder``; with ``exit_heads`` (the depth and early-exit schemes),
``exit_heads.{k}``: a decoder of its own reading the hidden state after the first ``k``
layers (``k`` from 0, the embedding, to ``layers - 1``; after the last layer the exit is
``decoder``).

:meth:`RT3TransformerLM.run_exits` is the torch reference of a depth variant (one exit) and of
early exit (several, and a threshold on the sequence's confidence, :func:`confidence`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class ModelConfigError(ValueError):
    """A model config has an unknown field or a value out of range."""


@dataclass(frozen=True)
class RT3Config:
    """Hyper-parameters of :class:`RT3TransformerLM`; RT3's values are the defaults.

    >>> RT3Config(vocab_size=100).heads
    4
    >>> RT3Config.from_dict({"vocab_size": 50, "emb": 16, "ff": 8}).emb
    16
    """

    vocab_size: int
    emb: int = 800
    ff: int = 200
    layers: int = 2
    heads: int = 4
    dropout: float = 0.2
    # layer counts after which an extra decoder sits (depth and early-exit schemes)
    exit_heads: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        heads = self.exit_heads
        if not isinstance(heads, list | tuple) or any(
            not isinstance(k, int) or isinstance(k, bool) for k in heads
        ):
            raise ModelConfigError(
                f"model config field 'exit_heads': expected a list of layer counts, got {heads!r}"
            )
        object.__setattr__(self, "exit_heads", tuple(heads))
        for name in ("vocab_size", "emb", "ff", "layers", "heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ModelConfigError(
                    f"model config field {name!r}: expected a positive integer, got {value!r}"
                )
        if self.emb % self.heads:
            raise ModelConfigError(
                f"model config: emb ({self.emb}) must be divisible by heads ({self.heads})"
            )
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ModelConfigError(
                f"model config field 'dropout': expected a value in [0, 1), got {self.dropout!r}"
            )
        if list(self.exit_heads) != sorted(set(self.exit_heads)) or any(
            not 0 <= k < self.layers for k in self.exit_heads
        ):
            raise ModelConfigError(
                f"model config field 'exit_heads': expected increasing layer counts in "
                f"0..{self.layers - 1}, got {list(self.exit_heads)}"
            )

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> RT3Config:
        """Build from a JSON-style dict; unknown keys are an error naming the key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ModelConfigError(
                f"model config: unknown field(s) {unknown}; expected some of {sorted(known)}"
            )
        if "vocab_size" not in config:
            raise ModelConfigError("model config: missing field 'vocab_size'")
        return cls(**config)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict that :meth:`from_dict` reads back (``exit_heads`` only
        when there are some: a model without them keeps the config it always had)."""
        out = asdict(self)
        out["exit_heads"] = list(self.exit_heads)
        if not self.exit_heads:
            del out["exit_heads"]
        return out


def tiny_config(vocab_size: int = 64) -> dict[str, Any]:
    """A small config for tests and doc examples (same structure, far fewer weights).

    >>> tiny_config(32)["emb"]
    16
    """
    return {"vocab_size": vocab_size, "emb": 16, "ff": 8, "layers": 2, "heads": 2, "dropout": 0.1}


def sinusoidal_encoding(length: int, dim: int) -> torch.Tensor:
    """The fixed sine/cosine positional encoding of Vaswani et al., shape ``(length, dim)``.

    >>> sinusoidal_encoding(3, 4)[0].tolist()
    [0.0, 1.0, 0.0, 1.0]
    """
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div[: dim // 2])
    return pe


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with explicit ``in_proj`` and ``out_proj`` Linears."""

    def __init__(self, emb: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.in_proj = nn.Linear(emb, 3 * emb)
        self.out_proj = nn.Linear(emb, emb)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(batch, seq, emb)`` -> ``(batch, seq, emb)``; position t sees <= t."""
        b, t, e = x.shape
        q, k, v = self.in_proj(x).split(e, dim=-1)
        # (b, t, e) -> (b, heads, t, e / heads)
        q, k, v = (z.view(b, t, self.heads, e // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )
        return self.out_proj(y.transpose(1, 2).reshape(b, t, e))


class EncoderLayer(nn.Module):
    """A post-norm encoder layer (as ``nn.TransformerEncoderLayer`` with ``norm_first=False``)."""

    def __init__(self, emb: int, ff: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = CausalSelfAttention(emb, heads, dropout)
        self.linear1 = nn.Linear(emb, ff)
        self.linear2 = nn.Linear(ff, emb)
        self.norm1 = nn.LayerNorm(emb)
        self.norm2 = nn.LayerNorm(emb)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attention then feed-forward, each with a residual and a LayerNorm after it."""
        x = self.norm1(x + self.dropout1(self.self_attn(x)))
        ff = self.linear2(self.dropout(F.relu(self.linear1(x))))
        return self.norm2(x + self.dropout2(ff))


class RT3TransformerLM(nn.Module):
    """RT3's Transformer language model: batch-first, causal, logits over the vocabulary.

    >>> import torch
    >>> model = RT3TransformerLM(vocab_size=50, emb=16, ff=8, layers=1, heads=2)
    >>> model(torch.zeros(3, 7, dtype=torch.long)).shape
    torch.Size([3, 7, 50])
    """

    def __init__(
        self,
        vocab_size: int,
        emb: int = 800,
        ff: int = 200,
        layers: int = 2,
        heads: int = 4,
        dropout: float = 0.2,
        exit_heads: tuple[int, ...] | list[int] = (),
    ) -> None:
        super().__init__()
        self.config = RT3Config(vocab_size, emb, ff, layers, heads, dropout, tuple(exit_heads))
        # Registration order is the order of prunable_layers(): embedding first, decoder last.
        self.embedding = nn.Embedding(vocab_size, emb)
        self.pos_dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(EncoderLayer(emb, ff, heads, dropout) for _ in range(layers))
        self.decoder = nn.Linear(emb, vocab_size)
        if self.config.exit_heads:  # absent otherwise: the state dict stays RT3's
            self.exit_heads = nn.ModuleDict(
                {str(k): nn.Linear(emb, vocab_size) for k in self.config.exit_heads}
            )
        # Not a parameter and not in the state dict: recomputed, grown on demand.
        self.register_buffer("pos_encoding", sinusoidal_encoding(64, emb), persistent=False)
        self.reset_parameters()

    @classmethod
    def from_config(cls, config: RT3Config | dict[str, Any]) -> RT3TransformerLM:
        """Build from an :class:`RT3Config` or its dict form."""
        if isinstance(config, dict):
            config = RT3Config.from_dict(config)
        return cls(**config.to_dict())

    def reset_parameters(self) -> None:
        """The tutorial's initialisation: embedding and decoder uniform(-0.1, 0.1)."""
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        for head in getattr(self, "exit_heads", {}).values():
            nn.init.uniform_(head.weight, -0.1, 0.1)
            nn.init.zeros_(head.bias)

    def _positions(self, length: int) -> torch.Tensor:
        if length > self.pos_encoding.shape[0]:
            grown = sinusoidal_encoding(
                max(length, 2 * self.pos_encoding.shape[0]), self.config.emb
            )
            self.pos_encoding = grown.to(self.pos_encoding.device)
        return self.pos_encoding[:length]

    def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2:
            raise ValueError(f"tokens: expected shape (batch, seq), got {tuple(tokens.shape)}")
        x = self.embedding(tokens) * math.sqrt(self.config.emb)
        return self.pos_dropout(x + self._positions(tokens.shape[1]))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens``: ``(batch, seq)`` int64 -> logits ``(batch, seq, vocab_size)``."""
        x = self._embed(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.decoder(x)

    def head(self, name: str) -> nn.Module:
        """The decoder called ``name``: ``decoder`` or ``exit_heads.K``."""
        if name == "decoder":
            return self.decoder
        k = name.removeprefix("exit_heads.")
        heads = getattr(self, "exit_heads", {})
        if k == name or k not in heads:
            raise ValueError(f"decoder {name!r}: the model has {head_names(self.config)}")
        return heads[k]

    def hidden_states(self, tokens: torch.Tensor, depth: int) -> list[torch.Tensor]:
        """The hidden states after 0 (the embedding), 1, ..., ``depth`` layers."""
        out = [self._embed(tokens)]
        for layer in self.layers[:depth]:
            out.append(layer(out[-1]))
        return out

    def run_exits(
        self,
        tokens: torch.Tensor,
        exits: list[int] | tuple[int, ...],
        heads: list[str] | tuple[str, ...],
        threshold: float | None = None,
        force: int | None = None,
    ) -> tuple[torch.Tensor, list[int]]:
        """The torch reference of a depth or early-exit variant: each sequence (row) runs
        its layers up to exit ``i`` (after ``exits[i]`` layers, through decoder
        ``heads[i]``) and stops at the first exit whose :func:`confidence` is at least
        ``threshold`` (the last exit always stops; ``force``: every row stops at that exit).
        Returns the logits of the exit each row took and which exit (its index in
        ``exits``) per row.

        >>> import torch
        >>> m = RT3TransformerLM(50, emb=16, ff=8, layers=2, heads=2, exit_heads=[1]).eval()
        >>> x = torch.zeros(2, 5, dtype=torch.long)
        >>> logits, taken = m.run_exits(x, [1, 2], ["exit_heads.1", "decoder"], 0.0)
        >>> taken, torch.allclose(logits, m.exit_heads["1"](m.hidden_states(x, 1)[1]), atol=1e-6)
        ([0, 0], True)
        >>> torch.allclose(m.run_exits(x, [2], ["decoder"])[0], m(x), atol=1e-6)
        True
        """
        rows, taken = [], []
        for b in range(tokens.shape[0]):
            x = self._embed(tokens[b : b + 1])
            done = 0
            for i, (k, name) in enumerate(zip(exits, heads, strict=True)):
                for layer in self.layers[done:k]:
                    x = layer(x)
                done = k
                logits = self.head(name)(x)
                last = i == len(exits) - 1 or i == force
                if force is not None:
                    confident = False
                else:
                    confident = threshold is not None and confidence(logits[0]) >= threshold
                if last or confident:
                    rows.append(logits)
                    taken.append(i)
                    break
        return torch.cat(rows), taken


def head_names(config: RT3Config) -> list[str]:
    """The model's decoders: ``exit_heads.K`` for each exit head, then ``decoder``.

    >>> head_names(RT3Config(vocab_size=9, exit_heads=(1,)))
    ['exit_heads.1', 'decoder']
    """
    return [*(f"exit_heads.{k}" for k in config.exit_heads), "decoder"]


def confidence(logits: torch.Tensor) -> float:
    """A sequence's confidence at an exit: the mean over its positions of the largest
    softmax probability (``logits``: ``(seq, vocab)``), computed in float64 as the engine
    does. An input exits where this reaches the set's threshold.

    >>> import torch
    >>> confidence(torch.tensor([[0.0, 0.0], [10.0, -10.0]]))  # 0.5 and ~1
    0.74999999...
    """
    p = torch.softmax(logits.detach().to(torch.float64), dim=-1).amax(dim=-1)
    return float(p.mean())


class ExitsRun(nn.Module):
    """``model`` run by a set's exits (``plan``: ``exits``, ``heads``, ``threshold``, as
    ``lab.runtime.exits.ExitPlan`` holds them): a module whose forward is
    :meth:`RT3TransformerLM.run_exits`; ``taken`` lists the exit of every row run so far.

    >>> import torch
    >>> from types import SimpleNamespace
    >>> m = RT3TransformerLM(50, emb=16, ff=8, layers=2, heads=2, exit_heads=[1]).eval()
    >>> run = ExitsRun(m, SimpleNamespace(exits=(1,), heads=("exit_heads.1",), threshold=None))
    >>> run(torch.zeros(2, 5, dtype=torch.long)).shape, run.taken
    (torch.Size([2, 5, 50]), [0, 0])
    """

    def __init__(self, model: RT3TransformerLM, plan: Any) -> None:
        super().__init__()
        self.model = model
        self.plan = plan
        self.taken: list[int] = []

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """The logits of the exit each row stops at."""
        p = self.plan
        logits, taken = self.model.run_exits(tokens, p.exits, p.heads, p.threshold)
        self.taken += taken
        return logits
