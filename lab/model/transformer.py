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
``layers.{i}.linear2``, ``decoder``.
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

    def __post_init__(self) -> None:
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
        """A JSON-serialisable dict that :meth:`from_dict` reads back."""
        return asdict(self)


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
    ) -> None:
        super().__init__()
        self.config = RT3Config(vocab_size, emb, ff, layers, heads, dropout)
        # Registration order is the order of prunable_layers(): embedding first, decoder last.
        self.embedding = nn.Embedding(vocab_size, emb)
        self.pos_dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(EncoderLayer(emb, ff, heads, dropout) for _ in range(layers))
        self.decoder = nn.Linear(emb, vocab_size)
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

    def _positions(self, length: int) -> torch.Tensor:
        if length > self.pos_encoding.shape[0]:
            grown = sinusoidal_encoding(
                max(length, 2 * self.pos_encoding.shape[0]), self.config.emb
            )
            self.pos_encoding = grown.to(self.pos_encoding.device)
        return self.pos_encoding[:length]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens``: ``(batch, seq)`` int64 -> logits ``(batch, seq, vocab_size)``."""
        if tokens.dim() != 2:
            raise ValueError(f"tokens: expected shape (batch, seq), got {tuple(tokens.shape)}")
        x = self.embedding(tokens) * math.sqrt(self.config.emb)
        x = self.pos_dropout(x + self._positions(tokens.shape[1]))
        for layer in self.layers:
            x = layer(x)
        return self.decoder(x)
