"""A small real bundle for the bundle and evaluate checks: a tiny RT3 Transformer (random
weights) on the test corpus, two sets, saved by ``Bundle.save`` with its checksums.

Its recorded figures are deliberately not what the weights score (0.999 accuracy), so a
test can tell a re-scored figure from a stored one.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lab.compression.budget import TEST
from lab.compression.pipeline import load_lm_data
from lab.model import build_model
from lab.runtime.bundle import Bundle
from lab.runtime.pattern_set import PatternSet

LAYER = "layers.0.linear1"  # (ff, emb) = (8, 16)
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
]


def write_corpus(directory: Path) -> Path:
    """A tiny WikiText-2-shaped corpus (train, valid, test) in ``directory``."""
    import random

    directory.mkdir(parents=True, exist_ok=True)
    for seed, (split, lines) in enumerate((("train", 200), ("valid", 40), ("test", 40))):
        rng = random.Random(seed)
        text = "\n".join(
            " ".join(rng.choice(WORDS) for _ in range(rng.randrange(5, 12))) + " ."
            for _ in range(lines)
        )
        (directory / f"wiki.{split}.raw").write_text(text + "\n")
    return directory


def build_bundle(wiki_dir: Path, out: Path) -> Path:
    """Write the bundle to ``out`` and return it."""
    data = load_lm_data(f"wikitext2:{wiki_dir}", TEST)
    config = {"vocab_size": data.vocab_size, "emb": 16, "ff": 8, "heads": 2, "layers": 1}
    torch.manual_seed(0)
    state = build_model("rt3-transformer", config).state_dict()
    bp = torch.ones(8, 16, dtype=torch.bool)
    bp[:, :4] = False  # whole columns: block-column for any block size
    pp = bp.clone()
    pp[:, 4:10] = False
    backbone = dict(state, **{f"{LAYER}.weight": state[f"{LAYER}.weight"] * bp})
    b = Bundle.create(
        "rt3-transformer",
        config,
        backbone=backbone,
        dense=state,
        reference={"dense": {"accuracy": 0.999, "perplexity": 1.5, "nonzero_mults": 1000,
                             "nonzero_adds": 1000}},
        provenance={"data": f"wikitext2:{wiki_dir}", "seed": 0, "episodes": 0,
                    "budget": TEST.to_dict()},
    )  # fmt: skip
    b.add_set(PatternSet.from_masks("bp", {LAYER: bp}, 4, 4), 900, 900, 0.999, 1.5, None)
    b.add_set(PatternSet.from_masks("pp-1400mhz", {LAYER: pp}, 4, 4), 800, 800, 0.999, 1.5,
              1_400_000)  # fmt: skip
    return b.save(out)
