"""A small WikiText-2-shaped corpus the tests write themselves, and a private cache."""

import random

import pytest

WORDS = [
    "the",
    "model",
    "runs",
    "a",
    "pattern",
    "set",
    "on",
    "the",
    "board",
    "and",
    "the",
    "battery",
    "drains",
    "slowly",
    "while",
]


def _text(seed: int, lines: int) -> str:
    rng = random.Random(seed)
    out = []
    for _ in range(lines):
        start = rng.randrange(len(WORDS))
        n = rng.randrange(5, 12)
        # a learnable structure: mostly the next word of WORDS, sometimes a random one
        words = [
            WORDS[(start + i) % len(WORDS)] if rng.random() < 0.8 else rng.choice(WORDS)
            for i in range(n)
        ]
        out.append(" ".join(words) + " .")
    return "\n".join(out) + "\n"


@pytest.fixture
def wiki_dir(tmp_path):
    d = tmp_path / "wikitext2"
    d.mkdir()
    for i, (split, lines) in enumerate((("train", 600), ("valid", 80), ("test", 80))):
        (d / f"wiki.{split}.raw").write_text(_text(i, lines))
    return d


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RT3LAB_CACHE", str(tmp_path / "cache"))
