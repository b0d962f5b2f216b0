"""Language-model corpora: the word tokenizer, the vocabulary and the ``LMCorpus`` record.

A corpus is three token-id streams (train, valid, test) over one vocabulary built from the
training split, as in the word-language-model tutorial RT3 used: every paragraph or line
ends with ``<eos>``; words outside the vocabulary map to ``<unk>``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

UNK = "<unk>"
EOS = "<eos>"
SPECIALS = (UNK, EOS)
# Bump when tokenize() changes: it is part of every cache key.
TOKENIZER_VERSION = 1

# Words (letters, digits, underscore) or single punctuation marks; a literal "<unk>" (as in
# WikiText's tokens files) stays one token.
_TOKEN = re.compile(r"<unk>|\w+|[^\w\s]")


class CorpusError(ValueError):
    """A corpus file or directory is missing or malformed; the message names it."""


def tokenize(text: str) -> list[str]:
    """Lower-case ``text`` and split it into words and punctuation (basic_english-like).

    >>> tokenize("Return the Value, e.g. x**2 <unk> done.")
    ['return', 'the', 'value', ',', 'e', '.', 'g', '.', 'x', '*', '*', '2', '<unk>', 'done', '.']
    """
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Vocab:
    """Word <-> id mapping; id 0 is ``<unk>``, id 1 is ``<eos>``.

    >>> v = Vocab.build([["b", "a", "b"]], max_size=None)
    >>> v.itos
    ('<unk>', '<eos>', 'b', 'a')
    >>> v.encode(["a", "zzz"])
    [3, 0]
    """

    itos: tuple[str, ...]
    stoi: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if tuple(self.itos[: len(SPECIALS)]) != SPECIALS:
            raise CorpusError(f"vocabulary: expected it to start with {SPECIALS}")
        object.__setattr__(self, "stoi", {w: i for i, w in enumerate(self.itos)})
        if len(self.stoi) != len(self.itos):
            raise CorpusError("vocabulary: duplicate words")

    @classmethod
    def build(
        cls, texts: Iterable[list[str]], max_size: int | None = 16000, min_freq: int = 1
    ) -> Vocab:
        """Most frequent words first (ties alphabetical), capped at ``max_size`` in total."""
        counts: Counter[str] = Counter()
        for words in texts:
            counts.update(words)
        for special in SPECIALS:
            counts.pop(special, None)
        ranked = sorted(
            (w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w)
        )
        if max_size is not None:
            if max_size <= len(SPECIALS):
                raise CorpusError(f"vocabulary size {max_size}: expected more than {len(SPECIALS)}")
            ranked = ranked[: max_size - len(SPECIALS)]
        return cls(SPECIALS + tuple(ranked))

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def unk_id(self) -> int:
        """Id of ``<unk>``."""
        return 0

    @property
    def eos_id(self) -> int:
        """Id of ``<eos>``."""
        return 1

    def encode(self, words: Iterable[str]) -> list[int]:
        """Ids of ``words``; unknown words become ``<unk>``."""
        get = self.stoi.get
        return [get(w, 0) for w in words]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words of ``ids``."""
        return [self.itos[int(i)] for i in ids]


@dataclass
class LMCorpus:
    """Three token-id streams (1-D ``torch.long``) over one vocabulary, plus provenance."""

    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    vocab: Vocab
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Sizes as a JSON-friendly dict: tokens per split, vocabulary, ``<unk>`` rate."""
        total = self.train.numel() + self.valid.numel() + self.test.numel()
        unk = sum(int((s == self.vocab.unk_id).sum()) for s in (self.train, self.valid, self.test))
        return {
            "name": self.name,
            "vocab": len(self.vocab),
            "train_tokens": self.train.numel(),
            "valid_tokens": self.valid.numel(),
            "test_tokens": self.test.numel(),
            "unk_rate": unk / total if total else 0.0,
            **{k: v for k, v in self.meta.items() if k != "documents_by_split"},
        }


def paragraphs(text: str) -> Iterator[str]:
    """Blank-line separated paragraphs of ``text``, each joined into one line.

    >>> list(paragraphs("a\\nb\\n\\n  c\\n"))
    ['a b', 'c']
    """
    for block in re.split(r"\n\s*\n", text):
        joined = " ".join(line.strip() for line in block.splitlines() if line.strip())
        if joined:
            yield joined


def encode_units(units: Iterable[str], vocab: Vocab) -> list[int]:
    """Token ids of each unit (a line or paragraph) followed by ``<eos>``."""
    ids: list[int] = []
    for unit in units:
        words = tokenize(unit)
        if words:
            ids.extend(vocab.encode(words))
            ids.append(vocab.eos_id)
    return ids
