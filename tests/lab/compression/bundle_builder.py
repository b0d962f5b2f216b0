"""A small real bundle for the bundle and evaluate checks: a tiny RT3 Transformer (random
weights) on the test corpus, two sets, saved by ``Bundle.save`` with its checksums.

Its recorded figures are deliberately not what the weights score (0.999 accuracy), so a
test can tell a re-scored figure from a stored one (``evaluate`` then needs
``--allow-mismatch``); ``build_bundle(..., true_figures=True)`` records what they score.
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


def build_bundle(
    wiki_dir: Path, out: Path, true_figures: bool = False, baselines: str | None = None
) -> Path:
    """Write the bundle to ``out`` and return it (recording 0.999, or with
    ``true_figures`` what ``evaluate`` re-scores). ``baselines``: None (none), "recorded"
    (rBP and BP+rPP figures only, as compress wrote before it kept them) or "kept" (their
    masks and weights too, so ``evaluate`` re-scores them)."""
    path = _build(wiki_dir, out, None, baselines)
    if true_figures:
        from lab.compression.evaluation import rescore

        scores = rescore(Bundle.load(path), threads=1)
        path = _build(wiki_dir, out, scores, baselines)
    return path


def _build(wiki_dir: Path, out: Path, scores, baselines: str | None) -> Path:
    def fig(name):
        if scores is None:
            return 0.999, 1.5
        if name in scores.baselines:
            return scores.baselines[name]
        return scores.dense if name == "dense" else scores.sets.get(name, (0.5, 9.0))

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
        reference={"dense": {"accuracy": fig("dense")[0], "perplexity": fig("dense")[1],
                             "nonzero_mults": 1000, "nonzero_adds": 1000}},
        provenance={"data": f"wikitext2:{wiki_dir}", "seed": 0, "episodes": 0,
                    "budget": TEST.to_dict()},
    )  # fmt: skip
    b.add_set(PatternSet.from_masks("bp", {LAYER: bp}, 4, 4), 900, 900, *fig("bp"), None)
    b.add_set(PatternSet.from_masks("pp-1400mhz", {LAYER: pp}, 4, 4), 800, 800,
              *fig("pp-1400mhz"), 1_400_000)  # fmt: skip
    if baselines is not None:
        _add_baselines(b, out, state, bp, pp, fig, kept=baselines == "kept")
    return b.save(out)


def _add_baselines(b, out, state, bp, pp, fig, kept):
    """rBP (other columns, on the dense weights) and one BP+rPP set (on the backbone with
    its last rows perturbed), recorded as compress records them; with ``kept``, their masks
    and weights written under baselines/ the way compress keeps them."""
    from lab.compression.kept_baselines import write_kept

    rbp = torch.ones(8, 16, dtype=torch.bool)
    rbp[:, 12:] = False
    rpp = bp.clone()
    rpp[:, 10:16] = False
    rbp_weights = dict(state, **{f"{LAYER}.weight": state[f"{LAYER}.weight"] * rbp})
    rpp_weights = dict(state, **{f"{LAYER}.weight": state[f"{LAYER}.weight"].flip(0) * bp})
    b.baselines = {
        "rbp": {"sparsity": 0.25, "accuracy": fig("rbp")[0], "perplexity": fig("rbp")[1],
                "compare_to": "bp", "bp_accuracy": 0.5, "bp_sparsity": 0.25},
        "bp+rpp": {"sets": [{"name": "rpp-1400mhz", "sparsity": 0.6,
                             "accuracy": fig("rpp-1400mhz")[0],
                             "perplexity": fig("rpp-1400mhz")[1]}],
                   "compare_to": ["pp-1400mhz"]},
    }  # fmt: skip
    if kept:
        b.baselines["kept"] = write_kept(
            Path(out),
            (rbp_weights, PatternSet.from_masks("rbp", {LAYER: rbp}, 4, 4)),
            (rpp_weights, [PatternSet.from_masks("rpp-1400mhz", {LAYER: rpp}, 4, 4)]),
        )
