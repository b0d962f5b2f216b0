"""The controller's chosen slot indices are exactly the patterns the evaluated child uses."""

import torch

from device_profiles import load_profile
from lab.compression.blocks import to_blocks
from lab.compression.budget import TEST
from lab.compression.compressor import Compressor
from lab.compression.options import CompressOptions, SilentReporter
from lab.compression.pattern_pruning import assign_patterns
from lab.compression.pipeline import load_lm_data
from lab.compression.search.controller import Child
from lab.compression.tasks import LMTask


def _setup(wiki_dir, tmp_path, exclusive):
    task = LMTask(load_lm_data(f"wikitext2:{wiki_dir}", TEST), TEST)
    torch.manual_seed(0)
    model = task.build_model()
    g = torch.Generator().manual_seed(1)
    weights = {n: torch.randn(m.weight.shape, generator=g) for n, m in task.prunable(model).items()}
    # BP zeroes a quarter of the columns: plain and refitted patterns then keep different
    # numbers of non-zeros at the same zero count
    bp = {}
    for n, w in weights.items():
        m = torch.ones_like(w, dtype=torch.bool)
        m[:, 3::4] = False
        bp[n] = m
    opts = CompressOptions("rt3-paper", tmp_path, TEST, exclusive=exclusive, threads=1)
    c = Compressor(task, load_profile("rt3-paper"), opts, SilentReporter())
    return c, weights, bp, c.patterns.candidates(weights)


def test_evaluated_child_uses_exactly_the_chosen_candidates(wiki_dir, tmp_path):
    """Each set's layer mask is BP & the assignment of the candidates at the chosen indices
    of the list offered for that set (refitted for a sparser set before the indices are
    read). Today's order (refit after choosing, at another zero count) fails this."""
    c, weights, bp, cands = _setup(wiki_dir, tmp_path, 1.0)
    g = torch.Generator().manual_seed(5)
    for levels in ((1, 4, 7), (0, 2, 9)):
        choices = tuple(
            tuple(tuple(int(x) for x in torch.randint(0, 10, (4,), generator=g)) for _ in weights)
            for _ in range(3)
        )
        child = Child(levels, choices)
        sets = c.patterns.set_masks(weights, bp, cands, child)
        used: dict[str, torch.Tensor] = {}
        for s, level in enumerate(levels):
            for li, name in enumerate(weights):
                offered, w = c.patterns.offered_candidates(
                    name, weights[name], bp[name], cands[name], level, used.get(name)
                )
                chosen = offered[list(choices[s][li])]
                assert torch.equal(sets[s][name], bp[name] & assign_patterns(w, chosen)[1])
                # every block keeps exactly one chosen pattern's columns (within BP)
                R, C = chosen.shape[1:]
                blocks = to_blocks(sets[s][name].int(), R, C).reshape(-1, R, C).bool()
                kept = to_blocks(bp[name].int(), R, C).reshape(-1, R, C).bool()
                for b, k in zip(blocks, kept, strict=True):
                    assert any(torch.equal(b, k & p.bool()) for p in chosen)
            used = {n: used[n] | m if n in used else m.clone() for n, m in sets[s].items()}
